"""atsd sensors, set-mode (direct and through the daemon) and failsafe."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import aiomqtt
import pytest

from atsd.cli import EX_CONFIG, EX_OK, EX_TEMPFAIL, EX_UNAVAILABLE, main
from atsd.core.modes import Mode
from atsd.devices.control import DaemonLock, LockHeldError, daemon_running, load_state, parse_duration_s
from tests.conftest import free_port


def write_config(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n' + body)
    return p


def mqtt_actuator(port: int) -> str:
    return f"""
[mqtt]
host = "127.0.0.1"
port = {port}

[actuator]
kind = "mqtt"
topic = "heatpump/mode/set"
[actuator.payloads]
OFF = "off"
ECO = "eco"
NORMAL = "normal"
BOOST = "boost"
"""


class Recorder:
    """Subscribes in a background thread's loop and records payloads on a topic."""

    def __init__(self, host: str, port: int, topic: str) -> None:
        self.payloads: list[str] = []
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run(host, port, topic)), daemon=True)

    async def _run(self, host: str, port: int, topic: str) -> None:
        async with aiomqtt.Client(host, port) as c:
            await c.subscribe(topic, qos=1)
            self.ready.set()
            while not self.stop.is_set():
                try:
                    async with asyncio.timeout(0.1):
                        m = await anext(aiter(c.messages))
                        self.payloads.append(bytes(m.payload).decode())
                except TimeoutError:
                    continue

    def __enter__(self) -> Recorder:
        self.thread.start()
        assert self.ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        import time

        time.sleep(0.3)
        self.stop.set()
        self.thread.join(5)


def test_parse_duration() -> None:
    assert parse_duration_s("10m") == 600 and parse_duration_s("1h30m") == 5400
    assert parse_duration_s("90s") == 90 and parse_duration_s("5") == 300
    with pytest.raises(ValueError, match="duration"):
        parse_duration_s("soon")


def test_sensors_json_with_simulated_house(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path, '[[sensors]]\nname = "room"\nkind = "simulated"\n'
                                 '[[sensors]]\nname = "out"\nkind = "simulated"\nrole = "outdoor"\n')
    assert main(["sensors", "--json", "--config", str(cfg)]) == EX_OK
    doc = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in doc["sensors"]] == ["room", "out"]
    assert doc["sensors"][0]["ok"] and doc["indoor"]["value"] == pytest.approx(21.0, abs=0.1)


def test_sensors_reports_a_broken_sensor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path, f'[[sensors]]\nname = "hall"\nkind = "onewire"\nsensor_id = "28-x"\n'
                                 f'w1_dir = "{tmp_path}"\n')
    assert main(["sensors", "--config", str(cfg)]) == EX_UNAVAILABLE
    out = capsys.readouterr().out
    assert "hall" in out and "does not exist" in out


def test_set_mode_drives_then_returns_to_normal_and_keeps_the_dwell(mosquitto, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path, mqtt_actuator(mosquitto.port))
    with Recorder(mosquitto.host, mosquitto.port, "heatpump/mode/set") as rec:
        assert main(["set-mode", "boost", "--for", "1s", "--config", str(cfg)]) == EX_OK
        # the saved supervisor state remembers the switches: BOOST again is within its dwell
        assert main(["set-mode", "BOOST", "--for", "1s", "--config", str(cfg)]) == EX_TEMPFAIL
    assert rec.payloads[0] == "boost" and set(rec.payloads[1:]) == {"normal"}  # exit repeats NORMAL
    assert "min_dwell" not in capsys.readouterr().out  # the reason is a sentence, not a rule id
    state = load_state(tmp_path / "state")
    assert state is not None and state.mode is Mode.NORMAL and len(state.switches) == 2


def test_set_mode_unreachable_broker_exits_69(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path, mqtt_actuator(free_port()).replace('topic = "heatpump', 'write_timeout_s = 0.5\n'
                                                                    'topic = "heatpump'))
    assert main(["set-mode", "BOOST", "--for", "1s", "--config", str(cfg)]) == EX_UNAVAILABLE
    assert "could not publish" in capsys.readouterr().err


@pytest.fixture
def fake_daemon_api() -> Iterator[tuple[int, list[tuple[dict, str | None]]]]:
    seen: list[tuple[dict, str | None]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((body, self.headers.get("Authorization")))
            out = json.dumps({"mode": body["mode"], "reason": "override until 12:10"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args: object) -> None:
            return None

    srv = HTTPServer(("127.0.0.1", free_port()), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv.server_port, seen
    finally:
        srv.shutdown()
        srv.server_close()


def test_set_mode_goes_through_the_daemon_while_it_holds_the_lock(tmp_path: Path, fake_daemon_api,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    port, seen = fake_daemon_api
    cfg = write_config(tmp_path, f'[web]\nport = {port}\ntoken = "s3cret"\n'
                                 '[actuator]\nkind = "simulated"\n')
    with DaemonLock(tmp_path / "state"):
        assert daemon_running(tmp_path / "state")
        with pytest.raises(LockHeldError):
            DaemonLock(tmp_path / "state").acquire()
        assert main(["set-mode", "BOOST", "--for", "10m", "--config", str(cfg)]) == EX_OK
    assert not daemon_running(tmp_path / "state")
    assert seen == [({"mode": "BOOST", "minutes": 10.0, "reason": "installer check with atsd set-mode"}, "Bearer s3cret")]
    assert "override until 12:10" in capsys.readouterr().out


def test_set_mode_with_a_silent_daemon_exits_69(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path, f'[web]\nport = {free_port()}\n[actuator]\nkind = "simulated"\n')
    with DaemonLock(tmp_path / "state"):
        assert main(["set-mode", "BOOST", "--config", str(cfg)]) == EX_UNAVAILABLE
    assert "does not answer" in capsys.readouterr().err


def test_failsafe_works_with_only_actuator_and_mqtt_valid(mosquitto, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path, mqtt_actuator(mosquitto.port) + '\n[tariff]\nmargin_c_per_kwh = "lots"\n'
                                                                 '[planner]\nbogus = 1\n')
    assert main(["check-config", "--config", str(cfg)]) == EX_CONFIG
    with Recorder(mosquitto.host, mosquitto.port, "heatpump/mode/set") as rec:
        assert main(["failsafe", "--config", str(cfg)]) == EX_OK
    assert rec.payloads[-1] == "normal"
    assert "NORMAL" in capsys.readouterr().out


def test_failsafe_with_a_broken_actuator_section_is_a_config_error(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, '[actuator]\nkind = "relay"\n')
    assert main(["failsafe", "--config", str(cfg)]) == EX_CONFIG


def test_failsafe_unreachable_device_exits_69(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, f'[actuator]\nkind = "modbus"\nhost = "127.0.0.1"\nport = {free_port()}\n'
                                 'register = 1\nwrite_timeout_s = 0.5\n[actuator.values]\nNORMAL = 0\n')
    assert main(["failsafe", "--config", str(cfg)]) == EX_UNAVAILABLE


def test_check_config_shows_hardware_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path, '[actuator]\nkind = "sgready_gpio"\nrelay1_pin = 4\nrelay2_pin = 27\n')
    assert main(["check-config", "--config", str(cfg)]) == EX_OK
    err = capsys.readouterr().err
    assert "relay1_pin = 4 is pulled HIGH" in err and "no indoor sensor" in err
