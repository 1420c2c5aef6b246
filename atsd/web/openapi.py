"""``/openapi.json``: the API described by hand (OpenAPI 3.1); a test checks it against the router.

Security: reads carry ``security: []`` unless ``[web] private = true`` (then every read needs the
bearer token too, see the ``x-atsd-access`` of each operation); writes always need it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from atsd import __version__
from atsd.web.app import OPEN, access, json_response

TIME = {"type": "string", "format": "date-time", "description": "UTC, ISO-8601 with Z", "example": "2026-01-15T12:00:00Z"}
MODE = {"type": "string", "enum": ["OFF", "ECO", "NORMAL", "BOOST"]}
NUM_OR_NULL = {"type": ["number", "null"]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERR = _json(_ref("Error"), "error: what is wrong, in words")


def _op(summary: str, access_level: str, ok: dict[str, Any], *, body: dict[str, Any] | None = None,
        errors: tuple[int, ...] = (), params: list[dict[str, Any]] | None = None,
        tags: tuple[str, ...] = ("api",)) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "tags": list(tags), "x-atsd-access": access_level,
                          "responses": {"200": ok}}
    if access_level == "write":
        op["security"] = [{"bearer": []}]
        errors = (*errors, 401, 403)
    elif access_level == "read":
        op["security"] = [{}, {"bearer": []}]
    else:
        op["security"] = [{}]
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
        errors = (*errors, 400, 413)
    if params:
        op["parameters"] = params
    for code in sorted(set(errors)):
        op["responses"][str(code)] = ERR
    op["responses"]["503"] = ERR
    return op


SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error", "status"],
              "properties": {"error": {"type": "string"}, "detail": {"type": "string"}, "status": {"type": "integer"}}},
    "PlanSlot": {"type": "object", "properties": {
        "start": TIME, "mode": MODE, "expected_indoor_temp": NUM_OR_NULL, "start_indoor_temp": NUM_OR_NULL,
        "outdoor_temp": NUM_OR_NULL, "electricity_price": {"type": ["number", "null"], "description": "EUR/kWh paid"},
        "spot_eur_per_mwh": NUM_OR_NULL, "energy_kwh": NUM_OR_NULL, "aux_kwh": NUM_OR_NULL, "cost_eur": NUM_OR_NULL,
        "reason": {"type": "string"}, "price_estimated": {"type": "boolean"}}},
    "Plan": {"type": "object", "description": "The design's plan document, as `atsd plan --json` prints it",
             "required": ["device_id", "generated_at", "schedule", "estimated_cost", "estimated_savings",
                          "total_energy_kwh"],
             "properties": {"device_id": {"type": "string"}, "generated_at": TIME, "planner": {"type": "string"},
                            "slot_minutes": {"type": "integer"}, "schedule": {"type": "array", "items": _ref("PlanSlot")},
                            "estimated_cost": {"type": "number"}, "baseline_cost": {"type": "number"},
                            "estimated_savings": {"type": "number"}, "total_energy_kwh": {"type": "number"},
                            "comfort": {"type": "object"}}},
    "Status": {"type": "object", "description": "The daemon's snapshot with the device, plan totals and savings",
               "properties": {"device": {"type": "object"}, "now": TIME, "mode": MODE, "reason": {"type": "string"},
                              "by": {"type": "string"}, "indoor_c": NUM_OR_NULL, "outdoor_c": NUM_OR_NULL,
                              "today": {"type": "object"}, "sources": {"type": "array"},
                              "decisions": {"type": "array"}, "alerts": {"type": "array"},
                              "plan": {"type": ["object", "null"]},
                              "savings": {"type": "object", "properties": {"model": {"type": "object"},
                                                                           "measured": {"type": "object"}}}}},
    "CurrentAction": {"type": "object", "properties": {
        "device_id": {"type": "string"}, "time": TIME, "mode": MODE, "reason": {"type": "string"}, "by": {"type": "string"},
        "planned_mode": MODE, "until": TIME, "next": {"type": ["object", "null"]}, "electricity_price": NUM_OR_NULL,
        "outdoor_temp": NUM_OR_NULL, "indoor_temp": NUM_OR_NULL}},
    "ProposedSchedule": {"type": "object", "required": ["schedule"], "description":
                         "Entry i holds from its start until entry i+1; the last until `end` (default one plan "
                         "slot). The plan document itself can be posted back.",
                         "properties": {"schedule": {"type": "array", "minItems": 1, "maxItems": 2000, "items": {
                             "type": "object", "required": ["start", "mode"],
                             "properties": {"start": TIME, "mode": MODE}}}, "end": TIME}},
    "ComfortRisk": {"type": "object", "properties": {
        "comfort_score": {"type": "number", "minimum": 0, "maximum": 100}, "min_temp_c": {"type": "number"},
        "max_temp_c": {"type": "number"}, "slots_below_min": {"type": "integer"},
        "degree_hours_below_min": {"type": "number"}, "degree_hours_above_max": {"type": "number"},
        "feasible": {"type": "boolean"}, "warnings": {"type": "array", "items": {"type": "string"}},
        "recommendation": {"type": "string"}, "estimated_cost": {"type": "number"},
        "baseline_cost": {"type": "number"}, "estimated_savings": {"type": "number"},
        "schedule": {"type": "array"}}},
    "Forecast": {"type": "object", "description": "`atsd forecast --json` for 48 h plus cheap-and-green windows",
                 "properties": {"slot_minutes": {"type": "integer"}, "provenance": {"type": "object"},
                                "slots": {"type": "array", "items": {"type": "object", "properties": {
                                    "start": TIME, "spot_eur_per_mwh": NUM_OR_NULL, "temp_c": NUM_OR_NULL,
                                    "co2_g_per_kwh": NUM_OR_NULL}}},
                                "windows": {"type": "object", "properties": {
                                    "kind": {"type": "string", "enum": ["cheap-and-green", "cheap-only"]},
                                    "note": {"type": "string"}, "items": {"type": "array", "items": {
                                        "type": "object", "properties": {"start": TIME, "end": TIME,
                                                                         "minutes": {"type": "integer"}}}}}}}},
    "Override": {"type": "object", "required": ["mode"], "additionalProperties": False, "properties": {
        "mode": {"type": "string", "enum": ["OFF", "ECO", "NORMAL", "BOOST", "AUTO"],
                 "description": "AUTO cancels the override"},
        "until": TIME, "minutes": {"type": "number", "minimum": 1, "maximum": 2880},
        "reason": {"type": "string", "maxLength": 200}}},
    "CommandResult": {"type": "object", "required": ["status", "reason"], "properties": {
        "status": {"type": "string", "enum": ["accepted", "partial", "refused"]}, "reason": {"type": "string"},
        "start": TIME, "end": TIME}},
    "DemandResponseEvent": {"type": "object", "required": ["duration_min", "kind"], "additionalProperties": False,
                            "description": "The MQTT contract's dr/set payload; start defaults to now",
                            "properties": {"v": {"const": 1}, "event_id": {"type": "string", "maxLength": 64},
                                           "start": TIME, "duration_min": {"type": "number", "exclusiveMinimum": 0},
                                           "kind": {"type": "string", "enum": ["shed", "boost"]},
                                           "power_limit_kw": {"type": "number", "minimum": 0, "maximum": 100}}},
    "DemandResponseAck": {"type": "object", "description": "The MQTT contract's dr/ack payload", "properties": {
        "v": {"const": 1}, "device_id": {"type": "string"}, "event_id": {"type": "string"},
        "status": {"type": "string", "enum": ["accepted", "partial", "refused"]}, "reason": {"type": "string"},
        "ts": TIME, "shed_kw": NUM_OR_NULL, "start": TIME, "end": TIME}},
    "History": {"type": "object", "properties": {"from": TIME, "to": TIME, "rows": {"type": "array", "items": {
        "type": "object", "required": ["time"], "properties": {
            "time": TIME, "mode": MODE, "indoor_c": {"type": "number"}, "outdoor_c": {"type": "number"},
            "price_eur_per_kwh": {"type": "number"}, "energy_kwh": {"type": "number"}, "cost_eur": {"type": "number"}}}}}},
    "LegacySlot": {"type": "object", "properties": {
        "hour": {"type": "integer", "minimum": 0, "maximum": 23, "description": "local hour"}, "timestamp": TIME,
        "mode": MODE, "expected_indoor_temp": {"type": "number"}, "outdoor_temp": {"type": "number"},
        "electricity_price": {"type": "number"}, "reason": {"type": "string"}}},
}

LEGACY = ("original product",)
DEVICE_PARAM = [{"name": "device_id", "in": "path", "required": True, "schema": {"type": "string"}}]
RANGE_PARAMS = [{"name": "from", "in": "query", "required": False, "schema": TIME,
                 "description": "default: 24 h before `to`"},
                {"name": "to", "in": "query", "required": False, "schema": TIME, "description": "default: now"}]

PATHS: dict[str, dict[str, Any]] = {
    "/": {"get": _op("The status page (HTML; works offline, refreshes itself)", "open",
                     {"description": "HTML page", "content": {"text/html": {}}}, tags=("page",))},
    "/static/{name}": {"get": _op("A page asset (app.js, app.css, icon.svg), served by atsd itself", "open",
                                  {"description": "the asset"}, errors=(404,), tags=("page",),
                                  params=[{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}])},
    "/openapi.json": {"get": _op("This document", "open", _json({"type": "object"}, "OpenAPI 3.1"), tags=("meta",))},
    "/api/status": {"get": _op("Current mode and why, temperatures, today's cost and savings (two ways), source "
                               "health, recent decisions, alerts", "read", _json(_ref("Status"), "status"))},
    "/api/plan": {"get": _op("The plan being followed (the design's plan document)", "read", _json(_ref("Plan"), "plan"))},
    "/api/current-action": {"get": _op("What the heat pump does now, why, and what comes next", "read",
                                       _json(_ref("CurrentAction"), "current action"))},
    "/api/comfort-risk": {"post": _op("Comfort report (and cost) of the plan with a proposed schedule laid over it",
                                      "read", _json(_ref("ComfortRisk"), "report"), body=_ref("ProposedSchedule"))},
    "/api/forecast": {"get": _op("48 h of price and CO2 intensity with the cheap-and-green windows", "read",
                                 _json(_ref("Forecast"), "forecast"))},
    "/api/chart": {"get": _op("What the status page draws: status plus history and plan series", "read",
                              _json({"type": "object"}, "page data"))},
    "/api/override": {"post": _op("Hold a mode until a time, through the supervisor (AUTO cancels)", "write",
                                  _json(_ref("CommandResult"), "accepted or partial"), body=_ref("Override"),
                                  errors=(409,))},
    "/api/demand-response": {"post": _op("A demand-response event: start, duration, shed or boost", "write",
                                         _json(_ref("DemandResponseAck"), "accepted or partial"),
                                         body=_ref("DemandResponseEvent"), errors=(409,))},
    "/api/history": {"get": _op("Recorded slots in [from, to), at most 31 days", "read", _json(_ref("History"), "rows"),
                                params=RANGE_PARAMS, errors=(400,))},
    "/healthz": {"get": _op("Liveness: 200 while the daemon answers; status ok or degraded", "open",
                            _json({"type": "object"}, "health"), tags=("meta",))},
    "/metrics": {"get": _op("Prometheus metrics: mode, temperatures, cost, source failures, tick duration", "read",
                            {"description": "Prometheus text format", "content": {"text/plain": {}}}, tags=("meta",))},
    "/strategy/daily-plan": {"post": _op(
        "Original: the plan of a local day (default: the whole current plan)", "read",
        _json({"type": "object", "properties": {"device_id": {"type": "string"}, "generated_at": TIME,
                                                "schedule": {"type": "array", "items": _ref("LegacySlot")},
                                                "estimated_cost": {"type": "number"},
                                                "estimated_savings": {"type": "number"},
                                                "total_energy_kwh": {"type": "number"}}}, "daily plan"),
        body={"type": "object", "required": ["device_id"], "properties": {
            "device_id": {"type": "string"}, "target_date": {"type": "string", "description": "date or time"}}},
        errors=(404,), tags=LEGACY)},
    "/strategy/current-action/{device_id}": {"get": _op(
        "Original: the recommended mode right now", "read",
        _json({"type": "object", "properties": {"device_id": {"type": "string"}, "timestamp": TIME,
                                                "recommended_mode": MODE, "reason": {"type": "string"},
                                                "current_conditions": {"type": "object"}}}, "current action"),
        params=DEVICE_PARAM, errors=(404,), tags=LEGACY)},
    "/analytics/comfort-risk": {"post": _op(
        "Original: comfort risk of a proposed hourly schedule", "read",
        _json({"type": "object", "properties": {"device_id": {"type": "string"}, "comfort_score": {"type": "number"},
                                                "min_predicted_temp": {"type": "number"},
                                                "max_predicted_temp": {"type": "number"},
                                                "hours_below_comfort": {"type": "integer"},
                                                "warnings": {"type": "array", "items": {"type": "string"}},
                                                "recommendation": {"type": "string"}}}, "comfort risk"),
        body={"type": "object", "required": ["device_id", "proposed_schedule"], "properties": {
            "device_id": {"type": "string"}, "proposed_schedule": {"type": "array", "items": {
                "type": "object", "required": ["mode"], "properties": {
                    "hour": {"type": "integer"}, "timestamp": TIME, "mode": MODE}}}}},
        errors=(404,), tags=LEGACY)},
    "/grid/demand-response": {"post": _op(
        "Original: a shed event from now", "write",
        _json({"type": "object", "properties": {"event_id": {"type": "string"}, "devices_notified": {"type": "integer"},
                                                "estimated_load_reduction_mw": {"type": "number"},
                                                "start_time": TIME, "end_time": TIME}}, "event"),
        body={"type": "object", "required": ["duration_minutes", "severity"], "properties": {
            "duration_minutes": {"type": "integer", "minimum": 5},
            "severity": {"type": "string", "enum": ["normal", "high", "critical"]},
            "affected_areas": {"type": "array", "items": {"type": "string"}, "default": ["FI"]}}},
        errors=(409,), tags=LEGACY)},
    "/forecasts/price-carbon": {"get": _op(
        "Original: 48 h of price and carbon with cheap and green flags", "read",
        _json({"type": "object", "properties": {"forecast": {"type": "array"},
                                                "current_wind_percentage": {"type": ["number", "null"]},
                                                "grid_stress_level": {"type": "string"}}}, "forecast"), tags=LEGACY)},
    "/devices": {"get": _op("Original: the device list (this one device)", "read",
                            _json({"type": "array", "items": {"type": "object"}}, "devices"), tags=LEGACY)},
    "/health": {"get": _op("Original: liveness", "open", _json({"type": "object", "properties": {
        "status": {"const": "healthy"}, "timestamp": TIME, "service": {"type": "string"}}}, "health"), tags=LEGACY)},
}


def document() -> dict[str, Any]:
    return {"openapi": "3.1.0",
            "info": {"title": "atsd status page and API", "version": __version__,
                     "description": "One house's heat-pump optimizer. Times are UTC ISO-8601 with Z; money in EUR; "
                                    "temperatures in °C. Writes need `Authorization: Bearer <token>`."},
            "paths": PATHS,
            "components": {"schemas": SCHEMAS,
                           "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}}}


@access(OPEN)
async def openapi_handler(request: web.Request) -> web.Response:
    return json_response(request, document())
