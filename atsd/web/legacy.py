"""The original product's routes, with its request and response shapes, for clients written against it.

The original was a multi-device cloud service; atsd is one house, so every route answers for this
device (``[device] device_id``) and a request naming another device gets 404 ``{"detail": ...}`` as
the original's did. Bodies are lenient about extra fields (the original ignored them) but strict
about the fields they use. Times are UTC with Z (the original sent naive local times).
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from typing import Any

from aiohttp import web

from atsd.core.modes import Mode
from atsd.core.plan import Plan, Slot
from atsd.core.timegrid import local_day_bounds
from atsd.messages import DemandResponseEvent
from atsd.web.api import command_status, need_forecast, need_plan
from atsd.web.app import OPEN, READ, WRITE, ApiError, access, json_response, settings
from atsd.web.bodies import InputError, parse_legacy_schedule, read_json
from atsd.web.documents import current_slot, price_carbon_doc
from atsd.web.source import ProposedSchedule

SEVERITIES = ("normal", "high", "critical")
HP_TYPES = {"gshp": "GSHP", "ashp_water": "ASHP", "air_to_air": "ASHP", "exhaust_air": "EXHAUST_AIR"}


def check_device(request: web.Request, device_id: Any) -> None:
    mine = settings(request).cfg.device.device_id
    if not isinstance(device_id, str):
        raise InputError(f"device_id must be a string (this device is {mine!r})")
    if device_id != mine:
        raise ApiError(404, f"Device {device_id[:64]} not found (this atsd runs {mine!r})")


def _slot_row(s: Slot, tz: Any) -> dict[str, Any]:
    return {"hour": s.start.astimezone(tz).hour, "timestamp": s.start, "start": s.start, "mode": s.mode,
            "expected_indoor_temp": round(s.expected_indoor_c, 2), "outdoor_temp": round(s.outdoor_c, 1),
            "electricity_price": round(s.price_eur_per_kwh, 4), "reason": s.reason}


def _target_day(v: Any, tz: Any) -> date:
    if not isinstance(v, str) or len(v) > 40:
        raise InputError(f"target_date must be a date like 2026-01-20 or an ISO-8601 time (got {v!r})")
    try:
        if len(v.strip()) <= 10:
            return date.fromisoformat(v.strip())
        t = datetime.fromisoformat(v.strip().replace("Z", "+00:00"))
        return (t if t.tzinfo else t.replace(tzinfo=tz)).astimezone(tz).date()  # naive: local, as the original
    except (ValueError, OverflowError):
        raise InputError(f"target_date must be a date like 2026-01-20 or an ISO-8601 time (got {v!r})") from None


@access(READ)
async def daily_plan(request: web.Request) -> web.Response:
    """``POST /strategy/daily-plan {device_id, target_date?}``: the plan's slots of that local day
    (default: the whole current plan), with estimated cost and savings against always-NORMAL."""
    s = settings(request)
    body = await read_json(request, s.max_body_bytes)
    check_device(request, body.get("device_id"))
    plan = need_plan(request)
    tz = s.cfg.device.tz
    if body.get("target_date") is None:
        return json_response(request, {
            "device_id": plan.device_id, "generated_at": plan.generated_at, "slot_minutes": plan.grid.step_s // 60,
            "schedule": [_slot_row(x, tz) for x in plan.slots], "estimated_cost": round(plan.estimated_cost, 2),
            "estimated_savings": round(plan.estimated_savings, 2), "total_energy_kwh": round(plan.total_energy_kwh, 2)})
    day = _target_day(body["target_date"], tz)
    try:
        start, end = local_day_bounds(day, tz)
    except OverflowError:
        raise InputError(f"target_date {day} is out of range") from None
    idx = [i for i, x in enumerate(plan.slots) if start <= x.start < end]
    if not idx:
        raise InputError(f"no plan covers {day} yet: the plan runs from {plan.grid.start:%Y-%m-%d %H:%M}Z to "
                         f"{plan.grid.end:%Y-%m-%d %H:%M}Z (prices for tomorrow are published around 14:00 "
                         "Finnish time)")
    baseline = await s.source.evaluate(ProposedSchedule(((plan.grid.start, Mode.NORMAL),), plan.grid.end))
    cost = sum(plan.slots[i].cost_eur for i in idx)
    base = sum(baseline.slots[i].cost_eur for i in idx)
    return json_response(request, {
        "device_id": plan.device_id, "generated_at": plan.generated_at, "slot_minutes": plan.grid.step_s // 60,
        "target_date": day.isoformat(), "complete_day": len(idx) * plan.grid.step_s >= (end - start).total_seconds(),
        "schedule": [_slot_row(plan.slots[i], tz) for i in idx], "estimated_cost": round(cost, 2),
        "estimated_savings": round(base - cost, 2),
        "total_energy_kwh": round(sum(plan.slots[i].energy_kwh for i in idx), 2),
        "note": "savings within the day against always-NORMAL, before valuing the heat left in the house at its end"})


@access(READ)
async def current_action(request: web.Request) -> web.Response:
    """``GET /strategy/current-action/{device_id}``."""
    s = settings(request)
    check_device(request, request.match_info["device_id"])
    snap = s.source.snapshot()
    slot = current_slot(s.source.plan(), snap["now"])
    return json_response(request, {
        "device_id": s.cfg.device.device_id, "timestamp": snap["now"], "recommended_mode": snap["mode"],
        "reason": snap["reason"],
        "current_conditions": {"outdoor_temp": snap["outdoor_c"], "indoor_temp": snap["indoor_c"],
                               "electricity_price": round(slot.price_eur_per_kwh, 4) if slot else None,
                               "spot_eur_per_mwh": round(slot.spot_eur_per_mwh, 2) if slot else None,
                               "grid_stress": snap.get("grid_stress") or "unknown", "wind_percentage": None}})


@access(READ)
async def comfort_risk(request: web.Request) -> web.Response:
    """``POST /analytics/comfort-risk {device_id, proposed_schedule: [{hour, mode}]}``."""
    s = settings(request)
    body = await read_json(request, s.max_body_bytes)
    check_device(request, body.get("device_id"))
    plan: Plan = need_plan(request)
    sched = parse_legacy_schedule(body.get("proposed_schedule"), plan)
    try:
        ev = await s.source.evaluate(sched)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    c = ev.comfort
    return json_response(request, {
        "device_id": ev.device_id, "comfort_score": round(c.comfort_score, 1), "min_predicted_temp": round(c.min_temp_c, 2),
        "max_predicted_temp": round(c.max_temp_c, 2),
        "hours_below_comfort": math.ceil(c.slots_below_min * ev.grid.step_h - 1e-9),
        "warnings": c.warnings, "recommendation": c.recommendation})


@access(WRITE)
async def demand_response(request: web.Request) -> web.Response:
    """``POST /grid/demand-response {duration_minutes, severity, affected_areas}``: a shed from now."""
    s = settings(request)
    body = await read_json(request, s.max_body_bytes)
    cap_min = int(s.cfg.grid.dr_max_duration_h * 60)
    dur = body.get("duration_minutes")
    if isinstance(dur, bool) or not isinstance(dur, int) or not 5 <= dur <= cap_min:
        raise InputError(f"duration_minutes must be an integer within 5..{cap_min} (got {dur!r})")
    sev = body.get("severity")
    if sev not in SEVERITIES:
        raise InputError(f"severity must be one of {', '.join(SEVERITIES)} (got {sev!r})")
    areas = body.get("affected_areas", ["FI"])
    if not isinstance(areas, list) or not all(isinstance(a, str) for a in areas) or len(areas) > 50:
        raise InputError("affected_areas must be a list of price areas like [\"FI\"]")
    now = s.source.snapshot()["now"]
    eid = f"DR-{now:%Y%m%d-%H%M%S}"
    end = now + timedelta(minutes=dur)
    if s.cfg.device.price_area not in areas:
        return json_response(request, {"event_id": eid, "devices_notified": 0, "estimated_load_reduction_mw": 0.0,
                                       "start_time": now, "end_time": end, "status": "refused",
                                       "reason": f"this house is in {s.cfg.device.price_area}, not in {areas}"})
    event = DemandResponseEvent(eid, now, float(dur), "shed", None, "http")
    result = await s.source.demand_response(event)
    granted = result["status"] != "refused"
    return json_response(request, {
        "event_id": eid, "devices_notified": 1 if granted else 0,
        "estimated_load_reduction_mw": round((result.get("shed_kw") or 0.0) / 1000.0, 6) if granted else 0.0,
        "start_time": result.get("start", now), "end_time": result.get("end", end), "severity": sev,
        "status": result["status"], "reason": result["reason"]}, command_status(result))


@access(READ)
async def price_carbon(request: web.Request) -> web.Response:
    """``GET /forecasts/price-carbon``: 48 h of price and CO2 with cheap and green flags."""
    s = settings(request)
    return json_response(request, price_carbon_doc(s.cfg, need_forecast(request), s.source.snapshot()))


@access(READ)
async def devices(request: web.Request) -> web.Response:
    """``GET /devices``: this one device, in the original's DeviceResponse shape."""
    s = settings(request)
    d, snap = s.cfg.device, s.source.snapshot()
    return json_response(request, [{
        "id": 1, "device_id": d.device_id, "name": d.name, "latitude": d.latitude, "longitude": d.longitude,
        "insulation_level": s.cfg.building.insulation_level, "heat_pump_type": HP_TYPES[s.cfg.heat_pump.type],
        "vpp_enabled": s.cfg.grid.demand_response, "created_at": snap.get("started_at", snap["now"])}])


@access(OPEN)
async def health(request: web.Request) -> web.Response:
    """``GET /health``: the original's liveness answer."""
    now = settings(request).source.snapshot()["now"]
    return json_response(request, {"status": "healthy", "timestamp": now, "service": "atsd"})


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/strategy/daily-plan", daily_plan)
    r.add_get("/strategy/current-action/{device_id}", current_action)
    r.add_post("/analytics/comfort-risk", comfort_risk)
    r.add_post("/grid/demand-response", demand_response)
    r.add_get("/forecasts/price-carbon", price_carbon)
    r.add_get("/devices", devices)
    r.add_get("/health", health)



