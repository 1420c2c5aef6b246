"""A small BOPTEST-compatible server for the tests, backed by atsd's own thermal model.

Built from ``ibpsa/project1-boptest``: ``restapi.py`` and ``testcase.py`` (answers
``{"status", "message", "payload"}``; 400 for an unexpected input name or a non-numeric value,
out-of-range values clamped to the input's limits with a warning in ``message``, 500 when the
simulation fails; ``set_scenario`` warms up before the time period; ``/advance`` answers an empty
payload once the scenario has ended), ``service/web/server/src/routes/boptestRoutes.js`` and
``lib/boptestLib.js`` (``POST /testcases/{name}/select`` answers ``{"testid"}``, ``PUT /stop/{testid}``
a plain 200 "OK"), and ``testcases/bestest_hydronic_heat_pump`` (``doc/index.html`` for the point names,
limits and the baseline controller's setpoint, LowerSetp + 0.2 K occupied / + 5.5 K unoccupied;
``models/config.json`` for the 192 m² area; ``models/kpis.json`` for the electric power points;
``models/days.json`` for the time periods). ``strict_range=True`` answers 400 for a value out of
range instead, as the issue describes it.

It is not the Modelica building. The plant is a 1R1C house (UA 160 W/K, C 12 kWh/K) heated by
atsd's heat-pump model: the baseline thermostat holds its setpoint; ``oveTSet_u`` moves that
setpoint; ``oveHeaPumY_u`` pins the compressor at that fraction of its capacity (0: off). Weather
and prices are simple documented profiles (see :func:`outdoor_c`, :func:`price_eur_per_kwh`).
KPIs follow BOPTEST's definitions: ``ener_tot`` electric kWh per m² of floor, ``cost_tot`` EUR per
m² (energy × price), ``emis_tot`` kgCO2 per m², ``tdis_tot`` K·h outside [LowerSetp, UpperSetp] per zone.
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from aiohttp import web

from atsd.boptest.cases import BESTEST_HYDRONIC_HEAT_PUMP as CASE
from atsd.config import Config, HeatPumpConfig
from atsd.core import house
from atsd.core.modes import Mode
from atsd.core.thermal import Building, ThermalModel
from atsd.core.timegrid import Grid

K = 273.15
DAYS = {"peak_heat_day": 23, "typical_heat_day": 73}  # days.json keys; the days are the fake's own
SUB_S = 300  # the plant is integrated (and its results sampled) every 5 minutes
EMISSION_KG_PER_KWH = 0.167
INPUTS = {"oveHeaPumY_u": (0.0, 1.0, "1"), "oveHeaPumY_activate": (0.0, 1.0, "1"),
          "oveTSet_u": (278.15, 308.15, "K"), "oveTSet_activate": (0.0, 1.0, "1")}
MEASUREMENTS = {"reaTZon_y": "K", "weaSta_reaWeaTDryBul_y": "K", "weaSta_reaWeaHGloHor_y": "W/m2",
                "reaPHeaPum_y": "W", "reaPFan_y": "W",
                "reaPPumEmi_y": "W", "reaTSetHea_y": "K"}


def occupied(t_s: float) -> bool:
    """Occupied before 7 and after 20 on weekdays, all day at weekends (day 0 is a Monday)."""
    h = (t_s % 86400) / 3600
    return int(t_s // 86400) % 7 >= 5 or h < 7 or h >= 20


def outdoor_c(t_s: float) -> float:
    """A cold spell: −3 °C mean, ±4 K daily swing (warmest 15:00), ±3 K over 3.3 days."""
    h = (t_s % 86400) / 3600
    return -3.0 + 4.0 * math.sin(2 * math.pi * (h - 9) / 24) + 3.0 * math.sin(2 * math.pi * t_s / (3.3 * 86400))


def ghi_w_m2(t_s: float) -> float:
    h = (t_s % 86400) / 3600
    return max(0.0, 300.0 * math.sin(math.pi * (h - 8) / 8)) if 8 <= h <= 16 else 0.0


def price_eur_per_kwh(kind: str, t_s: float) -> float:
    """constant 0.25; dynamic: day 0.30 (7-22 h) / night 0.20; highly_dynamic: morning and evening spot peaks."""
    h = (t_s % 86400) / 3600
    if kind == "constant":
        return 0.25
    if kind == "dynamic":
        return 0.30 if 7 <= h < 22 else 0.20
    return 0.12 + 0.15 * math.exp(-(((h - 8) / 1.5) ** 2)) + 0.25 * math.exp(-(((h - 18.5) / 2.0) ** 2))


def lower_k(t_s: float) -> float:
    return K + (21.0 if occupied(t_s) else 15.0)


def upper_k(t_s: float) -> float:
    return K + (24.0 if occupied(t_s) else 30.0)


def forecast_value(name: str, t_s: float) -> float:
    if name == "TDryBul":
        return outdoor_c(t_s) + K
    if name == "HGloHor":
        return ghi_w_m2(t_s)
    if name == "LowerSetp[1]":
        return lower_k(t_s)
    if name == "UpperSetp[1]":
        return upper_k(t_s)
    if name == "Occupancy[1]":
        return 5.0 if occupied(t_s) else 0.0
    if name == "EmissionsElectricPower":
        return EMISSION_KG_PER_KWH
    kind = {v: k for k, v in CASE.prices.items()}[name]
    return price_eur_per_kwh(kind, t_s)


FORECAST_POINTS = ("TDryBul", "HGloHor", "LowerSetp[1]", "UpperSetp[1]", "Occupancy[1]", "EmissionsElectricPower",
                   *CASE.prices.values())


def plant_model() -> ThermalModel:
    hp = house.heat_pump(Config(heat_pump=HeatPumpConfig(**CASE.heat_pump)))  # type: ignore[arg-type]
    return ThermalModel.with_defaults(Building(160.0, 12.0 * 3.6e6, 3.0, 300.0), hp)


class SimulationFailedError(Exception):
    pass


@dataclass
class FakeTest:
    """One test: the plant's state, the stored results and the KPI sums."""

    model: ThermalModel = field(default_factory=plant_model)
    step_s: float = 3600.0
    price: str = "constant"
    time_s: float = 0.0
    end_s: float = math.inf
    temp_c: float = 21.0
    results: dict[str, list[float]] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)
    kpi_sums: dict[str, float] = field(default_factory=dict)
    fail_at_time_s: float | None = None

    def _sub(self, t: float, dt: float, u: dict[str, float], store: bool) -> None:
        """Integrate ``dt`` seconds from ``t`` under the inputs ``u`` (exact for the 1R1C plant)."""
        if self.fail_at_time_s is not None and t >= self.fail_at_time_s:
            raise SimulationFailedError(f"CVode solver failed at t={t:g} s (injected by the test)")
        occ_set = CASE.baseline_setpoint_k(lower_k(t), occupied(t)) - K
        setpoint = u["oveTSet_u"] - K if u.get("oveTSet_activate") == 1 else occ_set
        grid = Grid(datetime(2023, 1, 1, tzinfo=UTC), round(dt), 1)
        out = np.array([outdoor_c(t + dt / 2)])
        m = self.model
        d = m.drive(grid, out, np.array([ghi_w_m2(t + dt / 2)]), np.array([setpoint]), np.array([-50.0]),
                    np.array([60.0]))
        rank = Mode.NORMAL.rank
        if u.get("oveHeaPumY_activate") == 1:
            y = u["oveHeaPumY_u"]
            cap = d.comp_cap_w.copy()
            sets = d.comp_set_c.copy()
            cap[rank] = cap[rank] * y
            sets[rank] = np.inf if y > 0 else -np.inf
            d = dataclasses.replace(d, comp_cap_w=cap, comp_set_c=sets)
        start = self.temp_c
        end, _mean, _qc, _qa, elec_kwh = m.step1(d, 0, start, rank)
        power_w = elec_kwh * 3.6e6 / dt
        if store:
            lo, hi = lower_k(t) - K, upper_k(t) - K
            below = 0.5 * (max(0.0, lo - start) + max(0.0, lo - end)) * dt / 3600
            above = 0.5 * (max(0.0, start - hi) + max(0.0, end - hi)) * dt / 3600
            s = self.kpi_sums
            s["kwh"] = s.get("kwh", 0.0) + elec_kwh
            s["eur"] = s.get("eur", 0.0) + elec_kwh * price_eur_per_kwh(self.price, t)
            s["kg"] = s.get("kg", 0.0) + elec_kwh * EMISSION_KG_PER_KWH
            s["kh"] = s.get("kh", 0.0) + below + above
            s["peak_kw"] = max(s.get("peak_kw", 0.0), power_w / 1000)
        self._record(t, start, power_w, setpoint)
        self.temp_c = end

    def _record(self, t: float, temp_c: float, power_w: float, setpoint_c: float) -> None:
        row = {"time": t, "reaTZon_y": temp_c + K, "weaSta_reaWeaTDryBul_y": outdoor_c(t) + K,
               "weaSta_reaWeaHGloHor_y": ghi_w_m2(t), "reaPHeaPum_y": power_w, "reaPFan_y": 0.0,
               "reaPPumEmi_y": 0.0, "reaTSetHea_y": setpoint_c + K}
        for k, v in row.items():
            self.results.setdefault(k, []).append(v)
        self.last = row

    def initialize(self, start_s: float, warmup_s: float, end_s: float) -> dict[str, float]:
        self.results, self.kpi_sums, self.temp_c = {}, {}, 21.0
        t = max(0.0, start_s - warmup_s)
        while t < start_s - 1e-6:
            dt = min(SUB_S, start_s - t)
            self._sub(t, dt, {}, store=False)
            t += dt
        self.time_s, self.end_s = start_s, end_s
        self.last = {**self.last, "time": start_s, "reaTZon_y": self.temp_c + K}
        return dict(self.last)

    def advance(self, u: dict[str, float]) -> dict[str, float]:
        if self.time_s >= self.end_s - 1e-6:
            return {}
        final = min(self.time_s + self.step_s, self.end_s)
        t = self.time_s
        while t < final - 1e-6:
            dt = min(SUB_S, final - t)
            self._sub(t, dt, u, store=True)
            t += dt
        self.time_s = final
        return {**self.last, "time": final, "reaTZon_y": self.temp_c + K}

    def kpis(self) -> dict[str, float | None]:
        s = self.kpi_sums
        a = CASE.area_m2
        return {"cost_tot": s.get("eur", 0.0) / a, "tdis_tot": s.get("kh", 0.0), "ener_tot": s.get("kwh", 0.0) / a,
                "emis_tot": s.get("kg", 0.0) / a, "idis_tot": 0.0, "pele_tot": s.get("peak_kw", 0.0) / a,
                "pgas_tot": None, "pdih_tot": None, "time_rat": None}


