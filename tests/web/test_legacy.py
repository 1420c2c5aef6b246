"""The original product's routes answer with its shapes, for this one device."""

from __future__ import annotations

from datetime import timedelta

from aiohttp.test_utils import TestClient

from atsd.core.timegrid import iso_z
from atsd.web import DemoStatusSource
from tests.web.conftest import AUTH, NOW

ORIGINAL_SLOT = {"hour", "timestamp", "mode", "expected_indoor_temp", "outdoor_temp", "electricity_price", "reason"}


async def test_health_and_devices(client: TestClient) -> None:
    doc = await (await client.get("/health")).json()
    assert doc == {"status": "healthy", "timestamp": iso_z(NOW), "service": "atsd"}
    devices = await (await client.get("/devices")).json()
    assert len(devices) == 1
    assert set(devices[0]) == {"id", "device_id", "name", "latitude", "longitude", "insulation_level",
                               "heat_pump_type", "vpp_enabled", "created_at"}
    assert devices[0]["device_id"] == "atsd-house" and devices[0]["heat_pump_type"] == "GSHP"


async def test_current_action_for_this_device_and_404_for_others(client: TestClient,
                                                                 source: DemoStatusSource) -> None:
    doc = await (await client.get("/strategy/current-action/atsd-house")).json()
    assert doc["recommended_mode"] == source.snapshot()["mode"].value and doc["reason"]
    assert set(doc["current_conditions"]) >= {"outdoor_temp", "electricity_price", "grid_stress", "wind_percentage"}
    r = await client.get("/strategy/current-action/someone-else")
    assert r.status == 404 and "someone-else not found" in (await r.json())["detail"]


async def test_daily_plan_defaults_to_the_whole_plan(client: TestClient, source: DemoStatusSource) -> None:
    r = await client.post("/strategy/daily-plan", json={"device_id": "atsd-house", "extra": "ignored"})
    assert r.status == 200
    doc = await r.json()
    plan = source.plan()
    assert plan is not None
    assert len(doc["schedule"]) == len(plan.slots)
    assert set(doc["schedule"][0]) >= ORIGINAL_SLOT
    assert all(0 <= s["hour"] <= 23 for s in doc["schedule"])
    assert doc["estimated_cost"] == round(plan.estimated_cost, 2)
    assert doc["estimated_savings"] == round(plan.estimated_savings, 2)


async def test_daily_plan_of_a_local_day(client: TestClient, source: DemoStatusSource) -> None:
    r = await client.post("/strategy/daily-plan", json={"device_id": "atsd-house", "target_date": "2026-01-21"})
    assert r.status == 200
    doc = await r.json()
    assert len(doc["schedule"]) == 96 and doc["complete_day"] is True  # a whole Helsinki day of 15-minute slots
    assert doc["schedule"][0]["timestamp"] == "2026-01-20T22:00:00Z" and doc["schedule"][0]["hour"] == 0
    plan = source.plan()
    assert plan is not None
    day = [s for s in plan.slots if "2026-01-20T22:00:00Z" <= iso_z(s.start) < "2026-01-21T22:00:00Z"]
    assert doc["estimated_cost"] == round(sum(s.cost_eur for s in day), 2)
    assert isinstance(doc["estimated_savings"], float)


async def test_daily_plan_errors(client: TestClient) -> None:
    cases = [({"target_date": "2026-01-21"}, 400, "device_id must be a string"),
             ({"device_id": "other"}, 404, "not found"),
             ({"device_id": "atsd-house", "target_date": "2026-03-01"}, 400, "no plan covers"),
             ({"device_id": "atsd-house", "target_date": "tomorrow"}, 400, "target_date must be"),
             ({"device_id": "atsd-house", "target_date": 20260121}, 400, "target_date must be")]
    for body, status, words in cases:
        r = await client.post("/strategy/daily-plan", json=body)
        assert r.status == status, body
        assert words in (await r.json())["detail"], body


