"""The fleet page and JSON API (aiohttp): houses, groups, flexibility, demand-response dispatch.

Every ``/api/*`` route needs ``Authorization: Bearer <token>`` (``[fleet] token``, ``token_file``
or ``ATSD_FLEET_TOKEN``), compared in constant time; the page and its assets are open and hold no
data (the page asks for the token and calls the API). Errors are JSON ``{"error", "status"}``,
like the house's own web app (:mod:`atsd.web.app`); a fault answers 503 and logs the traceback.

Routes: ``GET /``, ``GET /static/{name}``, ``GET /healthz``, ``GET /api/houses``,
``GET /api/houses/{device_id}``, ``GET /api/groups``, ``GET /api/flexibility``,
``POST /api/dispatch``, ``GET /api/dispatch``, ``GET /api/dispatch/{event_id}``, ``POST /api/mode``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

from aiohttp import web

from atsd import messages
from atsd.core.timegrid import iso_z
from atsd.fleet.link import FleetLink, FleetLinkError
from atsd.fleet.view import FleetView, Group

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Clock = Callable[[], datetime]
MAX_BODY_BYTES = 64 * 1024
MAX_HOURS = 48
DEFAULT_ACK_TIMEOUT_S = 30.0
CSP = "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass(frozen=True)
class Fleet:
    view: FleetView
    link: FleetLink | None  # None: read-only (tests of the view alone)
    token: str | None
    clock: Clock


FLEET = web.AppKey("fleet", Fleet)


def _dumps(doc: Any) -> str:
    return json.dumps(doc, allow_nan=False, ensure_ascii=False, separators=(",", ":"))


def json_response(doc: Any, status: int = 200) -> web.Response:
    resp = web.Response(text=_dumps(doc), status=status, content_type="application/json",
                        headers={"Cache-Control": "no-store"})
    resp.enable_compression()
    return resp


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(text=_dumps({"error": message, "status": status}), status=status,
                        content_type="application/json", headers={"Cache-Control": "no-store", **(headers or {})})


def check_token(request: web.Request) -> None:
    token = request.app[FLEET].token
    if not token:
        raise ApiError(403, "no fleet token is configured, so the API is refused: set [fleet] token or token_file "
                            "(or ATSD_FLEET_TOKEN)")
    scheme, _, cred = request.headers.get("Authorization", "").partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="atsd-fleet"'}
    if scheme.lower() != "bearer" or not cred.strip():
        raise ApiError(401, "missing token: send the header Authorization: Bearer <token>", challenge)
    if not hmac.compare_digest(cred.strip().encode("utf-8", "replace"), token.encode("utf-8", "replace")):
        raise ApiError(401, "wrong token", challenge)


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Token on /api/*, JSON errors for every 4xx, 503 (never a traceback) for faults."""
    try:
        if request.path.startswith("/api/"):
            check_token(request)
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.message, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        msg = {404: f"no such path: {request.path}",
               405: f"{request.method} is not allowed on {request.path}",
               413: f"request body too large; the limit is {MAX_BODY_BYTES} bytes"}.get(exc.status, exc.reason)
        headers = {k: v for k, v in exc.headers.items() if k in ("Allow",)}
        return error_response(exc.status, msg, headers)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("fleet web: %s %s failed", request.method, request.path)
        return error_response(503, "internal error: the fleet service could not answer; the details are in its log")


def fleet(request: web.Request) -> Fleet:
    return request.app[FLEET]


# -- input -------------------------------------------------------------------------------------------


def _group_from(tag: Any, ids: Any, *, required: bool) -> Group | None:
    if tag is not None and ids is not None:
        raise ApiError(400, "give either tag or ids, not both")
    if tag is not None:
        if not isinstance(tag, str) or not tag:
            raise ApiError(400, "tag must be a non-empty string")
        return Group(tag=tag)
    if ids is not None:
        if isinstance(ids, str):
            ids = [i for i in ids.split(",") if i]
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
            raise ApiError(400, "ids must be a non-empty list of device ids (or a comma-separated string)")
        bad = [i for i in ids if any(c in i for c in "/+# ")]
        if bad:
            raise ApiError(400, f"device ids cannot contain '/', '+', '#' or spaces (got {bad[0]!r})")
        return Group(ids=tuple(ids))
    if required:
        raise ApiError(400, "say which houses: tag (a tag from the houses' [device] tags) or ids (a list)")
    return None


def _query_group(request: web.Request) -> Group | None:
    return _group_from(request.query.get("tag"), request.query.get("ids"), required=False)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        doc = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "the body must be a JSON object") from None
    if not isinstance(doc, dict):
        raise ApiError(400, "the body must be a JSON object")
    return doc


# -- handlers ----------------------------------------------------------------------------------------


async def healthz(request: web.Request) -> web.Response:
    f = fleet(request)
    connected = f.link is not None and f.link.connected.is_set()
    return json_response({"ok": connected, "broker_connected": connected, "houses": len(f.view.houses),
                          "messages": f.view.messages}, 200 if connected else 503)


async def houses(request: web.Request) -> web.Response:
    """``GET /api/houses[?tag=T|ids=a,b]``: every house (or a group) with mode, temperatures, savings, health."""
    f = fleet(request)
    g = _query_group(request)
    ids = None if g is None else f.view.select(g)
    return json_response(f.view.houses_doc(f.clock(), ids))


async def house(request: web.Request) -> web.Response:
    f = fleet(request)
    h = f.view.houses.get(request.match_info["device_id"])
    if h is None:
        raise ApiError(404, f"no house {request.match_info['device_id']!r} has published on the broker")
    return json_response(f.view.house_doc(h, f.clock()))


async def groups(request: web.Request) -> web.Response:
    """``GET /api/groups``: the tags the houses carry, with how many houses have each."""
    return json_response({"tags": fleet(request).view.tags()})


async def flexibility(request: web.Request) -> web.Response:
    """``GET /api/flexibility?tag=T|ids=a,b[&hours=6]``: kW sheddable now and per hour, and for how long."""
    f = fleet(request)
    g = _query_group(request) or Group(ids=tuple(sorted(f.view.houses)))
    try:
        hours = int(request.query.get("hours", "6"))
    except ValueError:
        raise ApiError(400, f"hours must be an integer (got {request.query.get('hours')!r})") from None
    if not 1 <= hours <= MAX_HOURS:
        raise ApiError(400, f"hours must be within 1..{MAX_HOURS} (got {hours})")
    doc = f.view.flexibility(f.view.select(g), f.clock(), hours)
    return json_response({"group": g.as_json() if g.tag or request.query.get("ids") else {"all": True}, **doc})


def _link(f: Fleet) -> FleetLink:
    if f.link is None:
        raise ApiError(503, "this fleet service has no broker connection")
    return f.link


async def dispatch(request: web.Request) -> web.Response:
    """``POST /api/dispatch``: a demand-response event to every house of a group (``dr/set`` each).

    Body: ``tag`` or ``ids``; ``kind`` (shed|boost, default shed), ``duration_min``, optional ``start``
    (default now), ``power_limit_kw``, ``event_id`` (default generated), ``ack_timeout_s`` (default 30).
    Answers 202 with the dispatch document; follow it at ``/api/dispatch/{event_id}``.
    """
    f = fleet(request)
    body = await _body(request)
    g = _group_from(body.get("tag"), body.get("ids"), required=True)
    assert g is not None
    now = f.clock()
    timeout = body.get("ack_timeout_s", DEFAULT_ACK_TIMEOUT_S)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 3600:
        raise ApiError(400, f"ack_timeout_s must be a number within 0..3600 (got {timeout!r})")
    event_doc = {"v": messages.VERSION, "event_id": body.get("event_id") or f"fleet-{uuid.uuid4().hex[:12]}",
                 "start": body.get("start") or iso_z(now), "duration_min": body.get("duration_min"),
                 "kind": body.get("kind", "shed")}
    if body.get("power_limit_kw") is not None:
        event_doc["power_limit_kw"] = body["power_limit_kw"]
    try:
        event = messages.DemandResponseEvent.parse(event_doc, "fleet")
    except messages.MessageError as exc:
        raise ApiError(400, str(exc)) from None
    if event.end <= now:
        raise ApiError(400, f"the event ends at {iso_z(event.end)}, which is already past")
    if event.event_id in f.view.dispatches:
        raise ApiError(409, f"event_id {event.event_id!r} was already dispatched; choose another")
    targets = f.view.select(g)
    if not targets:
        raise ApiError(404, f"the group {g.as_json()} has no houses (known tags: {', '.join(f.view.tags()) or 'none'})")
    link = _link(f)
    d = f.view.start_dispatch(event, g, targets, now, float(timeout))
    sendable = [i for i in targets if i not in d.unknown]
    try:
        sent = await link.send(sendable, messages.DR_SET, messages.dumps(event.as_json())) if sendable else 0
    except FleetLinkError as exc:
        del f.view.dispatches[event.event_id]
        raise ApiError(503, f"nothing was dispatched: {exc}") from None
    log.info("fleet: dispatched %s event %s to %d houses of %s.", event.kind, event.event_id, sent, g.as_json())
    doc = f.view.dispatch_doc(d, f.clock())
    doc["published"] = sent
    return json_response(doc, 202)


async def dispatches(request: web.Request) -> web.Response:
    f = fleet(request)
    now = f.clock()
    out = []
    for d in reversed(f.view.dispatches.values()):
        doc = f.view.dispatch_doc(d, now)
        out.append({k: doc[k] for k in ("event", "group", "dispatched_at", "targets", "summary", "complete",
                                        "last_ack_after_s", "shed")})
    return json_response({"dispatches": out})


async def dispatch_one(request: web.Request) -> web.Response:
    """``GET /api/dispatch/{event_id}``: each house's acknowledgement and the measured shed."""
    f = fleet(request)
    d = f.view.dispatches.get(request.match_info["event_id"])
    if d is None:
        raise ApiError(404, f"no dispatch with event_id {request.match_info['event_id']!r} (the service keeps "
                            "the last 200 since it started)")
    return json_response(f.view.dispatch_doc(d, f.clock()))


async def mode(request: web.Request) -> web.Response:
    """``POST /api/mode``: a mode override to a group (``mode/set``); ``mode``, optional ``until``, ``reason``."""
    f = fleet(request)
    body = await _body(request)
    g = _group_from(body.get("tag"), body.get("ids"), required=True)
    assert g is not None
    doc = {"mode": body.get("mode"), "until": body.get("until"), "reason": body.get("reason", "fleet override")}
    try:
        cmd = messages.ModeCommand.parse(doc)
    except messages.MessageError as exc:
        raise ApiError(400, str(exc)) from None
    now = f.clock()
    until = cmd.until or now + timedelta(hours=1)
    if until <= now:
        raise ApiError(400, f"until {iso_z(until)} is already past")
    targets = [i for i in f.view.select(g) if i in f.view.houses]
    if not targets:
        raise ApiError(404, f"the group {g.as_json()} has no known houses")
    mode = cmd.mode.value if cmd.mode is not None else "AUTO"  # AUTO: back to each house's plan
    payload = messages.dumps({"v": messages.VERSION, "mode": mode, "until": iso_z(until), "reason": cmd.reason})
    try:
        sent = await _link(f).send(targets, messages.MODE_SET, payload)
    except FleetLinkError as exc:
        raise ApiError(503, f"nothing was sent: {exc}") from None
    return json_response({"mode": mode, "until": iso_z(until), "group": g.as_json(),
                          "targets": targets, "published": sent}, 202)


# -- the page ------------------------------------------------------------------------------------------

ASSET_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}


def _asset(name: str) -> bytes:
    return (resources.files("atsd.fleet") / "static" / name).read_bytes()


async def page(request: web.Request) -> web.Response:
    resp = web.Response(body=_asset("index.html"), content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-store", "Content-Security-Policy": CSP,
                                 "X-Content-Type-Options": "nosniff"})
    return resp


async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in ("fleet.js", "fleet.css"):
        raise web.HTTPNotFound()
    return web.Response(body=_asset(name), content_type=ASSET_TYPES[name[name.rindex("."):]],
                        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})


def create_app(view: FleetView, link: FleetLink | None, token: str | None, clock: Clock) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[guard])
    app[FLEET] = Fleet(view, link, token or None, clock)
    app.router.add_get("/", page)
    app.router.add_get("/static/{name}", static)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/houses", houses)
    app.router.add_get("/api/houses/{device_id}", house)
    app.router.add_get("/api/groups", groups)
    app.router.add_get("/api/flexibility", flexibility)
    app.router.add_post("/api/dispatch", dispatch)
    app.router.add_get("/api/dispatch", dispatches)
    app.router.add_get("/api/dispatch/{event_id}", dispatch_one)
    app.router.add_post("/api/mode", mode)
    return app
