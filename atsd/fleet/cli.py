"""``atsd fleet``: the optional fleet service (argparse only at import; the service when it runs)."""

from __future__ import annotations

import argparse

from atsd.cli import add_config_arg, command


def _fleet_args(p: argparse.ArgumentParser) -> None:
    add_config_arg(p)
    p.add_argument("--port", type=int, default=None, help="web port (default [fleet] port, 8090; 0 picks a free one)")
    p.add_argument("--bind", default=None, help="address to serve on (default [fleet] bind, 127.0.0.1)")
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")


@command("fleet", "serve the fleet page and API: every house on the broker, group flexibility, "
                  "demand-response dispatch")(_fleet_args)
def cmd_fleet(args: argparse.Namespace) -> int:
    import asyncio

    from atsd import systemd
    from atsd.config import load
    from atsd.fleet.service import serve

    cfg = load(args.config)
    systemd.setup_logging(args.log_level.upper(), device_id="fleet")
    try:
        return asyncio.run(serve(cfg, args.bind, args.port))
    except KeyboardInterrupt:
        return 130
