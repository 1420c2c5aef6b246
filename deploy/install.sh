#!/usr/bin/env bash
# Install or upgrade atsd on Raspberry Pi OS Bookworm (Python 3.11) or Trixie (Python 3.13).
#
#   sudo deploy/install.sh [--source SPEC] [--no-start]
#
# Idempotent: run it again after an upgrade or after changing the relay pins in
# /etc/atsd/config.toml. It installs the Debian packages, a venv under /opt/atsd that sees Debian's
# lgpio and systemd modules (nothing compiles on the Pi), the `atsd` user, the config and credential
# files (never overwritten), the hardware watchdog, the relay pins' boot state and 1-Wire in the
# firmware's config.txt, and the systemd unit; then enables and (re)starts the service.
# --source: what pip installs (default: this checkout; e.g. "atsd==0.2.0" from PyPI).

set -euo pipefail

PREFIX=${ATSD_PREFIX:-/opt/atsd}
ETC=${ATSD_ETC:-/etc/atsd}
UNIT_DIR=/etc/systemd/system
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
APT_PACKAGES=(python3-venv python3-lgpio python3-systemd mosquitto-clients)
CREDENTIALS=(entsoe_token fingrid_api_key mqtt_password web_token)
MARK_BEGIN="# BEGIN atsd"
MARK_END="# END atsd"
BOOT_CHANGED=0

say() { printf 'atsd install: %s\n' "$*"; }
die() { printf 'atsd install: error: %s\n' "$*" >&2; exit 1; }

# The firmware's config.txt: /boot/firmware since Bookworm, /boot before.
boot_config_path() {
    local p
    for p in /boot/firmware/config.txt /boot/config.txt; do
        if [[ -f $p ]]; then
            printf '%s\n' "$p"
            return 0
        fi
    done
    return 1
}

# Print two lines read from an atsd config.toml: the config.txt line that sets the SG-Ready relay
# pins as outputs at their de-energised level (empty when the actuator is not sgready_gpio), and
# "onewire" when a sensor of kind onewire is configured (else empty). Defaults match atsd/config.py.
config_facts() {
    python3 - "$1" <<'PY'
import sys
import tomllib

try:
    with open(sys.argv[1], "rb") as f:
        cfg = tomllib.load(f)
except (OSError, tomllib.TOMLDecodeError) as exc:
    print(f"atsd install: cannot read {sys.argv[1]} ({exc}); relay pins left alone", file=sys.stderr)
    cfg = {}
act = cfg.get("actuator", {})
if act.get("kind") == "sgready_gpio":
    pins = [int(act.get("relay1_pin", 17)), int(act.get("relay2_pin", 27))]
    # De-energised relays are SG-Ready state 2 (NORMAL): drive low for active-high boards, high for
    # active-low ones, from power-on until atsd takes over.
    level = "dl" if act.get("active_high", True) else "dh"
    print(f"gpio={','.join(map(str, pins))}=op,{level}")
else:
    print()
sensors = cfg.get("sensors", [])
print("onewire" if any(s.get("kind") == "onewire" for s in sensors if isinstance(s, dict)) else "")
PY
}

