"""Every error path: bodies, sizes, unknown paths and methods, private mode, faults inside atsd."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from atsd.web import DemoStatusSource, StatusSource
from tests.web.conftest import AUTH, NOW, TOKEN, make_cfg, open_client

WRITES = ("/api/override", "/api/demand-response", "/grid/demand-response")
POSTS = ("/api/comfort-risk", "/strategy/daily-plan", "/analytics/comfort-risk", *WRITES)


@pytest.mark.parametrize("path", POSTS)
@pytest.mark.parametrize(("body", "words"), [
    (b"", "empty"), (b"{", "not valid JSON"), (b"[1, 2]", "must be a JSON object"), (b'"text"', "JSON object"),
    (b'{"mode": NaN}', "not valid JSON"), (b"\xff\xfe{}", "not UTF-8"), (b"[" * 5000 + b"]" * 5000, "nested"),
])
async def test_malformed_bodies_get_400_with_a_message(client: TestClient, path: str, body: bytes, words: str) -> None:
    r = await client.post(path, data=body, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status == 400
    doc = await r.json()
    assert words in doc["error"] and doc["status"] == 400


@pytest.mark.parametrize("path", POSTS)
async def test_bodies_over_the_limit_get_413(source: DemoStatusSource, path: str) -> None:
    client = await open_client(make_cfg(max_body_bytes=1024), source)
    try:
        r = await client.post(path, data=b'{"x": "' + b"a" * 2000 + b'"}', headers=AUTH)
        assert r.status == 413
        assert "limit is 1024" in (await r.json())["error"]
    finally:
        await client.close()


async def test_a_chunked_body_over_the_limit_gets_413_too(source: DemoStatusSource) -> None:
    client = await open_client(make_cfg(max_body_bytes=1024), source)

    async def chunks() -> Any:
        for _ in range(10):
            yield b" " * 500

    try:
        r = await client.post("/api/override", data=chunks(), headers=AUTH)
        assert r.status == 413 and "1024" in (await r.json())["error"]
    finally:
        await client.close()


def test_the_demo_source_implements_the_protocol(source: DemoStatusSource) -> None:
    assert isinstance(source, StatusSource)


async def test_unknown_paths_and_methods_get_json_404_and_405(client: TestClient) -> None:
    for path in ("/nope", "/api", "/api/plan/extra", "/static/secret.txt", "/static/../config.py"):
        r = await client.get(path)
        assert r.status == 404, path
        assert r.content_type == "application/json"
    r = await client.delete("/api/plan")
    assert r.status == 405 and "GET" in r.headers["Allow"]
    assert "not allowed" in (await r.json())["error"]
    r = await client.get("/api/override")
    assert r.status == 405


class Broken(DemoStatusSource):
    """A daemon whose state is corrupt: every read raises."""

    def snapshot(self) -> Any:
        raise RuntimeError("boom: secret internal state /var/lib/atsd")

    async def evaluate(self, schedule: Any) -> Any:
        raise KeyError("boom")

    async def override(self, *args: Any) -> Any:
        raise ZeroDivisionError("boom")


async def test_internal_faults_answer_503_json_without_a_traceback(cfg: Any, caplog: pytest.LogCaptureFixture) -> None:
    client = await open_client(cfg, Broken(cfg, NOW))
    caplog.set_level(logging.ERROR, logger="atsd.web.app")
    try:
        calls = [client.get("/api/status"), client.get("/"), client.get("/healthz"), client.get("/api/history"),
                 client.post("/api/comfort-risk", json={"schedule": [{"start": "2026-01-20T10:00:00Z", "mode": "ECO"}]}),
                 client.post("/api/override", json={"mode": "ECO", "minutes": 10}, headers=AUTH)]
        for call in calls:
            r = await call
            assert r.status == 503
            text = await r.text()
            assert "Traceback" not in text and "boom" not in text and "/var/lib" not in text
            assert "internal error" in (await r.json())["error"]
        metrics = await client.get("/metrics")  # a scrape still answers, and says the snapshot failed
        assert metrics.status == 200 and 'atsd_snapshot_ok{device_id="atsd-house"} 0.0' in await metrics.text()
    finally:
        await client.close()
    assert "boom" in caplog.text  # the log has the details


class NoPlanYet(DemoStatusSource):
    def plan(self) -> Any:
        return None

    def forecast(self) -> Any:
        return None


async def test_before_the_first_plan_plan_reads_answer_503_and_the_rest_works(cfg: Any) -> None:
    client = await open_client(cfg, NoPlanYet(cfg, NOW))
    try:
        for path in ("/api/plan", "/api/forecast", "/forecasts/price-carbon"):
            r = await client.get(path)
            assert r.status == 503 and "no " in (await r.json())["error"], path
        r = await client.post("/api/comfort-risk", json={"schedule": [{"start": "2026-01-20T10:00:00Z", "mode": "ECO"}]})
        assert r.status == 503
        for path in ("/api/status", "/api/current-action", "/", "/api/chart", "/metrics"):
            assert (await client.get(path)).status == 200, path
        doc = await (await client.get("/healthz")).json()
        assert doc["status"] == "degraded" and doc["plan"] is False
    finally:
        await client.close()


async def test_private_mode_needs_the_token_for_reads(source: DemoStatusSource) -> None:
    client = await open_client(make_cfg(private=True), source)
    try:
        for path in ("/api/status", "/api/plan", "/api/history", "/metrics", "/devices", "/api/chart",
                     "/strategy/current-action/atsd-house"):
            r = await client.get(path)
            assert r.status == 401, path
            assert (await client.get(path, headers=AUTH)).status == 200, path
        r = await client.post("/api/comfort-risk", json={})
        assert r.status == 401
        for path in ("/healthz", "/health", "/openapi.json", "/static/app.js"):
            assert (await client.get(path)).status == 200, path
        page = await (await client.get("/")).text()
        assert '"private":true,"data":null' in page  # the page ships no house data without the token
    finally:
        await client.close()


async def test_token_compare_is_exact(client: TestClient) -> None:
    for value in (TOKEN[:-1], TOKEN + "x", TOKEN.upper(), f"{TOKEN} extra", "Bearer", "Bearer ", "bearer"):
        header = value if value.lower().startswith("bearer") else f"Bearer {value}"
        r = await client.post("/api/override", json={"mode": "AUTO"}, headers={"Authorization": header})
        assert r.status == 401, value
    r = await client.post("/api/override", json={"mode": "AUTO"}, headers={"Authorization": f"bearer {TOKEN}"})
    assert r.status == 200


async def test_page_inlines_the_first_data_and_serves_its_own_assets(client: TestClient) -> None:
    r = await client.get("/")
    assert r.status == 200 and r.content_type == "text/html"
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]
    html = await r.text()
    assert '<script id="initial" type="application/json">' in html and '"mode":"OFF"' in html
    assert "http://" not in html and "https://" not in html  # no CDN, nothing from elsewhere
    assert "</script><" not in html.split('type="application/json">')[1].split("</script>")[0]
    for name in ("app.js", "app.css", "icon.svg"):
        assert f"/static/{name}?v=" in html
        a = await client.get(f"/static/{name}")
        assert a.status == 200 and "immutable" in a.headers["Cache-Control"]
        again = await client.get(f"/static/{name}", headers={"If-None-Match": a.headers["ETag"]})
        assert again.status == 304
    js = await (await client.get("/static/app.js")).text()
    assert "http://" not in js.replace("http://www.w3.org/2000/svg", "") and "https://" not in js


async def test_reason_text_cannot_break_out_of_the_inline_data(cfg: Any) -> None:
    class Evil(DemoStatusSource):
        def snapshot(self) -> Any:
            snap = super().snapshot()
            snap["reason"] = "</script><script>alert(1)</script><!--"
            return snap

    client = await open_client(cfg, Evil(cfg, NOW))
    try:
        html = await (await client.get("/")).text()
        assert "<script>alert(1)" not in html and "\\u003c/script\\u003e" in html
    finally:
        await client.close()