async def test_comfort_risk_by_hours_from_now(client: TestClient) -> None:
    body = {"device_id": "atsd-house", "proposed_schedule": [{"hour": h, "mode": "OFF"} for h in range(10)]}
    r = await client.post("/analytics/comfort-risk", json=body)
    assert r.status == 200
    doc = await r.json()
    assert set(doc) == {"device_id", "comfort_score", "min_predicted_temp", "max_predicted_temp",
                        "hours_below_comfort", "warnings", "recommendation"}
    assert doc["hours_below_comfort"] > 0 and doc["comfort_score"] < 100 and doc["min_predicted_temp"] < 20


async def test_comfort_risk_takes_the_daily_plan_back(client: TestClient) -> None:
    plan = await (await client.post("/strategy/daily-plan", json={"device_id": "atsd-house"})).json()
    body = {"device_id": "atsd-house", "proposed_schedule": plan["schedule"]}
    doc = await (await client.post("/analytics/comfort-risk", json=body)).json()
    assert doc["hours_below_comfort"] == 0 and doc["comfort_score"] == 100


async def test_comfort_risk_errors(client: TestClient) -> None:
    cases = [({"device_id": "atsd-house"}, 400, "proposed_schedule"),
             ({"device_id": "atsd-house", "proposed_schedule": [{"hour": 1}]}, 400, "with a mode"),
             ({"device_id": "atsd-house", "proposed_schedule": [{"hour": 1, "mode": "WARM"}]}, 400, "mode must be"),
             ({"device_id": "x", "proposed_schedule": [{"hour": 1, "mode": "ECO"}]}, 404, "not found")]
    for body, status, words in cases:
        r = await client.post("/analytics/comfort-risk", json=body)
        assert r.status == status, body
        assert words in (await r.json())["detail"], body


async def test_grid_demand_response_sheds_from_now(client: TestClient) -> None:
    body = {"duration_minutes": 30, "severity": "high"}
    assert (await client.post("/grid/demand-response", json=body)).status == 401
    r = await client.post("/grid/demand-response", json=body, headers=AUTH)
    assert r.status == 200
    doc = await r.json()
    assert doc["event_id"].startswith("DR-") and doc["devices_notified"] == 1
    assert doc["start_time"] == iso_z(NOW) and doc["end_time"] == iso_z(NOW + timedelta(minutes=30))
    assert doc["estimated_load_reduction_mw"] >= 0
    st = await (await client.get("/api/status")).json()
    assert st["demand_response"]["kind"] == "shed"


async def test_grid_demand_response_other_area_and_errors(client: TestClient) -> None:
    r = await client.post("/grid/demand-response", json={"duration_minutes": 30, "severity": "normal",
                                                         "affected_areas": ["SE3"]}, headers=AUTH)
    assert r.status == 200 and (await r.json())["devices_notified"] == 0
    cases = [({"duration_minutes": 30.5, "severity": "high"}, "integer"),
             ({"duration_minutes": 2, "severity": "high"}, "5..240"),
             ({"duration_minutes": 30, "severity": "apocalyptic"}, "severity"),
             ({"duration_minutes": 30, "severity": "high", "affected_areas": "FI"}, "affected_areas")]
    for body, words in cases:
        r = await client.post("/grid/demand-response", json=body, headers=AUTH)
        assert r.status == 400, body
        assert words in (await r.json())["detail"], body


async def test_price_carbon_has_the_original_fields(client: TestClient) -> None:
    doc = await (await client.get("/forecasts/price-carbon")).json()
    assert len(doc["forecast"]) == 192
    row = doc["forecast"][0]
    assert set(row) >= {"timestamp", "price_eur_mwh", "wind_percentage", "is_green", "is_cheap"}
    assert doc["grid_stress_level"] == "unknown" and "current_wind_percentage" in doc
    assert any(r["is_cheap"] for r in doc["forecast"]) and not all(r["is_cheap"] for r in doc["forecast"])
