"""``atsd bench boptest``: atsd in the loop of a BOPTEST test case, against the baseline controller.

One run with atsd in the loop (forecast, plan, supervise, act, record: every step the same code path
as the daemon on a Pi) and one run of the baseline controller (a test in which nothing is
overwritten); BOPTEST's KPIs of both side by side. Before the atsd run takes control, the house
model is learned the way a real house's is: :func:`calibrate_from_warmup` fits UA, C, aperture and
gains to the warm-up BOPTEST simulates under its baseline controller (zone and outdoor temperature,
electric power, mode NORMAL), with :func:`atsd.core.calibrate.fit`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from atsd.boptest.cases import KELVIN, CaseTable, case
from atsd.boptest.client import BoptestClient
from atsd.boptest.plant import Plant, PlantActuator, PlantForecast, PlantSensor, ScenarioEnded, SimClock, sim_time
from atsd.config import (
    ActuatorConfig,
    BuildingConfig,
    ComfortConfig,
    Config,
    DeviceConfig,
    HeatPumpConfig,
    PlannerConfig,
    SensorConfig,
    TariffConfig,
    VatConfig,
)
from atsd.core import house
from atsd.core.calibrate import CalibrationRefused, History, Limits, fit
from atsd.core.modes import Mode
from atsd.core.planner import get
from atsd.core.supervisor import Supervisor, SupervisorRules

log = logging.getLogger(__name__)

KPI_NAMES = ("cost_tot", "tdis_tot", "ener_tot", "emis_tot")
WARMUP_S = 7 * 86400  # BOPTEST's warm-up before every time period (testcase.py set_scenario)


@dataclass(frozen=True)
class BenchOptions:
    url: str
    testcase: str = "bestest_hydronic_heat_pump"
    scenario: str = "peak_heat_day"
    price: str = "highly_dynamic"
    step_s: int = 900
    horizon_h: int = 24
    api: str = "auto"
    planner: str | None = None  # default: [planner] planner of the bench config
    timeout_s: float = 300.0
    state_dir: Path | None = None  # history of the atsd run; default a temporary directory


@dataclass
class RunResult:
    kpis: dict[str, float | None]
    steps: int = 0
    plan_ms: list[float] = field(default_factory=list)
    step_ms: list[float] = field(default_factory=list)
    modes: dict[str, int] = field(default_factory=dict)
    overridden: int = 0

    def as_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {k: self.kpis.get(k) for k in KPI_NAMES}
        doc.update({k: v for k, v in self.kpis.items() if k not in doc})
        doc["steps"] = self.steps
        if self.plan_ms:
            doc["plan_ms_mean"] = round(statistics.fmean(self.plan_ms), 2)
            doc["plan_ms_max"] = round(max(self.plan_ms), 2)
            doc["step_ms_mean"] = round(statistics.fmean(self.step_ms), 2)
            doc["step_ms_max"] = round(max(self.step_ms), 2)
            doc["modes"] = dict(self.modes)
            doc["supervisor_overrides"] = self.overridden
        return doc


def bench_config(tc: CaseTable, step_s: int, planner: str | None = None) -> Config:
    """atsd's configuration for a BOPTEST house: the case's heat pump, prices passed through as paid.

    BOPTEST prices are what is paid per kWh, so the tariff adds nothing (no margin, fee, tax or VAT);
    simulation time is UTC; the comfort band comes from the forecast at every step.
    """
    if step_s not in (900, 3600):
        raise ValueError(f"--step must be 900 or 3600 s (atsd plans on 15- or 60-minute slots; got {step_s})")
    # The baseline holds LowerSetp + 0.2 K when occupied; a planning margin above that would make atsd
    # heat more than the baseline just to stay clear of the bound.
    pl = PlannerConfig(slot_minutes=step_s // 60, comfort_margin_k=0.1)  # type: ignore[arg-type]
    if planner:
        pl = dataclasses.replace(pl, planner=planner)  # type: ignore[arg-type]
    return Config(
        device=DeviceConfig(device_id=f"boptest-{tc.name}".replace("_", "-"), timezone="UTC"),
        building=BuildingConfig(floor_area_m2=tc.area_m2, volume_m3=tc.area_m2 * 2.7, insulation_level="medium"),
        heat_pump=HeatPumpConfig(**tc.heat_pump),  # type: ignore[arg-type]
        comfort=ComfortConfig(min_c=21.0, target_c=21.2, max_c=24.0),
        tariff=TariffConfig(margin_c_per_kwh=0.0, transfer_c_per_kwh=0.0, electricity_tax_c_per_kwh=0.0,
                            vat=(VatConfig(date(2000, 1, 1), 0.0),)),
        planner=pl,
        sensors=(SensorConfig(name="zone", kind="simulated", role="indoor"),),
        actuator=ActuatorConfig(kind="simulated"),
    )


# -- calibration from the warm-up --------------------------------------------------------------


def _slot_means(t: np.ndarray, v: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Mean of the samples within each [edge_k, edge_k+1) (NaN where none)."""
    idx = np.searchsorted(edges, t, side="right") - 1
    ok = (idx >= 0) & (idx < len(edges) - 1) & np.isfinite(v)
    s = np.bincount(idx[ok], weights=v[ok], minlength=len(edges) - 1)
    c = np.bincount(idx[ok], minlength=len(edges) - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(c > 0, s / np.maximum(c, 1), np.nan)


def warmup_history(tc: CaseTable, data: dict[str, list[float]], start_s: float, end_s: float, step_s: int,
                   cfg: Config) -> History:
    """The calibration history from ``/results`` samples: indoor at slot starts, the rest slot means.

    Heat is the electric power times atsd's COP model of the configured heat pump (a house without a
    heat meter), and every slot is NORMAL: the baseline controller ran.
    """
    from atsd.calibration import heat_from_electric

    t_all = np.asarray(data["time"], dtype=np.float64)
    # BOPTEST's initialisation can store several samples at the same time; keep the last of each.
    t, rev = np.unique(t_all[::-1], return_index=True)
    keep = len(t_all) - 1 - rev
    data = {k: list(np.asarray(v, dtype=np.float64)[keep]) for k, v in data.items()}
    first = float(np.ceil(max(start_s, t[0]) / step_s) * step_s)
    n = int((end_s - first) // step_s)
    if n <= 0:
        raise CalibrationRefused("the warm-up left no results to fit")
    edges = first + step_s * np.arange(n + 1, dtype=np.float64)
    zone = np.asarray(data[tc.zone_temp]) - KELVIN
    indoor = np.interp(edges[:-1], t, zone, left=np.nan, right=np.nan)
    outdoor = _slot_means(t, np.asarray(data[tc.outdoor_temp]) - KELVIN, edges)
    elec = _slot_means(t, np.sum([np.asarray(data[p]) for p in tc.power], axis=0), edges)
    ghi = _slot_means(t, np.asarray(data[tc.ghi]), edges) if tc.ghi in data else None
    model = house.thermal_model(cfg)
    heat = heat_from_electric(model.heat_pump, model.design_heat_w, outdoor, indoor, elec)
    return History(step_s, indoor, outdoor, ghi, heat, np.full(n, Mode.NORMAL.rank))


async def calibrate_from_warmup(client: BoptestClient, tc: CaseTable, cfg: Config, start_s: float,
                                step_s: int) -> tuple[dict[str, float], dict[str, Any]]:
    """Fit the house to the warm-up; returns ``(overrides, report)`` (no overrides when refused)."""
    t0 = max(0.0, start_s - WARMUP_S)
    points = [tc.zone_temp, tc.outdoor_temp, tc.ghi, *tc.power]
    data = await client.results(points, t0, start_s)
    try:
        h = warmup_history(tc, data, t0, start_s, step_s, cfg)
        cal = fit(h, Limits(min_days=2.0))
    except CalibrationRefused as exc:
        return {}, {"refused": True, "reason": exc.reason}
    doc = cal.as_json()
    doc["overrides"] = cal.overrides()
    return cal.overrides(), doc


# -- the two runs --------------------------------------------------------------------------------


async def _start(client: BoptestClient, opts: BenchOptions) -> Plant:
    tc = case(opts.testcase)
    await client.select(tc.name)
    await client.set_step(opts.step_s)
    payload = await client.scenario(electricity_price=opts.price, time_period=opts.scenario)
    y = payload.get("time_period")
    if not isinstance(y, dict) or "time" not in y:
        raise ValueError(f"BOPTEST set the scenario but returned no initial state: {payload!r}")
    y = {k: float(v) for k, v in y.items() if isinstance(v, int | float)}
    return Plant(client, tc, opts.step_s, y["time"], y)


async def run_atsd(opts: BenchOptions, cfg: Config) -> tuple[RunResult, dict[str, Any]]:
    """The scenario with atsd in the loop; returns its result and the calibration report."""
    from atsd.planning import house_plan
    from atsd.store import Store

    state_dir = opts.state_dir or Path(tempfile.mkdtemp(prefix="atsd-boptest-"))
    async with BoptestClient(opts.url, api=opts.api, timeout_s=opts.timeout_s) as client:
        plant = await _start(client, opts)
        tc = plant.case
        overrides, calib = await calibrate_from_warmup(client, tc, cfg, plant.time_s, opts.step_s)
        model = house.thermal_model(cfg, overrides or None)
        clock = SimClock(plant)
        zone = PlantSensor(plant, "zone", "indoor", (tc.zone_temp,))
        outdoor = PlantSensor(plant, "outdoor", "outdoor", (tc.outdoor_temp,))
        power = PlantSensor(plant, "power", "power", tc.power)
        source = PlantForecast(plant, opts.price)
        rules = dataclasses.replace(SupervisorRules.from_config(cfg), indoor_sensor_configured=True)
        planner = get(opts.planner or cfg.planner.planner)
        horizon_s = opts.horizon_h * 3600
        result = RunResult({})
        mode, held = Mode.NORMAL, 1_000_000
        async with PlantActuator(plant) as actuator:
            supervisor = Supervisor(rules, cfg.device.tz, None, actuator.supported)
            with Store.open(state_dir) as store:
                while True:
                    t0 = time.perf_counter()
                    now = clock.now()
                    forecast, band = await source.fetch(horizon_s, opts.step_s)
                    indoor = await zone.read()
                    prob = house.problem(cfg, forecast, indoor.value, model=model, comfort=band, current_mode=mode,
                                         current_mode_slots=held, modes=actuator.supported, receding=True)
                    t1 = time.perf_counter()
                    decision = await asyncio.to_thread(planner, prob)  # as in the daemon: off the loop
                    result.plan_ms.append((time.perf_counter() - t1) * 1000.0)
                    verdict = supervisor.decide(now, decision.modes[0], indoor.value, indoor.age_s(now),
                                                decision.reasons[0], comfort_min_c=float(band.min_c[0]))
                    await actuator.apply(verdict.mode)
                    held = held + 1 if verdict.mode is mode else 1
                    mode = verdict.mode
                    store.add_readings(now, {"indoor_c": indoor.value, "outdoor_c": (await outdoor.read()).value,
                                             "elec_w": (await power.read()).value})
                    store.add_decision(now, verdict.mode.value, decision.modes[0].value, verdict.reason,
                                       overridden=verdict.overridden, rule=verdict.rule)
                    store.add_plan(house_plan(cfg, prob, decision, now))
                    result.step_ms.append((time.perf_counter() - t0) * 1000.0)
                    result.modes[mode.value] = result.modes.get(mode.value, 0) + 1
                    result.overridden += int(verdict.overridden)
                    try:
                        await clock.sleep(opts.step_s)
                    except ScenarioEnded:
                        break
                store.flush()
        result.steps = plant.steps
        result.kpis = await client.kpi()
    calib["state_dir"] = str(state_dir)
    return result, calib


async def run_baseline(opts: BenchOptions) -> RunResult:
    """The same scenario with nothing overwritten: the test case's own baseline controller."""
    async with BoptestClient(opts.url, api=opts.api, timeout_s=opts.timeout_s) as client:
        plant = await _start(client, opts)
        while True:
            try:
                await plant.advance()
            except ScenarioEnded:
                break
        return RunResult(await client.kpi(), steps=plant.steps)


async def run(opts: BenchOptions) -> dict[str, Any]:
    """Both runs; the document ``atsd bench boptest --json`` prints."""
    tc = case(opts.testcase)
    cfg = bench_config(tc, opts.step_s, opts.planner)
    atsd_run, calib = await run_atsd(opts, cfg)
    base = await run_baseline(opts)
    return {"atsd": atsd_run.as_json(), "baseline": base.as_json(),
            "scenario": {"url": opts.url, "testcase": tc.name, "time_period": opts.scenario,
                         "electricity_price": opts.price, "step_s": opts.step_s, "horizon_h": opts.horizon_h,
                         "planner": opts.planner or cfg.planner.planner},
            "calibration": calib}


def table(doc: dict[str, Any]) -> str:
    """The side-by-side text of ``atsd bench boptest``."""
    a, b, s = doc["atsd"], doc["baseline"], doc["scenario"]
    lines = [f"BOPTEST {s['testcase']}, {s['time_period']}, {s['electricity_price']} price, "
             f"step {s['step_s']} s, planner {s['planner']}", "",
             f"{'KPI':<10}{'atsd':>12}{'baseline':>12}{'change':>10}"]
    for k in KPI_NAMES:
        va, vb = a.get(k), b.get(k)
        ch = f"{(va - vb) / vb * 100:+.1f} %" if isinstance(va, float) and isinstance(vb, float) and vb else ""
        fa = f"{va:.4f}" if isinstance(va, float) else "-"
        fb = f"{vb:.4f}" if isinstance(vb, float) else "-"
        lines.append(f"{k:<10}{fa:>12}{fb:>12}{ch:>10}")
    lines.append("")
    if "plan_ms_mean" in a:
        lines.append(f"atsd steps {a['steps']}: plan {a['plan_ms_mean']:.1f} ms mean ({a['plan_ms_max']:.1f} max), "
                     f"whole step {a['step_ms_mean']:.1f} ms mean ({a['step_ms_max']:.1f} max); modes {a['modes']}")
    c = doc.get("calibration", {})
    if c.get("refused"):
        lines.append(f"calibration refused: {c['reason']} (planned with the configured guess)")
    elif c:
        lines.append(f"calibration from the warm-up: UA {c['ua_w_per_k']} W/K, C {c['capacitance_kwh_per_k']} kWh/K, "
                     f"tau {c['tau_h']} h, gains {c['internal_gains_w']} W; multi-step RMSE {c['rmse_c']} K "
                     f"over {c['days']} days")
    return "\n".join(lines)


__all__ = ["KPI_NAMES", "BenchOptions", "bench_config", "calibrate_from_warmup", "run", "run_atsd", "run_baseline",
           "sim_time", "table"]