# Replace the block atsd manages at the end of config.txt with the given lines (none: remove it).
# Sets BOOT_CHANGED=1 when the file changed; keeps the file's owner and mode.
write_boot_block() {
    local file=$1
    shift
    local tmp
    tmp=$(mktemp)
    sed "/^${MARK_BEGIN}/,/^${MARK_END}/d" "$file" >"$tmp"
    if [[ -s $tmp && -n $(tail -c1 "$tmp") ]]; then
        printf '\n' >>"$tmp"
    fi
    if (($# > 0)); then
        {
            printf '%s (managed by atsd install.sh: edit /etc/atsd/config.toml and run it again)\n' \
                "$MARK_BEGIN"
            printf '[all]\n'
            printf '%s\n' "$@"
            printf '%s\n' "$MARK_END"
        } >>"$tmp"
    fi
    if cmp -s "$tmp" "$file"; then
        rm -f "$tmp"
        return 0
    fi
    cat "$tmp" >"$file"
    rm -f "$tmp"
    BOOT_CHANGED=1
}

# The lines atsd wants in config.txt for a given atsd config file.
boot_lines() {
    local config=$1 boot=$2 gpio_line="" onewire=""
    if [[ -f $config ]]; then
        { read -r gpio_line && read -r onewire; } < <(config_facts "$config") || true
    fi
    printf '%s\n' "dtparam=watchdog=on"
    if [[ -n $gpio_line ]]; then
        printf '%s\n' "$gpio_line"
    fi
    # Only when no other line loads it already: two w1-gpio overlays on one pin conflict.
    if [[ -n $onewire ]] && ! sed "/^${MARK_BEGIN}/,/^${MARK_END}/d" "$boot" | grep -q '^dtoverlay=w1-gpio'; then
        printf '%s\n' "dtoverlay=w1-gpio"
    fi
}

configure_boot() {
    local boot lines=()
    if ! boot=$(boot_config_path); then
        say "no /boot/firmware/config.txt: not a Raspberry Pi, skipping watchdog and GPIO boot state"
        return 0
    fi
    mapfile -t lines < <(boot_lines "$ETC/config.toml" "$boot")
    write_boot_block "$boot" "${lines[@]}"
    if ((BOOT_CHANGED)); then
        say "updated $boot (${lines[*]}): reboot for it to take effect"
    fi
}

configure_systemd_watchdog() {
    # systemd pets the SoC's hardware watchdog (bcm2835: at most 15 s); a hung kernel reboots the Pi.
    local dir=/etc/systemd/system.conf.d file=/etc/systemd/system.conf.d/50-atsd-watchdog.conf
    local want
    want=$'# Installed by atsd install.sh\n[Manager]\nRuntimeWatchdogSec=15s\nRebootWatchdogSec=2min\n'
    install -d -m 0755 "$dir"
    if [[ ! -f $file ]] || [[ $(<"$file")$'\n' != "$want" ]]; then
        printf '%s' "$want" >"$file"
        systemctl daemon-reexec
        say "hardware watchdog: RuntimeWatchdogSec=15s"
    fi
}

install_packages() {
    say "installing Debian packages: ${APT_PACKAGES[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${APT_PACKAGES[@]}"
}

ensure_user() {
    local g
    for g in gpio dialout; do
        getent group "$g" >/dev/null || groupadd --system "$g"
    done
    if ! id atsd >/dev/null 2>&1; then
        useradd --system --user-group --home-dir /var/lib/atsd --no-create-home \
            --shell /usr/sbin/nologin --comment "atsd heat-pump optimizer" atsd
        say "created user atsd"
    fi
    usermod -a -G gpio,dialout atsd
}

install_venv() {
    local source=$1 venv=$PREFIX/venv py_sys py_venv
    py_sys=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "atsd needs Python >= 3.11 (found $py_sys)"
    if [[ -x $venv/bin/python ]]; then
        py_venv=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' || true)
        if [[ $py_venv != "$py_sys" ]]; then
            say "Python changed ($py_venv -> $py_sys, e.g. an upgrade to Trixie): rebuilding the venv"
            rm -rf "$venv"
        fi
    fi
    if [[ ! -x $venv/bin/python ]]; then
        install -d -m 0755 "$PREFIX"
        # --system-site-packages: Debian's lgpio (needed on the Pi 5) and systemd modules.
        python3 -m venv --system-site-packages "$venv"
    fi
    say "installing $source into $venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade "$source"
    ln -sfn "$venv/bin/atsd" /usr/local/bin/atsd
    if [[ -f $REPO/docs/install.md ]]; then
        install -m 0644 "$REPO/docs/install.md" "$PREFIX/install.md"
    fi
}

install_config() {
    local c
    install -d -m 0750 -o root -g atsd "$ETC"
    if [[ ! -e $ETC/config.toml ]]; then
        if [[ -f $REPO/config.example.toml ]]; then
            install -m 0640 -o root -g atsd "$REPO/config.example.toml" "$ETC/config.toml"
            say "wrote $ETC/config.toml from config.example.toml: edit it, then run this again"
        else
            say "no config.example.toml next to this script: write $ETC/config.toml yourself"
        fi
    fi
    # systemd's LoadCredential= needs every file to exist; an empty one means "not set".
    install -d -m 0700 -o root -g root "$ETC/credentials"
    for c in "${CREDENTIALS[@]}"; do
        if [[ ! -e $ETC/credentials/$c ]]; then
            install -m 0600 -o root -g root /dev/null "$ETC/credentials/$c"
        fi
    done
}

install_unit() {
    install -m 0644 "$REPO/deploy/atsd.service" "$UNIT_DIR/atsd.service"
    systemctl daemon-reload
    systemctl enable atsd.service >/dev/null
}

start_service() {
    if [[ ! -f $ETC/config.toml ]]; then
        say "not starting: $ETC/config.toml is missing"
        return 0
    fi
    if ! /usr/local/bin/atsd check-config --config "$ETC/config.toml"; then
        say "not starting: fix $ETC/config.toml (see above), then: sudo systemctl restart atsd"
        return 0
    fi
    systemctl restart atsd.service
    say "started: see 'systemctl status atsd', 'journalctl -u atsd -f' and 'atsd status'"
}

main() {
    local source=$REPO start=1
    while (($# > 0)); do
        case $1 in
            --source) source=${2:?--source needs a pip requirement or path}; shift 2 ;;
            --no-start) start=0; shift ;;
            -h | --help) sed -n '2,12p' "${BASH_SOURCE[0]}"; exit 0 ;;
            *) die "unknown option $1 (see --help)" ;;
        esac
    done
    [[ $EUID -eq 0 ]] || die "run as root: sudo $0"
    if [[ -r /etc/os-release ]]; then
        # shellcheck disable=SC1091
        . /etc/os-release
        case ${VERSION_CODENAME:-} in
            bookworm | trixie) ;;
            *) say "tested on Raspberry Pi OS Bookworm and Trixie, this is ${PRETTY_NAME:-unknown}: continuing" ;;
        esac
    fi
    install_packages
    ensure_user
    install_venv "$source"
    install_config
    configure_boot
    configure_systemd_watchdog
    install_unit
    if ((start)); then
        start_service
    fi
    if ((BOOT_CHANGED)); then
        say "config.txt changed: reboot when convenient (sudo reboot)"
    fi
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi
