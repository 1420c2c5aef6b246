"""Fixtures for the web tests: the demo source at a fixed time, an app and a client over a real socket."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import TestClient, TestServer

from atsd.config import Config
from atsd.web import DemoStatusSource, create_app

# Inside the bundled demo week (2026-01-19..26), a Tuesday noon in Helsinki.
NOW = datetime(2026, 1, 20, 10, 0, tzinfo=UTC)
TOKEN = "s3cret-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def make_cfg(*, token: str | None = TOKEN, private: bool = False, max_body_bytes: int = 65536) -> Config:
    cfg = Config()
    web = dataclasses.replace(cfg.web, token=token, private=private, max_body_bytes=max_body_bytes)
    # The web layer is tested on a plan that switches often (greedy's), whatever the default planner is.
    planner = dataclasses.replace(cfg.planner, planner="greedy")
    return dataclasses.replace(cfg, web=web, planner=planner)


@pytest.fixture
def cfg() -> Config:
    return make_cfg()


@pytest.fixture
def source(cfg: Config) -> DemoStatusSource:
    return DemoStatusSource(cfg, NOW)


async def open_client(cfg: Config, source: object) -> TestClient:
    client = TestClient(TestServer(create_app(cfg, source, token=cfg.web.token or "")))  # type: ignore[arg-type]
    await client.start_server()
    return client


@pytest.fixture
async def client(cfg: Config, source: DemoStatusSource) -> AsyncIterator[TestClient]:
    c = await open_client(cfg, source)
    yield c
    await c.close()
