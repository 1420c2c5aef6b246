"""Hypothesis throws random bodies at every POST endpoint: no answer is ever a 5xx.

Hypothesis drives synchronous tests, so the app runs on an event loop of this module's own.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atsd.core.timegrid import iso_z
from atsd.web import DemoStatusSource, create_app
from tests.web.conftest import AUTH, NOW, make_cfg

POSTS = ("/api/comfort-risk", "/api/override", "/api/demand-response", "/strategy/daily-plan",
         "/analytics/comfort-risk", "/grid/demand-response")
KEYS = ("mode", "until", "minutes", "reason", "schedule", "end", "start", "duration_min", "kind", "event_id",
        "power_limit_kw", "v", "device_id", "target_date", "proposed_schedule", "duration_minutes", "severity",
        "affected_areas", "hour", "timestamp")

times = st.one_of(
    st.datetimes(timezones=st.timezones()).map(lambda t: t.isoformat()),
    st.integers(-100, 100).map(lambda h: iso_z(NOW + timedelta(hours=h))),
    st.sampled_from(["2026-01-20", "2026-01-20T10:00:00", "9999-12-31T23:59:59+14:00", "0001-01-01T00:00:00-12:00",
                     "24:00", "2026-13-01T00:00:00Z", "", "Z"]),
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                    st.text(max_size=20), times,
                    st.sampled_from(["OFF", "ECO", "NORMAL", "BOOST", "AUTO", "shed", "boost", "atsd-house", "high"]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=4), max_leaves=20)
bodies = st.one_of(
    st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6),
    st.fixed_dictionaries({"schedule": st.lists(st.fixed_dictionaries({"start": times, "mode": scalars}), max_size=5)}),
    st.fixed_dictionaries({"device_id": st.just("atsd-house"), "proposed_schedule": st.lists(
        st.dictionaries(st.sampled_from(("hour", "mode", "timestamp")), scalars), max_size=5)}),
    json_values,
)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[asyncio.AbstractEventLoop, TestClient]]:
    loop = asyncio.new_event_loop()
    cfg = make_cfg()

    async def start() -> TestClient:
        c = TestClient(TestServer(create_app(cfg, DemoStatusSource(cfg, NOW), token=cfg.web.token)))
        await c.start_server()
        return c

    client = loop.run_until_complete(start())
    yield loop, client
    loop.run_until_complete(client.close())
    loop.close()


def post(served: tuple[asyncio.AbstractEventLoop, TestClient], path: str, data: bytes) -> tuple[int, Any]:
    loop, client = served

    async def go() -> tuple[int, Any]:
        r = await client.post(path, data=data, headers={**AUTH, "Content-Type": "application/json"})
        return r.status, await r.json()

    return loop.run_until_complete(go())


FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])


@pytest.mark.parametrize("path", POSTS)
@FUZZ
@given(body=bodies)
def test_random_json_bodies_never_get_a_5xx(served: Any, path: str, body: Any) -> None:
    status, doc = post(served, path, json.dumps(body).encode())
    assert status < 500, (status, doc)
    if status >= 400:
        assert isinstance(doc["error"], str) and doc["error"]


@pytest.mark.parametrize("path", POSTS)
@FUZZ
@given(data=st.binary(max_size=200))
def test_random_bytes_never_get_a_5xx(served: Any, path: str, data: bytes) -> None:
    status, doc = post(served, path, data)
    assert status < 500, (status, doc)


@FUZZ
@given(query=st.dictionaries(st.sampled_from(("from", "to", "x")), st.one_of(times, st.text(max_size=30)), max_size=3))
def test_random_history_queries_never_get_a_5xx(served: Any, query: dict[str, str]) -> None:
    loop, client = served

    async def go() -> int:
        r = await client.get("/api/history", params=query)
        await r.read()
        return r.status

    assert loop.run_until_complete(go()) < 500
