"""An async client for BOPTEST's REST API, both generations, with one typed error.

Built from ``ibpsa/project1-boptest``: ``restapi.py`` and ``testcase.py`` (the single-test-case API:
``/advance``, ``/initialize``, ``/scenario``, ``/forecast``, ``/results``, ``/kpi``, ... without ids)
and ``service/web/server/src/routes/boptestRoutes.js`` + ``lib/boptestLib.js`` (the web service:
``POST /testcases/{name}/select`` answers a bare ``{"testid": ...}``, every other call on a running
test ends in ``/{testid}``, and ``PUT /stop/{testid}`` answers a plain 200 "OK"). Every other answer
is ``{"status", "message", "payload"}``: 400 for a bad request (unknown input, non-numeric value,
unknown scenario), 500 when the simulation failed. Units are BOPTEST's: kelvin, W, EUR/kWh, and
times in seconds of the simulation year.

httpx errors never leave this module: they become :class:`BoptestError`, as do answers with a status
of 400 or more. Use the client as ``async with BoptestClient(url) as c: testid = await c.select(name)``;
leaving the block stops the test (``PUT /stop``) whatever happened inside it.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from types import TracebackType
from typing import Any, Self

import httpx

log = logging.getLogger(__name__)


class Api(StrEnum):
    SERVICE = "service"  # BOPTEST >= 0.5 web service: test ids
    SINGLE = "single"  # one test case per server, no ids
    AUTO = "auto"  # try select; a 404 means the single-test-case server


class BoptestError(Exception):
    """A BOPTEST call failed. ``status`` is the HTTP status (0: no answer), ``call`` what was asked."""

    def __init__(self, call: str, status: int, message: str):
        self.call = call
        self.status = status
        self.detail = message
        what = {400: "rejected the request", 404: "does not know it", 500: "the simulation failed"}.get(
            status, f"HTTP {status}" if status else "no answer")
        super().__init__(f"BOPTEST {call}: {what}: {message}")


class BoptestClient:
    """One test on one BOPTEST server. ``testid`` is None on the single-test-case API."""

    def __init__(self, url: str, *, api: Api | str = Api.AUTO, timeout_s: float = 120.0,
                 http: httpx.AsyncClient | None = None) -> None:
        self.url = url.rstrip("/")
        self.api = Api(api)
        self.testid: str | None = None
        self._timeout = httpx.Timeout(timeout_s, connect=10.0)
        self._http = http
        self._own_http = http is None
        self.warnings: list[str] = []  # messages of calls that succeeded with a warning (clamped inputs)

    async def __aenter__(self) -> Self:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self._timeout)
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        try:
            await self.stop()
        except BoptestError as exc:
            log.warning("Could not stop BOPTEST test %s: %s", self.testid, exc)
        finally:
            if self._own_http and self._http is not None:
                await self._http.aclose()
                self._http = None

    # -- transport ---------------------------------------------------------------------------------

    def _path(self, name: str) -> str:
        if self.api is Api.SERVICE:
            if self.testid is None:
                raise BoptestError(name, 0, "no test selected (call select first)")
            return f"/{name}/{self.testid}"
        return f"/{name}"

    async def _raw(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        if self._http is None:
            raise BoptestError(path, 0, "the client is not open (use `async with`)")
        try:
            return await self._http.request(method, self.url + path, json=body, timeout=self._timeout)
        except httpx.TimeoutException as exc:
            raise BoptestError(f"{method} {path}", 0, f"timed out after {self._timeout.read} s") from exc
        except httpx.HTTPError as exc:
            raise BoptestError(f"{method} {path}", 0, f"{type(exc).__name__}: {exc}; is {self.url} a BOPTEST "
                               "server?") from exc

    async def _call(self, method: str, name: str, body: dict[str, Any] | None = None) -> Any:
        """One call; returns the payload, raises :class:`BoptestError` for a status of 400 or more."""
        path = self._path(name)
        r = await self._raw(method, path, body)
        call = f"{method} {path}"
        try:
            doc = r.json()
        except ValueError:
            doc = None
        if isinstance(doc, dict) and "status" in doc:
            status = int(doc.get("status") or r.status_code)
            message = str(doc.get("message") or "")
            if status >= 400 or r.status_code >= 400:
                raise BoptestError(call, max(status, r.status_code), message)
            if message and ("WARNING" in message.upper() or "minimum" in message or "maximum" in message):
                if not self.warnings:  # once per test: the same clamping repeats every step
                    log.warning("BOPTEST %s: %s", call, message)
                self.warnings.append(message)
            return doc.get("payload")
        if r.status_code >= 400:
            raise BoptestError(call, r.status_code, r.text[:300] or r.reason_phrase)
        raise BoptestError(call, r.status_code, f"not a BOPTEST answer: {r.text[:120]!r}")

    # -- the API ---------------------------------------------------------------------------------

    async def select(self, testcase: str) -> str | None:
        """Start a test of ``testcase``; returns its test id (None on the single-test-case API)."""
        if self.api in (Api.SERVICE, Api.AUTO):
            r = await self._raw("POST", f"/testcases/{testcase}/select")
            if r.status_code == 404 and self.api is Api.AUTO:
                self.api = Api.SINGLE
            elif r.status_code >= 400:
                raise BoptestError(f"POST /testcases/{testcase}/select", r.status_code, r.text[:300])
            else:
                try:
                    testid = r.json()["testid"]
                except (ValueError, KeyError, TypeError) as exc:
                    raise BoptestError("select", r.status_code, f"no testid in {r.text[:120]!r}") from exc
                self.api = Api.SERVICE
                self.testid = str(testid)
                return self.testid
        try:
            name = await self.name()
        except BoptestError as exc:
            if exc.status != 404:
                raise
            raise BoptestError(f"POST /testcases/{testcase}/select", 404,
                               f"no test case {testcase!r} on this server, and no single-test-case API "
                               "either; check --testcase and --url") from exc
        if name != testcase:
            raise BoptestError("GET /name", 400, f"this server runs {name!r}, not {testcase!r}; start BOPTEST "
                               f"with TESTCASE={testcase}")
        return None

    async def name(self) -> str:
        payload = await self._call("GET", "name")
        return str(payload["name"] if isinstance(payload, dict) else payload)

    async def scenario(self, *, electricity_price: str | None = None, time_period: str | None = None) -> dict[str, Any]:
        """Set the scenario; a ``time_period`` re-initialises the test (warm-up included)."""
        body: dict[str, Any] = {}
        if electricity_price:
            body["electricity_price"] = electricity_price
        if time_period:
            body["time_period"] = time_period
        payload = await self._call("PUT", "scenario", body)
        return dict(payload or {})

    async def initialize(self, start_time_s: float, warmup_s: float) -> dict[str, Any]:
        return dict(await self._call("PUT", "initialize", {"start_time": start_time_s, "warmup_period": warmup_s}) or {})

    async def set_step(self, step_s: float) -> None:
        await self._call("PUT", "step", {"step": step_s})

    async def inputs(self) -> dict[str, Any]:
        return dict(await self._call("GET", "inputs") or {})

    async def measurements(self) -> dict[str, Any]:
        return dict(await self._call("GET", "measurements") or {})

    async def forecast(self, point_names: list[str], horizon_s: float, interval_s: float) -> dict[str, list[float]]:
        """Forecast of ``point_names`` from now; ``time`` (seconds of the year) is included."""
        payload = await self._call("PUT", "forecast", {"point_names": point_names, "horizon": horizon_s,
                                                        "interval": interval_s})
        return {k: [float(x) for x in v] for k, v in dict(payload or {}).items()}

    async def advance(self, u: dict[str, float]) -> dict[str, float]:
        """Advance one step with the overwritten inputs; an empty answer means the scenario ended."""
        payload = await self._call("POST", "advance", u)
        if payload is None:
            raise BoptestError(f"POST {self._path('advance')}", 500, "no measurements in the answer")
        return {k: float(v) for k, v in dict(payload).items() if isinstance(v, int | float)}

    async def results(self, point_names: list[str], start_s: float, final_s: float) -> dict[str, list[float]]:
        payload = await self._call("PUT", "results", {"point_names": point_names, "start_time": start_s,
                                                       "final_time": final_s})
        return {k: [float(x) for x in v] for k, v in dict(payload or {}).items()}

    async def kpi(self) -> dict[str, float | None]:
        payload = await self._call("GET", "kpi")
        return {k: (None if v is None else float(v)) for k, v in dict(payload or {}).items()}

    async def stop(self) -> None:
        """End the test on the service (the single-test-case API has nothing to stop)."""
        if self.api is not Api.SERVICE or self.testid is None:
            return
        testid = self.testid
        r = await self._raw("PUT", f"/stop/{testid}")
        if r.status_code >= 400:
            raise BoptestError(f"PUT /stop/{testid}", r.status_code, r.text[:300])
        self.testid = None
