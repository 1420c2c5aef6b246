"""Installer commands: ``atsd sensors``, ``atsd set-mode`` and ``atsd failsafe``.

Light at import (argparse and stdlib only); the device libraries load inside the command.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

from atsd.cli import EX_FAIL, EX_OK, EX_TEMPFAIL, EX_UNAVAILABLE, EX_USAGE, add_config_arg, command, load_config
from atsd.config import DEFAULT_PATH, EX_CONFIG, Config, ConfigError, parse

# Sections ``failsafe`` tries to use; only [actuator] (and [mqtt] for an MQTT actuator) must be valid.
_FAILSAFE_SECTIONS = ("actuator", "mqtt", "device", "daemon", "web")


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


# -- atsd sensors --------------------------------------------------------------------------------


def _sensors_args(p: argparse.ArgumentParser) -> None:
    add_config_arg(p)
    p.add_argument("--json", action="store_true", help="print the readings as JSON")


@command("sensors", "read every configured sensor once and print value, age and status")(_sensors_args)
def cmd_sensors(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    if not cfg.sensors:
        print("No [[sensors]] configured: atsd runs on the model alone (OFF blocks capped at "
              f"{cfg.supervisor.no_sensor_max_off_min:g} min).")
        return EX_OK
    from atsd.devices.device import DeviceError, utcnow
    from atsd.devices.registry import Devices

    async def read() -> tuple[list[Any], Any]:
        async with Devices(cfg, actuator=False) as dev:
            await dev.read_all()
            now = utcnow()
            return dev.status(now), dev.indoor(now)

    try:
        statuses, indoor = asyncio.run(read())
    except DeviceError as exc:
        _err(f"atsd sensors: {exc}")
        return EX_UNAVAILABLE
    from atsd.devices.device import utcnow as now_fn

    now = now_fn()
    rows = []
    for s in statuses:
        r = s.reading
        rows.append({"name": s.name, "role": s.role, "value": None if r is None else round(r.value, 3),
                     "unit": None if r is None else r.unit, "age_s": None if r is None else round(r.age_s(now), 1),
                     "ok": s.ok, "status": s.message, "rejected": s.rejected, "errors": s.errors})
    if args.json:
        doc = {"sensors": rows, "indoor": None if indoor is None else {
            "value": round(indoor.value, 3), "age_s": round(indoor.age_s(now), 1), "source": indoor.source}}
        print(json.dumps(doc, indent=1))
    else:
        print(f"{'sensor':<16} {'role':<8} {'value':>10} {'age':>7}  status")
        for row in rows:
            value = "-" if row["value"] is None else f"{row['value']:g} {row['unit']}"
            age = "-" if row["age_s"] is None else f"{row['age_s']:.0f} s"
            print(f"{row['name']:<16} {row['role']:<8} {value:>10} {age:>7}  {row['status']}")
        if indoor is not None:
            print(f"indoor (median): {indoor.value:.2f} °C from {indoor.source}")
    return EX_OK if all(r["ok"] for r in rows) else EX_UNAVAILABLE


# -- atsd set-mode -------------------------------------------------------------------------------


def _set_mode_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("mode", help="OFF | ECO | NORMAL | BOOST")
    p.add_argument("--for", dest="duration", default="10m",
                   help="how long to hold it before returning to NORMAL (90s, 10m, 1h; default 10m)")
    add_config_arg(p)


@command("set-mode", "drive the heat pump to a mode (through the supervisor), then back to NORMAL")(_set_mode_args)
def cmd_set_mode(args: argparse.Namespace) -> int:
    from atsd.core.modes import Mode
    from atsd.devices.control import parse_duration_s

    try:
        mode = Mode.parse(args.mode)
        duration_s = parse_duration_s(args.duration)
    except ValueError as exc:
        _err(f"atsd set-mode: {exc}")
        return EX_USAGE
    if not 0 <= duration_s <= 24 * 3600:
        _err(f"atsd set-mode: --for must be within 0..24h (got {args.duration})")
        return EX_USAGE
    cfg = load_config(args)
    return set_mode(cfg, mode, duration_s)


def set_mode(cfg: Config, mode: Any, duration_s: float, **drive_kw: Any) -> int:
    """The command's body: override through the daemon if it runs, else drive the device directly."""
    from atsd.devices.control import DaemonLock, LockHeldError, drive, request_override
    from atsd.devices.device import DeviceError

    lock = DaemonLock(cfg.daemon.state_dir)
    try:
        lock.acquire()
    except LockHeldError as held:
        try:
            answer = request_override(cfg, mode, duration_s)
        except DeviceError as exc:
            _err(f"atsd set-mode: {held}: {exc}")
            return EX_UNAVAILABLE
        print(f"daemon: {answer.get('mode', mode)}: {answer.get('reason', 'override accepted')}")
        return EX_OK
    except DeviceError as exc:
        _err(f"atsd set-mode: {exc}")
        return EX_UNAVAILABLE
    try:
        result = asyncio.run(drive(cfg, mode, duration_s, **drive_kw))
    except DeviceError as exc:
        _err(f"atsd set-mode: {exc}")
        return EX_UNAVAILABLE
    except KeyboardInterrupt:
        _err("atsd set-mode: interrupted; the actuator was returned to NORMAL on the way out")
        return 130
    finally:
        lock.release()
    if not result.returned_to_normal:
        _err("atsd set-mode: NORMAL could not be confirmed at the end; run 'atsd failsafe'")
        return EX_FAIL
    return EX_OK if result.applied is mode else EX_TEMPFAIL


