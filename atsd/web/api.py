"""The JSON API under ``/api``, plus ``/healthz`` and ``/metrics``: parse, ask the source, answer.

Reads are open on the LAN unless ``[web] private = true``; the two commands (override and demand
response) always need the bearer token. POSTs that only compute (comfort-risk) are reads.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from atsd.core.forecast import Forecast
from atsd.core.plan import Plan
from atsd.core.timegrid import iso_z
from atsd.messages import dr_ack_message
from atsd.web.app import OPEN, READ, WRITE, ApiError, access, json_response, page_data, settings
from atsd.web.bodies import InputError, parse_demand_response, parse_override, parse_range, parse_schedule, read_json
from atsd.web.documents import current_action_doc, forecast_doc, status_doc
from atsd.web.source import CommandResult

REGISTRY = web.AppKey("registry", CollectorRegistry)


def need_plan(request: web.Request) -> Plan:
    plan = settings(request).source.plan()
    if plan is None:
        raise ApiError(503, "no plan yet: atsd has not made its first plan (waiting for a forecast)")
    return plan


def need_forecast(request: web.Request) -> Forecast:
    fc = settings(request).source.forecast()
    if fc is None:
        raise ApiError(503, "no forecast yet: the price and weather sources have not answered")
    return fc


@access(READ)
async def get_status(request: web.Request) -> web.Response:
    s = settings(request)
    return json_response(request, status_doc(s.cfg, s.source.snapshot(), s.source.plan()))


@access(READ)
async def get_plan(request: web.Request) -> web.Response:
    return json_response(request, need_plan(request).as_json())


@access(READ)
async def get_current_action(request: web.Request) -> web.Response:
    s = settings(request)
    return json_response(request, current_action_doc(s.cfg, s.source.snapshot(), s.source.plan()))


@access(READ)
async def get_forecast(request: web.Request) -> web.Response:
    s = settings(request)
    return json_response(request, forecast_doc(s.cfg, need_forecast(request), s.source.snapshot()["now"]))


@access(READ)
async def get_chart(request: web.Request) -> web.Response:
    """What the status page draws (the page refreshes from here)."""
    return json_response(request, await page_data(settings(request)))


@access(READ)
async def get_history(request: web.Request) -> web.Response:
    s = settings(request)
    start, end = parse_range(request.query, s.source.snapshot()["now"])
    rows = await s.source.history(start, end)
    return json_response(request, {"device_id": s.cfg.device.device_id, "from": start, "to": end, "rows": rows})


def evaluation_doc(plan: Plan) -> dict[str, Any]:
    return {"device_id": plan.device_id, **plan.comfort.as_json(), "start": plan.grid.start, "end": plan.grid.end,
            "estimated_cost": round(plan.estimated_cost, 2), "baseline_cost": round(plan.baseline_cost, 2),
            "estimated_savings": round(plan.estimated_savings, 2),
            "total_energy_kwh": round(plan.total_energy_kwh, 2),
            "schedule": [{"start": sl.start, "mode": sl.mode, "expected_indoor_temp": round(sl.expected_indoor_c, 2)}
                         for sl in plan.slots]}


@access(READ)
async def post_comfort_risk(request: web.Request) -> web.Response:
    """A proposed schedule in, the comfort report of the plan with it out (whole horizon)."""
    s = settings(request)
    body = await read_json(request, s.max_body_bytes)
    sched = parse_schedule(body, need_plan(request))
    try:
        evaluated = await s.source.evaluate(sched)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return json_response(request, evaluation_doc(evaluated))


def command_status(result: CommandResult) -> int:
    return 409 if result["status"] == "refused" else 200


@access(WRITE)
async def post_override(request: web.Request) -> web.Response:
    """Hold a mode until a time, through the supervisor; AUTO goes back to the plan."""
    s = settings(request)
    body = await read_json(request, s.max_body_bytes)
    snap = s.source.snapshot()
    mode, until, reason = parse_override(body, snap["now"])
    result = await s.source.override(mode, until, reason)
    doc = {"device_id": s.cfg.device.device_id, "requested": {"mode": mode.value if mode else "AUTO",
                                                              "until": until if mode else None, "reason": reason},
           **result}
    return json_response(request, doc, command_status(result))


@access(WRITE)
async def post_demand_response(request: web.Request) -> web.Response:
    """A demand-response event (the MQTT contract's ``dr/set`` payload); answers with its ``dr/ack``."""
    s = settings(request)
    body = await read_json(request, s.max_body_bytes)
    now = s.source.snapshot()["now"]
    event = parse_demand_response(body, now, s.cfg)
    result = await s.source.demand_response(event)
    window = (result["start"], result["end"]) if "start" in result and "end" in result else None
    ack = dr_ack_message(s.cfg.device.device_id, event.event_id, result["status"], result["reason"], now,
                         result.get("shed_kw"), window)
    ack["requested"] = {"start": iso_z(event.start), "end": iso_z(event.end), "kind": event.kind,
                        "power_limit_kw": event.power_limit_kw}
    return json_response(request, ack, command_status(result))


@access(OPEN)
async def get_healthz(request: web.Request) -> web.Response:
    """Liveness and a summary: 200 while the daemon answers; ``status`` is ok or degraded."""
    s = settings(request)
    snap = s.source.snapshot()
    plan = s.source.plan()
    sources_ok = all(x["ok"] or x["fallback"] for x in snap["sources"] if x["name"] in ("prices", "weather"))
    fresh = plan is not None and plan.grid.end > snap["now"] + timedelta(hours=1)
    clock_ok = snap.get("clock_ok", True)
    ok = sources_ok and fresh and clock_ok
    return json_response(request, {"status": "ok" if ok else "degraded", "time": snap["now"], "plan": plan is not None,
                                   "plan_covers_next_hour": fresh, "sources_ok": sources_ok, "clock_ok": clock_ok,
                                   "mode": snap["mode"]})


@access(READ)
async def get_metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[REGISTRY])
    resp = web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"})
    return resp


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/status", get_status)
    r.add_get("/api/plan", get_plan)
    r.add_get("/api/current-action", get_current_action)
    r.add_post("/api/comfort-risk", post_comfort_risk)
    r.add_get("/api/forecast", get_forecast)
    r.add_get("/api/chart", get_chart)
    r.add_post("/api/override", post_override)
    r.add_post("/api/demand-response", post_demand_response)
    r.add_get("/api/history", get_history)
    r.add_get("/healthz", get_healthz)
    r.add_get("/metrics", get_metrics)
