"""``atsd fleet``: the view, the broker link and the web app in one process, until SIGTERM.

:class:`FleetService` is an async context manager (entering connects to the broker and serves the
API; leaving stops both), so tests and the benchmark run the same object the command runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from types import TracebackType
from typing import Self

from aiohttp import web

from atsd import systemd
from atsd.config import Config, ConfigError, read_secret
from atsd.devices.device import utcnow
from atsd.fleet.app import create_app
from atsd.fleet.link import FleetLink
from atsd.fleet.view import FleetView

log = logging.getLogger(__name__)


def fleet_token(cfg: Config) -> str | None:
    f = cfg.fleet
    return read_secret(f.token, f.token_file, "ATSD_FLEET_TOKEN")


class FleetService:
    def __init__(self, cfg: Config, *, bind: str | None = None, port: int | None = None,
                 token: str | None = None) -> None:
        self.cfg = cfg
        self.bind = bind or cfg.fleet.bind
        self.port = cfg.fleet.port if port is None else port
        self.token = token if token is not None else fleet_token(cfg)
        if not self.token:
            where = cfg.path or "the config"
            raise ConfigError([f"{where}: [fleet] needs token or token_file (or ATSD_FLEET_TOKEN, systemd credential "
                               "fleet_token): the fleet API dispatches demand response and must not be open"])
        self.clock = utcnow
        self.view = FleetView(cfg.fleet.offline_after_s)
        self.link = FleetLink(cfg, self.view, self.clock)
        self.runner: web.AppRunner | None = None

    @property
    def bound_port(self) -> int:
        assert self.runner is not None
        for site in self.runner.sites:
            server = getattr(site, "_server", None)
            if server is not None and server.sockets:
                return int(server.sockets[0].getsockname()[1])
        raise RuntimeError("the fleet app is not serving")

    async def __aenter__(self) -> Self:
        await self.link.__aenter__()
        try:
            self.runner = web.AppRunner(create_app(self.view, self.link, self.token, self.clock), access_log=None,
                                        handle_signals=False)
            await self.runner.setup()
            await web.TCPSite(self.runner, self.bind, self.port).start()
        except BaseException:
            await self.link.stop()
            raise
        log.info("fleet: page and API on http://%s:%s/ (broker %s).", self.bind, self.bound_port, self.link.where)
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
        await self.link.stop()


async def serve(cfg: Config, bind: str | None, port: int | None) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with FleetService(cfg, bind=bind, port=port) as svc:
        if not await svc.link.wait_connected(10.0):
            log.warning("fleet: not yet connected to the broker at %s (%s); retrying in the background.",
                        svc.link.where, svc.link.last_error or "connecting")
        systemd.ready(f"serving on {svc.bind}:{svc.bound_port}")
        print(f"atsd fleet: http://{svc.bind}:{svc.bound_port}/ (broker {svc.link.where})", flush=True)
        await stop.wait()
        systemd.stopping()
    return 0