# -- atsd failsafe -------------------------------------------------------------------------------


def _failsafe_args(p: argparse.ArgumentParser) -> None:
    add_config_arg(p)


def load_lenient(path: Path | None) -> Config:
    """Only the sections ``failsafe`` needs, each kept when valid; [actuator] must be valid.

    A broken [tariff] or [sources] must never stop the heat pump from being released.
    """
    p = path or DEFAULT_PATH
    try:
        data = tomllib.loads(p.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{p}: file not found"]) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError([f"{p}: cannot read: {exc}"]) from exc
    kept: dict[str, Any] = {}
    for name in _FAILSAFE_SECTIONS:
        if name not in data:
            continue
        try:
            parse({name: data[name]}, str(p))
        except ConfigError as exc:
            if name in ("actuator", "mqtt"):
                raise
            print(f"warning: ignoring an invalid [{name}] section: {exc}", file=sys.stderr)
            continue
        kept[name] = data[name]
    return parse(kept, str(p))


@command("failsafe", "set the heat pump to NORMAL and exit (for ExecStopPost and emergencies)")(_failsafe_args)
def cmd_failsafe(args: argparse.Namespace) -> int:
    cfg = load_lenient(args.config)
    return failsafe_command(cfg)


def failsafe_command(cfg: Config, **kw: Any) -> int:
    from atsd.devices.control import failsafe, load_state, save_state
    from atsd.devices.device import DeviceError, utcnow

    try:
        name = asyncio.run(failsafe(cfg, **kw))
    except DeviceError as exc:
        _err(f"atsd failsafe: NORMAL not confirmed: {exc}")
        return EX_UNAVAILABLE
    print("no actuator configured ([actuator] kind = 'none'): nothing to do" if name == "none"
          else f"{name}: NORMAL")
    # Tell a later daemon start that the heat pump is in NORMAL now (best effort, through the
    # supervisor so the switch is counted like any other).
    state = load_state(cfg.daemon.state_dir)
    if state is not None:
        from atsd.core.modes import Mode
        from atsd.core.supervisor import Supervisor, SupervisorRules

        sup = Supervisor(SupervisorRules.from_config(cfg), cfg.device.tz, state)
        sup.decide(utcnow(), Mode.NORMAL, None, None, "atsd failsafe")
        try:
            save_state(cfg.daemon.state_dir, sup.state)
        except OSError as exc:
            _err(f"atsd failsafe: could not record NORMAL in {cfg.daemon.state_dir}: {exc.strerror}")
    return EX_OK


__all__ = ["EX_CONFIG", "cmd_failsafe", "cmd_sensors", "cmd_set_mode", "load_lenient", "set_mode"]
