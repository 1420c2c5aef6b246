"""``atsd run`` and ``atsd status``: start the daemon, or ask the running one what it does and why.

Light at import time (argparse only); the daemon and its libraries are imported when the command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from atsd.cli import EX_OK, EX_UNAVAILABLE, add_config_arg, command, load_config


def _run_args(p: argparse.ArgumentParser) -> None:
    add_config_arg(p)
    p.add_argument("--demo", action="store_true",
                   help="simulated house on bundled real prices and weather; no config, network or hardware")
    p.add_argument("--speed", type=float, default=None,
                   help="run time N times faster (demo default 60: an hour a minute)")
    p.add_argument("--state-dir", type=Path, default=None, help="history and restart state (overrides [daemon])")
    p.add_argument("--port", type=int, default=None, help="web port (overrides [web] port)")


@command("run", "run the daemon (systemd starts it; --demo runs a simulated house)")(_run_args)
def cmd_run(args: argparse.Namespace) -> int:
    import asyncio
    import dataclasses

    from atsd import systemd
    from atsd.clock import AcceleratedClock, RealClock

    cfg = load_config(args)
    if args.demo:
        from atsd.demo import DEMO_START, demo_config

        cfg = demo_config(cfg if args.config else None, args.state_dir)
    elif args.state_dir is not None:
        cfg = dataclasses.replace(cfg, daemon=dataclasses.replace(cfg.daemon, state_dir=args.state_dir))
    if args.speed is not None and not 0 < args.speed <= 100_000:
        print(f"atsd run: --speed must be within 0..100000 (got {args.speed})", file=sys.stderr)
        return 2
    speed = args.speed if args.speed is not None else (60.0 if args.demo else 1.0)
    ctx = systemd.setup_logging(cfg.daemon.log_level, device_id=cfg.device.device_id)
    clock = AcceleratedClock(speed, DEMO_START if args.demo else None) if speed != 1.0 or args.demo else RealClock()

    from atsd.daemon import Daemon

    daemon = Daemon(cfg, clock, demo=args.demo, web_port=args.port)
    daemon.log_ctx = ctx
    if args.demo:
        port = args.port if args.port is not None else cfg.web.port
        print(f"atsd demo: a simulated house on real Finnish prices (January 2026) at {speed:g}x speed; "
              f"status page on http://localhost:{port}/ (Ctrl-C stops)", file=sys.stderr)
    return asyncio.run(daemon.run())


def _status_args(p: argparse.ArgumentParser) -> None:
    add_config_arg(p)
    p.add_argument("--port", type=int, default=None, help="the daemon's web port (default [web] port)")
    p.add_argument("--json", action="store_true", help="print the daemon's /api/status document")


@command("status", "what the running daemon does now and why")(_status_args)
def cmd_status(args: argparse.Namespace) -> int:
    import urllib.error
    import urllib.request

    cfg = load_config(args, demo_ok=True)
    port = args.port or cfg.web.port
    url = f"http://127.0.0.1:{port}/api/status"
    req = urllib.request.Request(url)
    from atsd.config import read_secret

    token = read_secret(cfg.web.token, cfg.web.token_file, "ATSD_WEB_TOKEN")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            doc = json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"atsd status: the daemon does not answer on {url} ({exc}); is it running? "
              "Try `systemctl status atsd` and `journalctl -u atsd -n 50`.", file=sys.stderr)
        return EX_UNAVAILABLE
    if args.json:
        print(json.dumps(doc, indent=1))
        return EX_OK
    print(render_status(doc))
    return EX_OK


def render_status(doc: dict) -> str:  # type: ignore[type-arg]
    """The ``/api/status`` document as a few lines a person reads over SSH (times in local time)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    dev = doc.get("device") or {}
    tz = ZoneInfo(dev.get("timezone") or "Europe/Helsinki")

    def local(t: str | None) -> str:
        if not t:
            return "-"
        return datetime.fromisoformat(t.replace("Z", "+00:00")).astimezone(tz).strftime("%a %H:%M")

    def num(x: object, unit: str) -> str:
        return f"{x:.1f} {unit}" if isinstance(x, int | float) else "-"

    lines = [f"{dev.get('name', '')} ({dev.get('device_id', '')}) at {local(doc.get('now'))}",
             f"mode {doc.get('mode')} since {local(doc.get('mode_since'))} (by {doc.get('by')}): {doc.get('reason')}",
             f"indoor {num(doc.get('indoor_c'), '°C')}, outdoor {num(doc.get('outdoor_c'), '°C')}"]
    today = doc.get("today") or {}
    if today:
        lines.append(f"today: cost {today.get('cost_eur', 0):.2f} EUR, saved {today.get('savings_eur', 0):.2f} EUR "
                     f"against always-NORMAL (model estimate), {today.get('energy_kwh', 0):.1f} kWh")
    plan = doc.get("plan") or {}
    for c in (plan.get("next_changes") or [])[:4]:
        lines.append(f"next: {c.get('mode')} at {local(c.get('start'))}")
    if not plan:
        lines.append("no plan yet: the supervisor holds NORMAL")
    for s in doc.get("sources", []):
        lines.append(f"{'ok' if s.get('ok') else '!!'} {s.get('name')}: {s.get('message', '')}")
    for a in doc.get("alerts", []):
        lines.append(f"alert ({a.get('level')}): {a.get('message')}")
    return "\n".join(lines)
