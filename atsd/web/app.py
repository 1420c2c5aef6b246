"""The aiohttp application: routes, the bearer-token guard, JSON errors, the page and its assets.

``create_app(cfg, source)`` builds it; ``start(cfg, source)`` serves it on ``[web] bind`` and
``port``. Every answer to a bad request is a 4xx JSON error that says what is wrong; a fault inside
atsd answers 503 with a JSON error and logs the traceback, which never reaches the client.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import Counter

from atsd.config import Config, read_secret
from atsd.web.bodies import InputError
from atsd.web.documents import chart_doc, dumps, status_doc
from atsd.web.metrics import make_registry
from atsd.web.source import StatusSource

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OPEN, READ, WRITE = "open", "read", "write"
CHART_PAST_HOURS = 12
REFRESH_S = 60


def access(level: str) -> Callable[[Handler], Handler]:
    """Mark a handler open (always), read (token only when private) or write (always the token)."""

    def mark(fn: Handler) -> Handler:
        fn.atsd_access = level  # type: ignore[attr-defined]
        return fn

    return mark


@dataclass(frozen=True)
class Settings:
    cfg: Config
    source: StatusSource
    token: str | None
    private: bool
    max_body_bytes: int


SETTINGS = web.AppKey("settings", Settings)


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def settings(request: web.Request) -> Settings:
    return request.app[SETTINGS]


def json_response(request: web.Request, doc: Any, status: int = 200) -> web.Response:
    text = dumps(doc)
    resp = web.Response(text=text, status=status, content_type="application/json",
                        headers={"Cache-Control": "no-store"})
    if len(text) > 2048:
        resp.enable_compression()
    return resp


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = dumps({"error": message, "detail": message, "status": status})
    return web.Response(text=body, status=status, content_type="application/json",
                        headers={"Cache-Control": "no-store", **(headers or {})})


def check_token(request: web.Request, level: str) -> None:
    s = settings(request)
    if level == OPEN or (level == READ and not s.private):
        return
    if not s.token:
        raise ApiError(403, "no API token is configured, so this is refused: set [web] token or token_file "
                            "(or ATSD_WEB_TOKEN) to allow it")
    scheme, _, cred = request.headers.get("Authorization", "").partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="atsd"'}
    if scheme.lower() != "bearer" or not cred.strip():
        raise ApiError(401, "missing token: send the header Authorization: Bearer <token>", challenge)
    given = cred.strip().encode("utf-8", "replace")
    if not hmac.compare_digest(given, s.token.encode("utf-8", "replace")):
        raise ApiError(401, "wrong token", challenge)


METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def make_guard(counter: Counter) -> Middleware:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        """Token check, JSON errors for every 4xx, 503 (never a traceback) for faults, request counts."""
        route = request.match_info.route.resource
        label = route.canonical if route is not None else "unmatched"
        status = 500
        try:
            check_token(request, getattr(request.match_info.handler, "atsd_access", OPEN))
            resp = await handler(request)
            status = resp.status
            return resp
        except ApiError as exc:
            status = exc.status
            return error_response(exc.status, exc.message, exc.headers)
        except InputError as exc:
            status = exc.status
            return error_response(exc.status, exc.message)
        except web.HTTPException as exc:
            status = exc.status
            if exc.status < 400:
                raise
            headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "WWW-Authenticate")}
            return error_response(exc.status, _http_message(exc, request), headers)
        except asyncio.CancelledError:
            raise
        except Exception:
            status = 503
            log.exception("web: %s %s failed", request.method, request.path)
            return error_response(503, "internal error: atsd could not answer this request; the details "
                                       "are in its log")
        finally:
            method = request.method if request.method in METHODS else "other"  # labels stay a bounded set
            counter.labels(label, method, str(status)).inc()

    return guard


def _http_message(exc: web.HTTPException, request: web.Request) -> str:
    if exc.status == 404:
        return f"no such path: {request.path} (see /openapi.json)"
    if exc.status == 405:
        return f"{request.method} is not allowed on {request.path} (allowed: {exc.headers.get('Allow', '')})"
    if exc.status == 413:
        return f"request body too large; the limit is {settings(request).max_body_bytes} bytes"
    return exc.reason or str(exc.status)


# -- the page and its assets -------------------------------------------------------------------------


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


ASSET_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


def load_assets() -> tuple[str, dict[str, Asset]]:
    pkg = resources.files("atsd.web") / "static"
    page = (pkg / "index.html").read_text("utf-8")
    assets = {}
    for name in ("app.js", "app.css", "icon.svg"):
        body = (pkg / name).read_bytes()
        ext = name[name.rindex("."):]
        assets[name] = Asset(body, ASSET_TYPES[ext], hashlib.sha256(body).hexdigest()[:16])
    return page, assets


# Everything from atsd itself; the inline initial data is a JSON block, not a script, so it needs no hash.
CSP = "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
PAGE = web.AppKey("page", str)
ASSETS = web.AppKey("assets", dict)


def _script_json(doc: Any) -> str:
    """JSON safe inside a <script> element: no ``</script>``, no ``<!--``."""
    return dumps(doc).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@access(OPEN)
async def page(request: web.Request) -> web.Response:
    """``GET /``: the status page, with the first data inlined (one round trip on a phone)."""
    s = settings(request)
    initial: Any = None
    if not s.private:
        initial = await page_data(s)
    assets: dict[str, Asset] = request.app[ASSETS]
    text = request.app[PAGE]
    for name, a in assets.items():
        text = text.replace(f"/static/{name}", f"/static/{name}?v={a.etag}")
    text = (text.replace("__TITLE__", html.escape(s.cfg.device.name))
            .replace("__REFRESH_S__", str(REFRESH_S))
            .replace("__INITIAL__", _script_json({"private": s.private, "data": initial})))
    resp = web.Response(text=text, content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
                                 "Content-Security-Policy": CSP})
    resp.enable_compression()
    return resp


async def page_data(s: Settings) -> dict[str, Any]:
    snap = s.source.snapshot()
    plan = s.source.plan()
    now = snap["now"]
    hist = await s.source.history(now - timedelta(hours=CHART_PAST_HOURS), now)
    return {"status": status_doc(s.cfg, snap, plan),
            "chart": chart_doc(plan, list(hist), snap, s.cfg, CHART_PAST_HOURS)}


@access(OPEN)
async def static(request: web.Request) -> web.Response:
    assets: dict[str, Asset] = request.app[ASSETS]
    a = assets.get(request.match_info["name"])
    if a is None:
        raise web.HTTPNotFound()
    headers = {"ETag": f'"{a.etag}"', "Cache-Control": "public, max-age=31536000, immutable",
               "X-Content-Type-Options": "nosniff"}
    if request.headers.get("If-None-Match") == f'"{a.etag}"':
        return web.Response(status=304, headers=headers)
    resp = web.Response(body=a.body, content_type=a.content_type, headers=headers)
    if a.content_type != "image/svg+xml":
        resp.enable_compression()
    return resp


# -- building and serving ----------------------------------------------------------------------------


def create_app(cfg: Config, source: StatusSource, *, token: str | None = None) -> web.Application:
    """The status page and API for one house. ``token`` defaults to ``[web] token``, ``token_file``
    or the ``ATSD_WEB_TOKEN`` environment variable (systemd credential ``atsd_web_token``)."""
    from atsd.web import api, legacy
    from atsd.web.openapi import openapi_handler

    w = cfg.web
    tok = token if token is not None else read_secret(w.token, w.token_file, "ATSD_WEB_TOKEN")
    registry, counter = make_registry(source, cfg.device.device_id)
    app = web.Application(client_max_size=w.max_body_bytes, middlewares=[make_guard(counter)])
    app[SETTINGS] = Settings(cfg, source, tok or None, w.private, w.max_body_bytes)
    app[PAGE], app[ASSETS] = load_assets()
    app[api.REGISTRY] = registry
    app.router.add_get("/", page)
    app.router.add_get("/static/{name}", static)
    app.router.add_get("/openapi.json", openapi_handler)
    api.add_routes(app)
    legacy.add_routes(app)
    return app


async def start(cfg: Config, source: StatusSource, *, bind: str | None = None,
                port: int | None = None) -> web.AppRunner:
    """Serve the app (the daemon calls this inside its TaskGroup and ``await runner.cleanup()`` on exit)."""
    runner = web.AppRunner(create_app(cfg, source), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, bind or cfg.web.bind, cfg.web.port if port is None else port)
    await site.start()
    log.info("web: status page on http://%s:%s/", bind or cfg.web.bind, cfg.web.port if port is None else port)
    return runner


def bound_port(runner: web.AppRunner) -> int:
    """The port actually bound (useful with port 0)."""
    for site in runner.sites:
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            return int(server.sockets[0].getsockname()[1])
    raise RuntimeError("the web app is not serving")


__all__ = ["ApiError", "access", "create_app", "json_response", "start"]
