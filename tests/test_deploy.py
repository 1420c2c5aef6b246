"""Tests for deploy/: the unit passes systemd-analyze verify, install.sh parses and edits config.txt right."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "deploy" / "atsd.service"
INSTALL = REPO / "deploy" / "install.sh"
INSTALLED_ATSD = "/opt/atsd/venv/bin/atsd"


def unit_settings(unit: Path = UNIT) -> dict[str, list[str]]:
    """Every ``Key=value`` of a unit, keys repeated as systemd allows (sections ignored)."""
    out: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key, []).append(value)
    return out


def verify_unit(unit: Path, tmp_path: Path, exec_paths: int) -> None:
    """``systemd-analyze verify`` on a copy whose Exec paths run the test venv's atsd script."""
    tool = shutil.which("systemd-analyze") or ("/usr/bin/systemd-analyze"
                                               if Path("/usr/bin/systemd-analyze").exists() else None)
    if tool is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is missing on CI: install systemd")
        pytest.skip("systemd-analyze is not installed")
    atsd = Path(sys.executable).parent / "atsd"
    exe = str(atsd) if atsd.exists() else sys.executable
    text = unit.read_text()
    assert text.count(INSTALLED_ATSD) == exec_paths
    copy = tmp_path / unit.name
    copy.write_text(text.replace(INSTALLED_ATSD, exe))
    proc = subprocess.run([tool, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    complaints = [ln for ln in (proc.stdout + proc.stderr).splitlines() if unit.name in ln]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert complaints == []


def test_unit_passes_systemd_analyze_verify(tmp_path: Path):
    verify_unit(UNIT, tmp_path, exec_paths=2)  # ExecStart and ExecStopPost


def test_unit_declares_the_service_contract():
    s = unit_settings()
    assert s["Type"] == ["notify"]
    assert s["WatchdogSec"] == ["120"]
    assert s["Restart"] == ["always"]
    assert s["RestartPreventExitStatus"] == ["78"]
    assert s["TimeoutStopSec"] == ["15"]
    assert s["User"] == ["atsd"]
    assert s["SupplementaryGroups"] == ["gpio dialout"]
    assert s["StateDirectory"] == ["atsd"]
    assert s["ConfigurationDirectory"] == ["atsd"]
    assert s["ExecStart"] == [f"{INSTALLED_ATSD} run --config /etc/atsd/config.toml"]
    assert s["ExecStopPost"] == [f"{INSTALLED_ATSD} failsafe --config /etc/atsd/config.toml"]
    creds = {v.split(":", 1)[0] for v in s["LoadCredential"]}
    assert creds == {"entsoe_token", "fingrid_api_key", "mqtt_password", "web_token"}


def test_unit_hardening_still_allows_gpio_serial_network_and_clock_reads():
    s = unit_settings()
    assert s["ProtectSystem"] == ["strict"]
    assert s["NoNewPrivileges"] == ["yes"]
    assert s["PrivateTmp"] == ["yes"]
    assert s["ProtectHome"] == ["yes"]
    assert set(s["RestrictAddressFamilies"][0].split()) == {"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"}
    allowed = {v.split()[0] for v in s["DeviceAllow"]}
    assert {"char-gpiochip", "/dev/gpiomem", "char-ttyUSB", "char-ttyAMA"} <= allowed
    assert "PrivateDevices" not in s  # it would hide /dev/gpiochip* and the serial ports
    assert "ProtectClock" not in s  # its seccomp filter refuses the read-only adjtimex()
    assert any("adjtimex" in v for v in s["SystemCallFilter"])


def test_install_script_parses():
    subprocess.run(["bash", "-n", str(INSTALL)], check=True)


def test_install_script_is_shellcheck_clean():
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed")
    proc = subprocess.run(["shellcheck", "-x", str(INSTALL)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def boot_block(tmp_path: Path, config_toml: str | None, boot_txt: str) -> tuple[str, bool]:
    """Run install.sh's config.txt step on temporary files; returns the new text and whether it changed."""
    cfg = tmp_path / "config.toml"
    if config_toml is None:
        cfg.unlink(missing_ok=True)
    else:
        cfg.write_text(config_toml)
    boot = tmp_path / "config.txt"
    if not boot.exists():
        boot.write_text(boot_txt)
    script = ('source "$1"; mapfile -t lines < <(boot_lines "$2" "$3"); '
              'write_boot_block "$3" "${lines[@]}"; echo "$BOOT_CHANGED"')
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(["bash", "-c", script, "bash", str(INSTALL), str(cfg), str(boot)],
                          capture_output=True, text=True, env=env, check=True)
    return boot.read_text(), proc.stdout.strip() == "1"


PI_CONFIG = "# Raspberry Pi OS config.txt\ndtparam=audio=on\n[cm5]\ndtoverlay=dwc2,dr_mode=host\n"
RELAYS_ACTIVE_HIGH = '[actuator]\nkind = "sgready_gpio"\nrelay1_pin = 5\nrelay2_pin = 6\n'


def test_boot_block_sets_relay_pins_low_for_active_high_boards_and_is_idempotent(tmp_path: Path):
    text, changed = boot_block(tmp_path, RELAYS_ACTIVE_HIGH, PI_CONFIG)
    assert changed
    assert text.startswith(PI_CONFIG)  # the user's lines stay as they were
    block = text[len(PI_CONFIG):].splitlines()
    assert block[1:] == ["[all]", "dtparam=watchdog=on", "gpio=5,6=op,dl", "# END atsd"]
    again, changed = boot_block(tmp_path, RELAYS_ACTIVE_HIGH, PI_CONFIG)
    assert not changed
    assert again == text


def test_boot_block_drives_active_low_relays_high_and_adds_one_wire(tmp_path: Path):
    cfg = ('[actuator]\nkind = "sgready_gpio"\nactive_high = false\n\n'
           '[[sensors]]\nname = "indoor"\nkind = "onewire"\nsensor_id = "28-0000"\n')
    text, _ = boot_block(tmp_path, cfg, PI_CONFIG)
    assert "gpio=17,27=op,dh\n" in text  # atsd's default pins
    assert text.count("dtoverlay=w1-gpio") == 1


def test_boot_block_leaves_an_existing_one_wire_overlay_alone(tmp_path: Path):
    cfg = '[[sensors]]\nname = "indoor"\nkind = "onewire"\nsensor_id = "28-0000"\n'
    text, _ = boot_block(tmp_path, cfg, PI_CONFIG + "dtoverlay=w1-gpio,gpiopin=4\n")
    assert text.count("dtoverlay=w1-gpio") == 1


def test_boot_block_drops_the_pins_when_the_actuator_changes(tmp_path: Path):
    boot_block(tmp_path, RELAYS_ACTIVE_HIGH, PI_CONFIG)
    text, changed = boot_block(tmp_path, '[actuator]\nkind = "mqtt"\ntopic = "x"\n', PI_CONFIG)
    assert changed
    assert "gpio=" not in text
    assert text.count("# BEGIN atsd") == 1
    assert "dtparam=watchdog=on" in text


def test_boot_block_without_config_still_enables_the_watchdog(tmp_path: Path):
    text, changed = boot_block(tmp_path, None, "dtparam=audio=on")  # no trailing newline
    assert changed
    assert text.startswith("dtparam=audio=on\n# BEGIN atsd")
    assert "dtparam=watchdog=on" in text
