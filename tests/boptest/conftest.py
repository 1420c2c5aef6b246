"""The fake BOPTEST server on a free loopback port (aiohttp), one per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from tests.boptest.fake_server import FakeBoptest
from tests.conftest import free_port


@pytest.fixture
async def boptest_server() -> AsyncIterator[Callable[..., Any]]:
    """A factory: ``await boptest_server(api="service", ...)`` returns ``(url, FakeBoptest)``."""
    runners: list[web.AppRunner] = []

    async def start(**kw: Any) -> tuple[str, FakeBoptest]:
        fake = FakeBoptest(**kw)
        runner = web.AppRunner(fake.app())
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
        return f"http://127.0.0.1:{port}", fake

    yield start
    for r in runners:
        await r.cleanup()
