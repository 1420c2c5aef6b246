"""``python -m atsd.web --demo``: the status page on demo data, until the daemon serves it itself."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
from pathlib import Path

from atsd.config import Config, load


async def _serve(cfg: Config, bind: str, port: int) -> None:
    from atsd.web import DemoStatusSource, start
    from atsd.web.app import bound_port

    runner = await start(cfg, DemoStatusSource(cfg), bind=bind, port=port)
    print(f"atsd status page (demo data): http://{bind}:{bound_port(runner)}/", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m atsd.web", description=__doc__)
    p.add_argument("--demo", action="store_true", help="serve the demo house (the only source until the daemon exists)")
    p.add_argument("--config", type=Path, default=None, help="config file for [device], [comfort], [web] ...")
    p.add_argument("--bind", default=None, help="address (default [web] bind)")
    p.add_argument("--port", type=int, default=None, help="port (default [web] port; 0 picks a free one)")
    p.add_argument("--private", action="store_true", help="reads need the token too")
    args = p.parse_args()
    if not args.demo:
        p.error("only --demo for now: the daemon (atsd run) serves the page for a real house")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = load(args.config) if args.config else Config()
    if args.private:
        cfg = dataclasses.replace(cfg, web=dataclasses.replace(cfg.web, private=True))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(cfg, args.bind or cfg.web.bind, cfg.web.port if args.port is None else args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
