"""The JSON API under /api, /healthz and /metrics, with the demo source at a fixed time."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from atsd.core.timegrid import iso_z
from atsd.web import DemoStatusSource, create_app
from tests.web.conftest import AUTH, NOW, make_cfg, open_client

Z_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
TIME_KEYS = {"now", "at", "since", "time", "start", "end", "until", "generated_at", "last_success", "mode_since",
             "reading_at", "started_at", "ts", "from", "to", "fetched_at", "timestamp", "created_at", "t", "start_time",
             "end_time"}


def times_in(doc: Any) -> list[str]:
    out: list[str] = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k in TIME_KEYS and isinstance(v, str):
                out.append(v)
            out.extend(times_in(v))
    elif isinstance(doc, list):
        for v in doc:
            out.extend(times_in(v))
    return out


async def test_status_has_mode_reason_temperatures_savings_and_health(client: TestClient,
                                                                      source: DemoStatusSource) -> None:
    r = await client.get("/api/status")
    assert r.status == 200
    doc = await r.json()
    snap = source.snapshot()
    assert doc["mode"] == snap["mode"].value and doc["reason"] == snap["reason"]
    assert doc["indoor_c"] == snap["indoor_c"] and doc["outdoor_c"] == snap["outdoor_c"]
    assert doc["now"] == iso_z(NOW)
    assert set(doc["today"]) == {"cost_eur", "baseline_cost_eur", "savings_eur", "energy_kwh"}
    assert "always-NORMAL" in doc["savings"]["model"]["label"]
    assert "measured" in doc["savings"]["measured"]["label"]
    assert {s["name"] for s in doc["sources"]} >= {"prices", "weather"}
    assert doc["decisions"] and all(d["reason"] for d in doc["decisions"])
    assert doc["plan"]["next_changes"][0]["start"] > doc["now"]


async def test_every_time_in_the_api_is_utc_with_z(client: TestClient) -> None:
    for path in ("/api/status", "/api/plan", "/api/current-action", "/api/forecast", "/api/history", "/api/chart",
                 "/healthz", "/health", "/devices", "/forecasts/price-carbon"):
        doc = await (await client.get(path)).json()
        found = times_in(doc)
        assert found, path
        assert all(Z_TIME.match(t) for t in found), (path, [t for t in found if not Z_TIME.match(t)][:3])


async def test_plan_is_the_design_document_unchanged(client: TestClient, source: DemoStatusSource) -> None:
    r = await client.get("/api/plan")
    assert r.status == 200
    doc = await r.json()
    plan = source.plan()
    assert plan is not None
    assert doc == plan.as_json()
    slot = doc["schedule"][0]
    for key in ("start", "mode", "expected_indoor_temp", "outdoor_temp", "electricity_price", "reason"):
        assert key in slot
    for key in ("device_id", "generated_at", "estimated_cost", "estimated_savings", "total_energy_kwh"):
        assert key in doc


async def test_current_action_is_the_snapshot_mode_with_the_next_change(client: TestClient,
                                                                         source: DemoStatusSource) -> None:
    doc = await (await client.get("/api/current-action")).json()
    assert doc["mode"] == source.snapshot()["mode"].value
    assert doc["planned_mode"] == doc["mode"]
    assert doc["next"]["mode"] != doc["mode"] and doc["until"] == doc["next"]["start"] > doc["time"]
    assert doc["electricity_price"] > 0


async def test_forecast_is_the_cli_document_for_48_hours_plus_windows(client: TestClient,
                                                                      source: DemoStatusSource) -> None:
    doc = await (await client.get("/api/forecast")).json()
    fc = source.forecast()
    assert fc is not None
    cli = fc.window(0, 192).as_json()
    assert doc["slots"] == cli["slots"] and doc["slot_minutes"] == 15 and doc["provenance"] == cli["provenance"]
    assert len(doc["slots"]) == 48 * 4
    w = doc["windows"]
    assert w["kind"] == "cheap-only" and "no CO2" in w["note"]  # the demo data has no CO2 series
    assert w["items"] and all(i["end"] > i["start"] for i in w["items"])


async def test_history_defaults_to_the_last_day_and_takes_a_range(client: TestClient) -> None:
    doc = await (await client.get("/api/history")).json()
    assert doc["to"] == iso_z(NOW) and doc["from"] == iso_z(NOW - timedelta(hours=24))
    assert len(doc["rows"]) == 12 * 4  # the demo records 12 hours
    frm, to = iso_z(NOW - timedelta(hours=2)), iso_z(NOW - timedelta(hours=1))
    r = await client.get("/api/history", params={"from": frm, "to": to})
    rows = (await r.json())["rows"]
    assert rows[0]["time"] == frm and len(rows) == 4
    assert set(rows[0]) >= {"time", "mode", "indoor_c", "price_eur_per_kwh"}


async def test_history_rejects_bad_ranges_with_a_message(client: TestClient) -> None:
    cases = {"from=yesterday": "from", "from=2026-01-20T10:00:00": "no time zone",
             "from=2026-01-20T10:00:00Z&to=2026-01-19T10:00:00Z": "before",
             "from=2025-01-01T00:00:00Z&to=2026-01-20T00:00:00Z": "31 days", "since=2026-01-01": "unknown query"}
    for query, words in cases.items():
        r = await client.get("/api/history?" + query)
        assert r.status == 400, query
        assert words in (await r.json())["error"], query


async def test_comfort_risk_of_the_plan_posted_back_is_the_plan(client: TestClient, source: DemoStatusSource) -> None:
    plan = (await (await client.get("/api/plan")).json())
    r = await client.post("/api/comfort-risk", json=plan)
    assert r.status == 200
    doc = await r.json()
    assert doc["comfort_score"] == plan["comfort"]["comfort_score"]
    assert doc["estimated_cost"] == plan["estimated_cost"] and doc["estimated_savings"] == plan["estimated_savings"]


async def test_comfort_risk_flags_a_long_off_block(client: TestClient) -> None:
    body = {"schedule": [{"start": iso_z(NOW), "mode": "OFF"}], "end": iso_z(NOW + timedelta(hours=12))}
    r = await client.post("/api/comfort-risk", json=body)
    assert r.status == 200
    doc = await r.json()
    assert doc["slots_below_min"] > 0 and doc["comfort_score"] < 100
    assert any("below the comfort minimum" in w for w in doc["warnings"])
    assert all(s["mode"] == "OFF" for s in doc["schedule"][:48])


async def test_comfort_risk_rejects_bad_schedules(client: TestClient) -> None:
    t = iso_z(NOW)
    cases = [({"schedule": []}, "non-empty"), ({"schedule": [{"start": t, "mode": "TURBO"}]}, "mode must be"),
             ({"schedule": [{"start": t}]}, "needs start and mode"),
             ({"schedule": [{"start": t, "mode": "ECO"}, {"start": t, "mode": "OFF"}]}, "must be after"),
             ({"schedule": [{"start": "2020-01-01T00:00:00Z", "mode": "ECO"}]}, "does not overlap"),
             ({"schedule": [{"start": t, "mode": "ECO"}], "end": t}, "end must be after")]
    for body, words in cases:
        r = await client.post("/api/comfort-risk", json=body)
        assert r.status == 400, body
        assert words in (await r.json())["error"], body


async def test_override_needs_the_token(client: TestClient) -> None:
    body = {"mode": "BOOST", "minutes": 60}
    r = await client.post("/api/override", json=body)
    assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    assert "missing token" in (await r.json())["error"]
    r = await client.post("/api/override", json=body, headers={"Authorization": "Bearer nope"})
    assert r.status == 401 and (await r.json())["error"] == "wrong token"
    r = await client.post("/api/override", json=body, headers={"Authorization": "Basic czNjcmV0"})
    assert r.status == 401


async def test_writes_are_refused_with_403_when_no_token_is_configured(source: DemoStatusSource) -> None:
    client = await open_client(make_cfg(token=None), source)
    try:
        for path in ("/api/override", "/api/demand-response", "/grid/demand-response"):
            r = await client.post(path, json={}, headers=AUTH)
            assert r.status == 403, path
            assert "no API token is configured" in (await r.json())["error"]
        assert (await client.get("/api/status")).status == 200
    finally:
        await client.close()


async def test_override_is_accepted_shown_and_cancelled(client: TestClient) -> None:
    until = iso_z(NOW + timedelta(hours=2))
    r = await client.post("/api/override", json={"mode": "BOOST", "until": until, "reason": "sauna"}, headers=AUTH)
    assert r.status == 200
    doc = await r.json()
    assert doc["status"] == "accepted" and doc["end"] == until
    st = await (await client.get("/api/status")).json()
    assert st["mode"] == "BOOST" and st["by"] == "override" and "sauna" in st["reason"]
    assert st["override"]["until"] == until
    r = await client.post("/api/override", json={"mode": "AUTO"}, headers=AUTH)
    assert r.status == 200
    st = await (await client.get("/api/status")).json()
    assert st["by"] == "plan" and st["override"] is None


async def test_a_long_off_override_is_cut_to_the_supervisors_block(client: TestClient) -> None:
    r = await client.post("/api/override", json={"mode": "OFF", "minutes": 300}, headers=AUTH)
    doc = await r.json()
    assert r.status == 200 and doc["status"] == "partial"
    assert doc["end"] == iso_z(NOW + timedelta(minutes=120))


async def test_override_rejects_bad_input_with_a_message(client: TestClient) -> None:
    past = iso_z(NOW - timedelta(hours=1))
    cases = [({}, "mode is required"), ({"mode": "HOT", "minutes": 5}, "mode must be one of"),
             ({"mode": "ECO"}, "until"), ({"mode": "ECO", "until": past}, "in the future"),
             ({"mode": "ECO", "until": iso_z(NOW + timedelta(days=5))}, "within 48 h"),
             ({"mode": "ECO", "minutes": 5, "until": iso_z(NOW + timedelta(hours=1))}, "not both"),
             ({"mode": "ECO", "minutes": "5"}, "must be a number"), ({"mode": "ECO", "minutes": 0}, "within 1..2880"),
             ({"mode": "ECO", "minutes": 5, "reson": "typo"}, "did you mean 'reason'"),
             ({"mode": "ECO", "minutes": 5, "reason": "x" * 500}, "at most 200")]
    for body, words in cases:
        r = await client.post("/api/override", json=body, headers=AUTH)
        assert r.status == 400, body
        assert words in (await r.json())["error"], body


async def test_demand_response_answers_with_the_mqtt_ack(client: TestClient) -> None:
    body = {"kind": "shed", "duration_min": 60, "event_id": "vpp-42"}
    r = await client.post("/api/demand-response", json=body, headers=AUTH)
    assert r.status == 200
    ack = await r.json()
    assert ack["v"] == 1 and ack["event_id"] == "vpp-42" and ack["status"] == "accepted"
    assert ack["start"] == iso_z(NOW) and ack["end"] == iso_z(NOW + timedelta(hours=1))
    st = await (await client.get("/api/status")).json()
    assert st["demand_response"]["event_id"] == "vpp-42"


async def test_demand_response_limits_and_refusals(client: TestClient) -> None:
    r = await client.post("/api/demand-response", json={"kind": "shed", "duration_min": 180}, headers=AUTH)
    assert r.status == 200 and (await r.json())["status"] == "partial"
    for _ in range(2):
        assert (await client.post("/api/demand-response", json={"kind": "boost", "duration_min": 30},
                                  headers=AUTH)).status == 200
    r = await client.post("/api/demand-response", json={"kind": "boost", "duration_min": 30}, headers=AUTH)
    assert r.status == 409
    doc = await r.json()
    assert doc["status"] == "refused" and "3 events a day" in doc["reason"]


async def test_demand_response_rejects_bad_events(client: TestClient) -> None:
    cases = [({"kind": "shed"}, "duration_min"), ({"kind": "shed", "duration_min": 600}, "within 0..240"),
             ({"kind": "melt", "duration_min": 30}, "kind must be"),
             ({"kind": "shed", "duration_min": 30, "start": "2026-01-20 12:00"}, "no time zone"),
             ({"kind": "shed", "duration_min": 30, "start": iso_z(NOW + timedelta(days=9))}, "start must be within"),
             ({"kind": "shed", "duration_min": 30, "power_limit_kw": -1}, "power_limit_kw"),
             ({"kind": "shed", "duration_min": 30, "v": 2}, "version"),
             ({"kind": "shed", "duration_min": True}, "duration_min")]
    for body, words in cases:
        r = await client.post("/api/demand-response", json=body, headers=AUTH)
        assert r.status == 400, body
        assert words in (await r.json())["error"], body


async def test_healthz_and_metrics(client: TestClient) -> None:
    doc = await (await client.get("/healthz")).json()
    assert doc["status"] == "ok" and doc["plan"] is True
    r = await client.get("/metrics")
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
    text = await r.text()
    assert 'atsd_mode{device_id="atsd-house",mode="OFF"} 1.0' in text
    for name in ("atsd_indoor_temp_celsius", "atsd_outdoor_temp_celsius", "atsd_today_cost_eur",
                 "atsd_source_failures_total", "atsd_tick_seconds_total", "atsd_http_requests_total"):
        assert name in text, name


async def test_each_app_has_its_own_metrics_registry(source: DemoStatusSource, client: TestClient) -> None:
    other = create_app(make_cfg(), source)  # a second app in the same process must not collide
    assert other is not None
    await client.get("/api/status")
    text = await (await client.get("/metrics")).text()
    assert 'atsd_http_requests_total{method="GET",route="/api/status",status="200"} 1.0' in text


async def test_the_page_data_endpoint_matches_what_the_page_inlines(client: TestClient) -> None:
    doc = await (await client.get("/api/chart")).json()
    assert set(doc) == {"status", "chart"}
    chart = doc["chart"]
    assert len(chart["past"]) == 48 and len(chart["future"]) == 192
    assert chart["now"] == iso_z(NOW) and chart["from"] == iso_z(NOW - timedelta(hours=12))
    assert {"t", "mode", "price", "temp", "start_temp", "min", "max"} <= set(chart["future"][0])
    html = await (await client.get("/")).text()
    inline = html.split('<script id="initial" type="application/json">')[1].split("</script>")[0]
    assert json.loads(inline) == {"private": False, "data": doc}