def answer(status: int, message: str, payload: Any) -> web.Response:
    return web.json_response({"status": status, "message": message, "payload": payload}, status=status)


@dataclass
class FakeBoptest:
    """The server's state: ``api`` "service" (test ids) or "single" (one test, no ids)."""

    api: str = "service"
    warmup_days: float = 7.0
    length_days: float = 14.0
    strict_range: bool = False
    fail_at_step: int | None = None  # the n-th advance of a test fails with 500
    tests: dict[str, FakeTest] = field(default_factory=dict)
    stopped: list[str] = field(default_factory=list)
    selected: list[str] = field(default_factory=list)
    advances: int = 0

    @property
    def running(self) -> list[str]:
        return [t for t in self.tests if t != "single"]

    def app(self) -> web.Application:
        app = web.Application()
        r = app.router
        if self.api == "service":
            r.add_post("/testcases/{name}/select", self.select)
            r.add_put("/stop/{testid}", self.stop)
            suffix = "/{testid}"
        else:
            self.tests["single"] = FakeTest()
            self.tests["single"].initialize(0.0, 0.0, math.inf)
            suffix = ""
        r.add_get("/name" + suffix, self.name)
        r.add_put("/scenario" + suffix, self.scenario)
        r.add_put("/step" + suffix, self.step)
        r.add_get("/inputs" + suffix, self.inputs)
        r.add_get("/measurements" + suffix, self.measurements)
        r.add_put("/forecast" + suffix, self.forecast)
        r.add_post("/advance" + suffix, self.advance)
        r.add_put("/results" + suffix, self.results)
        r.add_get("/kpi" + suffix, self.kpi)
        return app

    def _test(self, request: web.Request) -> FakeTest:
        tid = request.match_info.get("testid", "single")
        t = self.tests.get(tid)
        if t is None:
            raise web.HTTPNotFound(text=f"Cannot find test {tid}")
        return t

    async def select(self, request: web.Request) -> web.Response:
        if request.match_info["name"] != CASE.name:
            return web.Response(status=404, text="Not Found")
        tid = str(uuid.uuid4())
        self.tests[tid] = FakeTest()
        self.tests[tid].initialize(0.0, 0.0, math.inf)
        self.selected.append(tid)
        return web.json_response({"testid": tid})

    async def stop(self, request: web.Request) -> web.Response:
        tid = request.match_info["testid"]
        if self.tests.pop(tid, None) is None:
            return web.Response(status=404, text=f"Cannot stop test {tid}: it does not exist")
        self.stopped.append(tid)
        return web.Response(text="OK")

    async def name(self, request: web.Request) -> web.Response:
        self._test(request)
        return answer(200, "Queried the name of the test case successfully.", {"name": CASE.name})

    async def scenario(self, request: web.Request) -> web.Response:
        t = self._test(request)
        body = await request.json()
        price, period = body.get("electricity_price"), body.get("time_period")
        payload: dict[str, Any] = {"electricity_price": None, "time_period": None}
        if price:
            if price not in CASE.prices:
                return answer(400, f"Scenario parameter electricity_price is {price}, but should be 'constant', "
                                   "'dynamic', or 'highly_dynamic'.", payload)
            t.price = payload["electricity_price"] = price
        if period:
            if period not in DAYS:
                return answer(400, f"Scenario parameter time_period is {period}, but should be one of the "
                                   f"following: {list(DAYS)}.", payload)
            start = DAYS[period] * 86400.0
            payload["time_period"] = t.initialize(start, self.warmup_days * 86400, start + self.length_days * 86400)
        return answer(200, "Test case scenario was set successfully.", payload)

    async def step(self, request: web.Request) -> web.Response:
        t = self._test(request)
        try:
            step = float((await request.json())["step"])
        except (KeyError, TypeError, ValueError):
            return answer(400, "Invalid value for parameter step.", None)
        t.step_s = step
        return answer(200, "Control step set successfully.", {"step": step})

    async def inputs(self, request: web.Request) -> web.Response:
        self._test(request)
        meta = {k: {"Unit": u, "Description": k, "Minimum": lo, "Maximum": hi} for k, (lo, hi, u) in INPUTS.items()}
        return answer(200, "Queried the inputs successfully.", meta)

    async def measurements(self, request: web.Request) -> web.Response:
        self._test(request)
        meta = {k: {"Unit": u, "Description": k, "Minimum": None, "Maximum": None} for k, u in MEASUREMENTS.items()}
        return answer(200, "Queried the measurements successfully.", meta)

    async def forecast(self, request: web.Request) -> web.Response:
        t = self._test(request)
        body = await request.json()
        try:
            horizon, interval = float(body["horizon"]), float(body["interval"])
        except (KeyError, TypeError, ValueError):
            return answer(400, "Invalid value for parameter horizon or interval.", None)
        names = list(body.get("point_names") or [])
        wrong = [n for n in names if n not in FORECAST_POINTS]
        if wrong:
            return answer(400, f"Invalid point name(s) {wrong} in parameter point_names.  Check list of available "
                               "forecast points.", None)
        times = t.time_s + np.arange(0.0, horizon + interval / 2, interval)
        payload = {"time": times.tolist(), **{n: [forecast_value(n, x) for x in times] for n in names}}
        return answer(200, "Queried the forecast data successfully.", payload)

    async def advance(self, request: web.Request) -> web.Response:
        t = self._test(request)
        body = await request.json() if request.can_read_body else {}
        u: dict[str, float] = {}
        warnings = []
        for key, raw in (body or {}).items():
            if key not in INPUTS:
                return answer(400, f"Unexpected input variable: {key}.", None)
            try:
                value = float(raw)
            except (TypeError, ValueError):
                return answer(400, f"Invalid value {raw} for input {key}. Value must be a float, integer, or string "
                                   "able to be converted to a float.", None)
            lo, hi, _unit = INPUTS[key]
            if not lo <= value <= hi:
                if self.strict_range:
                    return answer(400, f"Value {value} for {key} is outside its range [{lo}, {hi}].", None)
                edge, side = (hi, "above maximum") if value > hi else (lo, "below minimum")
                warnings.append(f"WARNING: Value of {value} for {key} is {side} of {edge}.  Using {edge}.")
                value = min(max(value, lo), hi)
            u[key] = value
        self.advances += 1
        if self.fail_at_step is not None and self.advances >= self.fail_at_step:
            t.fail_at_time_s = t.time_s
        try:
            y = t.advance(u)
        except SimulationFailedError as exc:
            return answer(500, f"Failed to advance simulation: {exc}.", None)
        if not y:
            return answer(200, "End of test case scenario time period reached.", {})
        return answer(200, ";".join(warnings) or f"Advanced simulation successfully to {t.time_s}s.", y)

    async def results(self, request: web.Request) -> web.Response:
        t = self._test(request)
        body = await request.json()
        names = list(body.get("point_names") or [])
        bad = [n for n in names if n not in t.results]
        if bad:
            return answer(400, f"Invalid point name {bad[0]} in parameter point_names.", None)
        times = np.asarray(t.results["time"])
        sel = (times >= float(body["start_time"])) & (times <= float(body["final_time"]))
        payload = {n: np.asarray(t.results[n])[sel].tolist() for n in [*names, "time"]}
        return answer(200, "Queried results data successfully.", payload)

    async def kpi(self, request: web.Request) -> web.Response:
        return answer(200, "Queried KPIs successfully.", self._test(request).kpis())
