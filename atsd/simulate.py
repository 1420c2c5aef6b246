"""``atsd simulate``: replay real prices and weather through planners, the supervisor and a house.

Receding horizon, as the daemon runs: at every slot the planner's current plan gives the requested
mode, the supervisor turns it into the effective mode (its overrides are counted), and the *plant*
(the thermal model, or a differently parameterised house with ``--plant``) advances one slot exactly.
The planner re-plans whenever an input changed: new day-ahead prices were published, a new weather
forecast was issued (only when forecasts have an error), the measured indoor temperature left the
plan's prediction by more than a tolerance, or the supervisor overrode the plan; ``replan="every"``
re-plans at every slot instead.

The planner sees only what it would know then: day-ahead prices of a CET market day are published at
the configured poll time (13:00 CET) of the day before; beyond them plans use a labelled *estimate*
(the mean daily profile of the last known days, :func:`estimate_prices`). Weather comes through a
forecast that is perfect by default or has an error growing with lead time.

Accounting is exact and closes: ``cost = sum(energy × price)`` per slot with the tariff. Savings are
compared after valuing the heat each run leaves in or takes out of the house between start and end
(so a run cannot save by ending colder) at the thermostat's own cost per kWh of heat.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from atsd.config import Config
from atsd.core import house
from atsd.core.comfort import ComfortBand, comfort_band
from atsd.core.forecast import GHI, PRICE, TEMP, Forecast
from atsd.core.modes import Mode
from atsd.core.plan import PlanProblem, degree_hours, end_goal_c
from atsd.core.thermal import J_PER_KWH, Building, Drive, ThermalModel
from atsd.core.timegrid import Grid, resample_linear, resample_step, to_epoch_s
from atsd.csvdata import Series

FloatArray = NDArray[np.float64]
MARKET_TZ = ZoneInfo("Europe/Berlin")  # day-ahead market days are CET/CEST days
PLANNERS = ("thermostat", "cheapest-hours", "greedy", "optimal")
ESTIMATE_DAYS = 3
WEATHER_ISSUE_H = 6


class Verdict(Protocol):
    """What :class:`atsd.core.supervisor.Verdict` offers the loop (read-only)."""

    @property
    def mode(self) -> Mode: ...

    @property
    def overridden(self) -> bool: ...


class SupervisorLike(Protocol):
    def decide(
        self,
        now: datetime,
        requested: Mode | None,
        indoor_c: float | None,
        indoor_age_s: float | None,
        reason: str = "",
    ) -> Verdict: ...


SupervisorFactory = Callable[[], SupervisorLike]


@dataclass(frozen=True)
class Plant:
    """The house that plays the real one: the model's building scaled by ``ua`` and ``c``."""

    ua_scale: float = 1.0
    c_scale: float = 1.0

    @classmethod
    def parse(cls, text: str | None) -> Plant:
        """``"ua=1.2,c=0.8"`` (factors on the configured house); None or "" is the model itself."""
        if not text:
            return cls()
        vals = {"ua": 1.0, "c": 1.0}
        for part in text.split(","):
            key, _, v = part.partition("=")
            key = key.strip().lower()
            if key not in vals or not v:
                raise ValueError(f"--plant: expected ua=FACTOR,c=FACTOR (got {text!r})")
            vals[key] = float(v)
            if not 0.2 <= vals[key] <= 5.0:
                raise ValueError(f"--plant: {key} factor must be within 0.2..5 (got {v})")
        return cls(vals["ua"], vals["c"])

    def model(self, base: ThermalModel) -> ThermalModel:
        b = base.building
        return dataclasses.replace(
            base,
            building=Building(
                b.ua_w_per_k * self.ua_scale,
                b.capacitance_j_per_k * self.c_scale,
                b.solar_aperture_m2,
                b.internal_gains_w,
            ),
        )

    @property
    def label(self) -> str:
        return (
            "model"
            if (self.ua_scale, self.c_scale) == (1.0, 1.0)
            else f"UA×{self.ua_scale:g}, C×{self.c_scale:g}"
        )


@dataclass(frozen=True)
class SimInputs:
    """Truth on an extended grid: the simulated slots first, then data the horizons may reach."""

    grid: Grid  # the simulated period
    ext: Grid  # same start, as far as both series reach (at most a horizon past the end)
    spot: FloatArray  # true spot EUR/MWh on ext (NaN: no data)
    temp_c: FloatArray  # true outdoor temperature on ext
    ghi: FloatArray | None
    published_s: NDArray[np.int64]  # epoch s when each ext slot's price becomes known
    label: str = ""


def publication_epoch_s(ext: Grid, poll_cet_h: float) -> NDArray[np.int64]:
    """When each slot's day-ahead price is known: ``poll_cet_h`` CET of the day before its market day."""
    out = np.empty(ext.n, dtype=np.int64)
    cache: dict[object, int] = {}
    for i, t in enumerate(ext.times()):
        day = t.astimezone(MARKET_TZ).date()
        if day not in cache:
            pub = datetime.combine(day - timedelta(days=1), datetime.min.time(), tzinfo=MARKET_TZ)
            cache[day] = to_epoch_s(pub + timedelta(hours=poll_cet_h))
        out[i] = cache[day]
    return out


def shift_years(series: Series, years: int) -> Series:
    """The same calendar dates ``years`` later (29 February dropped): pairs 2023 weather with 2026 prices."""
    if years == 0:
        return series
    keep: list[int] = []
    times: list[int] = []
    for i, e in enumerate(series.epoch_s):
        t = datetime.fromtimestamp(int(e), tz=UTC)
        try:
            times.append(to_epoch_s(t.replace(year=t.year + years)))
        except ValueError:
            continue
        keep.append(i)
    idx = np.array(keep, dtype=np.int64)
    return Series(
        np.array(times, dtype=np.int64),
        {k: v[idx] for k, v in series.values.items()},
        series.step_s,
        f"{series.name} (dates moved by {years:+d} years)",
    )


def sim_inputs(
    cfg: Config,
    prices: Series,
    weather: Series,
    start: datetime | None,
    end: datetime | None,
    label: str = "",
) -> SimInputs:
    """Prices and weather on the planner's grid over the common period (or ``start``..``end``)."""
    step_s = cfg.planner.slot_minutes * 60
    lo = max(prices.start, weather.start)
    hi = min(prices.end, weather.end)
    s = max(start, lo) if start else lo
    e = min(end, hi) if end else hi
    if e <= s:
        raise ValueError(
            f"prices ({prices.start:%Y-%m-%d}..{prices.end:%Y-%m-%d}) and weather "
            f"({weather.start:%Y-%m-%d}..{weather.end:%Y-%m-%d}) have no common period in the range"
        )
    grid = Grid.covering(s, e, step_s)
    ext = Grid.covering(grid.start, min(hi, e + timedelta(hours=cfg.planner.horizon_hours)), step_s)
    spot = resample_step(prices.epoch_s, prices.values["price_eur_per_mwh"], prices.step_s, ext)
    temp = resample_linear(weather.epoch_s, weather.values["temp_c"], ext)
    ghi = (
        resample_step(weather.epoch_s, weather.values["ghi_w_m2"], weather.step_s, ext)
        if "ghi_w_m2" in weather.values
        else None
    )
    bad = ~np.isfinite(temp[: grid.n])
    if bad.any():
        raise ValueError(
            f"weather has no temperature for {int(bad.sum())} slots of the period, first at "
            f"{ext.time(int(np.flatnonzero(bad)[0])):%Y-%m-%dT%H:%MZ}"
        )
    temp = house.fill_missing(temp)
    poll = cfg.sources.price_poll_start_cet
    pub = publication_epoch_s(ext, poll.hour + poll.minute / 60.0)
    return SimInputs(grid, ext, spot, temp, ghi, pub, label)


def estimate_prices(
    spot: FloatArray, known: NDArray[np.bool_], ext: Grid, days: int = ESTIMATE_DAYS
) -> FloatArray:
    """Fill unknown prices with the mean daily profile (by UTC time of day) of the last known days.

    A stand-in for the sources' labelled estimate: good enough that a plan's tail is not blind, and
    always marked as estimated in the plan.
    """
    out = spot.copy()
    per_day = 86400 // ext.step_s
    kn = np.flatnonzero(known & np.isfinite(spot))
    if len(kn) == 0:
        out[~known] = 0.0
        return out
    last = int(kn[-1]) + 1
    first = max(0, last - days * per_day)
    hist = spot[first:last]
    pos = (ext.epoch_s()[first:last] % 86400) // ext.step_s
    prof = np.full(per_day, np.nan)
    for p in range(per_day):
        v = hist[(pos == p) & np.isfinite(hist)]
        if len(v):
            prof[p] = v.mean()
    prof = np.where(np.isfinite(prof), prof, np.nanmean(hist))
    unk = np.flatnonzero(~known | ~np.isfinite(spot))
    out[unk] = prof[(ext.epoch_s()[unk] % 86400) // ext.step_s]
    return out


@dataclass
class Run:
    """One planner over the period: per-slot truth and the counters of the table."""

    planner: str
    modes: list[Mode]
    start_c: FloatArray
    end_c: FloatArray
    mean_c: FloatArray
    elec_kwh: FloatArray
    heat_kwh: FloatArray
    cost_eur: FloatArray
    overrides: int
    plan_ms: list[float]
    switches: int
    savings_pct: float = math.nan
    savings_shift_pct: float = math.nan
    adjusted_cost_eur: float = math.nan
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def total_cost_eur(self) -> float:
        return float(self.cost_eur.sum())

    @property
    def energy_kwh(self) -> float:
        return float(self.elec_kwh.sum())

    @property
    def mean_indoor_c(self) -> float:
        return float(self.mean_c.mean()) if len(self.mean_c) else math.nan


@dataclass(frozen=True)
class SimSettings:
    plant: Plant = Plant()
    weather_error_k: float = 0.0  # forecast error (1 σ) at 24 h lead
    seed: int = 1
    replan: str = "changes"  # or "every"
    tolerance_k: float = 0.05
    start_c: float | None = None  # indoor at the start (default: the comfort target)


def default_supervisor(cfg: Config) -> SupervisorFactory:
    """The daemon's supervisor with the config's rules; the simulated house has an indoor sensor."""
    from atsd.core.supervisor import Supervisor, SupervisorRules

    rules = dataclasses.replace(SupervisorRules.from_config(cfg), indoor_sensor_configured=True)
    modes = house.allowed_modes(cfg)
    return lambda: Supervisor(rules, cfg.device.tz, None, modes)


class Simulation:
    """Everything the runs share: truth, tariff, comfort band, the model and the plant."""

    def __init__(
        self,
        cfg: Config,
        inputs: SimInputs,
        settings: SimSettings = SimSettings(),
        supervisor: SupervisorFactory | None = None,
    ) -> None:
        self.cfg = cfg
        self.inp = inputs
        self.settings = settings
        self.tz = cfg.device.tz
        self.model = house.thermal_model(cfg)
        self.plant = settings.plant.model(self.model)
        ext = inputs.ext
        self.band = comfort_band(ext, cfg.comfort, self.tz)
        self.tariff = house.tariff(cfg)
        n = inputs.grid.n
        self.price = self.tariff.price_eur_per_kwh(inputs.grid, inputs.spot[:n])
        if not np.isfinite(self.price).all():
            bad = int(np.flatnonzero(~np.isfinite(self.price))[0])
            raise ValueError(f"no price for {inputs.grid.time(bad):%Y-%m-%dT%H:%MZ} inside the period")
        self.plant_drive = self._drive(
            self.plant, Grid(inputs.grid.start, inputs.grid.step_s, n), inputs.temp_c[:n], self.band, 0, n
        )
        self.horizon = max(1, cfg.planner.horizon_hours * 3600 // inputs.grid.step_s)
        self.modes = house.allowed_modes(cfg)
        self.supervisor = supervisor or default_supervisor(cfg)
        self.start_c = settings.start_c if settings.start_c is not None else cfg.comfort.target_c
        self._bound: Run | None = None
        self._rng = np.random.default_rng(settings.seed)
        self._wx_noise = self._rng.standard_normal(
            (ext.n // max(1, WEATHER_ISSUE_H * 3600 // ext.step_s) + 2, self.horizon)
        )

    def _drive(
        self,
        model: ThermalModel,
        grid: Grid,
        temp: FloatArray,
        band: ComfortBand,
        i0: int,
        i1: int,
        target_c: FloatArray | None = None,
    ) -> Drive:
        ghi = None if self.inp.ghi is None else self.inp.ghi[i0:i1]
        tgt = band.target_c[i0:i1] if target_c is None else target_c
        return model.drive(grid, temp, ghi, tgt, band.min_c[i0:i1], band.max_c[i0:i1])

    # -- what the planner knows ----------------------------------------------------------------------

    @property
    def per_issue(self) -> int:
        """Slots between two weather forecasts."""
        return max(1, WEATHER_ISSUE_H * 3600 // self.inp.ext.step_s)

    def issue(self, i: int) -> int:
        return i // self.per_issue if self.settings.weather_error_k > 0 else 0

    def weather_forecast(self, i0: int, i1: int) -> tuple[FloatArray, int]:
        """Outdoor temperature as forecast at slot ``i0`` for ``i0..i1`` and the forecast's issue number."""
        truth = self.inp.temp_c[i0:i1]
        sigma = self.settings.weather_error_k
        if sigma <= 0:
            return truth, 0
        issue = self.issue(i0)
        lead0 = i0 - issue * self.per_issue
        per_day = 86400 / self.inp.ext.step_s
        walk = np.cumsum(self._wx_noise[issue]) / math.sqrt(per_day)  # σ at 24 h lead = 1
        lead = np.arange(lead0, lead0 + (i1 - i0))
        err = sigma * walk[np.minimum(lead, self.horizon - 1)]
        return truth + err, issue

    def problem(
        self, i: int, start_c: float, mode: Mode, held: int, blocks_today: int, since_off: int
    ) -> tuple[PlanProblem, int, int]:
        """The planning problem at slot ``i``: what is known then; returns it, known prices, issue."""
        inp = self.inp
        now_s = to_epoch_s(inp.grid.time(i))
        i1 = min(inp.ext.n, i + self.horizon)
        n_known = int(np.searchsorted(inp.published_s, now_s, side="right"))
        h0 = max(0, i - ESTIMATE_DAYS * 86400 // inp.ext.step_s)  # the estimate looks back a few days
        known_h = inp.published_s[h0:i1] <= now_s
        spot = estimate_prices(inp.spot[h0:i1], known_h, inp.ext.slice(h0, i1))[i - h0 :]
        known = known_h[i - h0 :]
        temp, issue = self.weather_forecast(i, i1)
        g = inp.ext.slice(i, i1)
        series = {PRICE: spot, TEMP: temp}
        if inp.ghi is not None:
            series[GHI] = np.nan_to_num(inp.ghi[i:i1])
        fc = Forecast(g, series, {}, {PRICE: ~known})
        band = ComfortBand(self.band.min_c[i:i1], self.band.target_c[i:i1], self.band.max_c[i:i1])
        prob = house.problem(
            self.cfg,
            fc,
            start_c,
            model=self.model,
            comfort=band,
            current_mode=mode,
            current_mode_slots=held,
            modes=self.modes,
            receding=True,
        )
        prob = dataclasses.replace(
            prob, extra={**prob.extra, "off_blocks_today": blocks_today, "since_off_slots": since_off}
        )
        return prob, n_known, issue

    # -- one planner ------------------------------------------------------------------------------

    def run(self, planner: str) -> Run:
        from atsd.core.planner import get

        fn = get(planner)
        inp = self.inp
        n = inp.grid.n
        sup = self.supervisor()
        every = self.settings.replan == "every"
        tol = self.settings.tolerance_k
        t = self.start_c
        modes: list[Mode] = []
        start_c = np.empty(n)
        end_c = np.empty(n)
        mean_c = np.empty(n)
        elec = np.empty(n)
        heat = np.empty(n)
        plan_ms: list[float] = []
        overrides = 0
        plan: list[Mode] = []
        reasons: list[str] = []
        pred = np.empty(0)
        p0 = 0
        p_known = -1
        p_issue = -1
        cur, held = Mode.NORMAL, 1_000_000
        since_off = 1_000_000
        blocks: dict[object, int] = {}
        days = inp.grid.local_dates(self.tz)
        overridden = False
        for i in range(n):
            now = inp.grid.time(i)
            j = i - p0
            replan = every or not plan or j >= len(plan) or overridden or abs(t - pred[j]) > tol
            if not replan:
                now_s = to_epoch_s(now)
                n_known = int(np.searchsorted(inp.published_s, now_s, side="right"))
                replan = n_known != p_known or (
                    self.settings.weather_error_k > 0 and self.issue(i) != p_issue
                )
            if replan:
                prob, p_known, p_issue = self.problem(i, t, cur, held, blocks.get(days[i], 0), since_off)
                t0 = time.perf_counter()
                dec = fn(prob)
                plan_ms.append((time.perf_counter() - t0) * 1000.0)
                plan, reasons = dec.modes, dec.reasons
                traj = prob.model.simulate(prob.drive, t, plan)
                pred = np.concatenate([[t], traj.end_c])
                p0, j = i, 0
            verdict = sup.decide(now, plan[j], t, 0.0, reasons[j])
            mode = verdict.mode
            overridden = bool(verdict.overridden)
            overrides += overridden
            e, mc, qc, qa, kwh = self.plant.step1(self.plant_drive, i, t, mode.rank)
            start_c[i], end_c[i], mean_c[i], elec[i], heat[i] = t, e, mc, kwh, (qc + qa) / J_PER_KWH
            if mode is cur:
                held += 1
            else:
                if mode is Mode.OFF:
                    blocks[days[i]] = blocks.get(days[i], 0) + 1
                cur, held = mode, 1
            since_off = 0 if mode is Mode.OFF else since_off + 1
            modes.append(mode)
            t = e
        switches = sum(1 for a, b in itertools.pairwise(modes) if a is not b)
        return Run(
            planner,
            modes,
            start_c,
            end_c,
            mean_c,
            elec,
            heat,
            elec * self.price,
            overrides,
            plan_ms,
            switches,
        )

    def perfect_foresight(self) -> Run:
        """``optimal-pf``: the optimal planner run once over the whole period, every price and the true
        weather known, plant = what it plans on. The best the modes allow: the receding-horizon
        ``optimal`` can be compared with it to see what not knowing the future costs, and the bound
        with it to see what the modes themselves cost against continuous power."""
        from atsd.core.planner import optimal

        inp = self.inp
        n = inp.grid.n
        band = ComfortBand(self.band.min_c[:n], self.band.target_c[:n], self.band.max_c[:n])
        fc = Forecast(inp.grid, {PRICE: inp.spot[:n], TEMP: inp.temp_c[:n]}, {})
        prob = house.problem(self.cfg, fc, self.start_c, model=self.plant, comfort=band, modes=self.modes)
        t0 = time.perf_counter()
        dec = optimal.plan(prob)
        ms = (time.perf_counter() - t0) * 1000.0
        traj = self.plant.simulate(self.plant_drive, self.start_c, dec.modes)
        switches = sum(1 for a, b in itertools.pairwise(dec.modes) if a is not b)
        return Run("optimal-pf", dec.modes, traj.start_c, traj.end_c, traj.mean_c, traj.elec_kwh,
                   traj.heat_kwh, traj.elec_kwh * self.price, 0, [ms], switches)

    def thermostat_at(self, target_c: float) -> Run:
        """NORMAL all along with the target moved to ``target_c`` (what running colder alone saves)."""
        inp = self.inp
        n = inp.grid.n
        tgt = np.full(n, target_c)
        d = self._drive(self.plant, inp.grid, inp.temp_c[:n], self.band, 0, n, tgt)
        traj = self.plant.simulate(d, self.start_c, [Mode.NORMAL] * n)
        return Run(
            f"thermostat@{target_c:.2f}",
            [Mode.NORMAL] * n,
            traj.start_c,
            traj.end_c,
            traj.mean_c,
            traj.elec_kwh,
            traj.heat_kwh,
            traj.elec_kwh * self.price,
            0,
            [],
            0,
        )

    def bound(self) -> Run:
        """The perfect-foresight LP over the whole period, on the plant, with the true prices and weather."""
        from atsd.core.planner.bound import bound

        inp = self.inp
        n = inp.grid.n
        band = ComfortBand(self.band.min_c[:n], self.band.target_c[:n], self.band.max_c[:n])
        fc = Forecast(inp.grid, {PRICE: inp.spot[:n], TEMP: inp.temp_c[:n]}, {})
        prob = house.problem(self.cfg, fc, self.start_c, model=self.plant, comfort=band, modes=self.modes)
        b = bound(prob)
        temps = b.temps_c
        mean = 0.5 * (temps[:-1] + temps[1:])
        run = Run(
            "bound",
            [],
            temps[:-1],
            temps[1:],
            mean,
            b.elec_kwh,
            b.heat_kwh,
            b.elec_kwh * self.price,
            0,
            [b.solve_ms],
            0,
        )
        run.extra["end_goal_c"] = end_goal_c(prob)
        return run

    # -- all of them --------------------------------------------------------------------------------

    def heat_value_eur_per_kwh(self, thermostat: Run) -> float:
        return thermostat.total_cost_eur / max(float(thermostat.heat_kwh.sum()), 1e-9)

    def adjusted_cost(self, run: Run, heat_value: float) -> float:
        """Cost plus the value of the heat the run took out of the house (start minus end temperature)."""
        c_kwh = self.plant.building.capacitance_j_per_k / J_PER_KWH
        drained = float(run.start_c[0] - run.end_c[-1]) if len(run.end_c) else 0.0
        return run.total_cost_eur + heat_value * c_kwh * drained

    def compare(self, planners: Sequence[str], with_bound: bool = True) -> list[Run]:
        """Run the planners (and the bound) and fill in their savings."""
        return self.compare_runs(
            [self.perfect_foresight() if p == "optimal-pf" else self.run(p) for p in planners], with_bound
        )

    def compare_runs(self, runs: list[Run], with_bound: bool = True) -> list[Run]:
        """Savings of finished runs vs the thermostat (run here if absent), the bound appended last."""
        runs = [r for r in runs if r.planner != "bound"]
        ref = next((r for r in runs if r.planner == "thermostat"), None) or self.run("thermostat")
        if with_bound:
            if self._bound is None:
                self._bound = self.bound()
            runs.append(self._bound)
        value = self.heat_value_eur_per_kwh(ref)
        ref_cost = self.adjusted_cost(ref, value)
        for r in runs:
            r.adjusted_cost_eur = self.adjusted_cost(r, value)
            r.savings_pct = 100.0 * (ref_cost - r.adjusted_cost_eur) / ref_cost
            at_mean = self.thermostat_at(r.mean_indoor_c)
            base = self.adjusted_cost(at_mean, value)
            r.savings_shift_pct = 100.0 * (base - r.adjusted_cost_eur) / base
        return runs

    def comfort(self, run: Run) -> tuple[float, float]:
        """Degree-hours below comfort min and the largest shortfall (K) at slot boundaries."""
        n = self.inp.grid.n
        lo = self.band.min_c[:n]
        kh = float(degree_hours(run.start_c, run.end_c, lo, self.inp.grid.step_h, below=True).sum())
        short = max(
            0.0, float(np.max(lo - run.end_c, initial=0.0)), float(np.max(lo - run.start_c, initial=0.0))
        )
        return kh, short


def summary(sim: Simulation, runs: list[Run]) -> dict[str, object]:
    """The ``--json`` document: one entry per planner, then the bound."""
    out = []
    for r in runs:
        kh, short = sim.comfort(r)
        ms = np.array(r.plan_ms) if r.plan_ms else np.array([0.0])
        out.append(
            {
                "planner": r.planner,
                "cost_eur": round(r.total_cost_eur, 2),
                "energy_kwh": round(r.energy_kwh, 1),
                "savings_pct": round(r.savings_pct, 2),
                "savings_shift_pct": round(r.savings_shift_pct, 2),
                "mean_indoor_c": round(r.mean_indoor_c, 2),
                "comfort_violation_kh": round(kh, 3),
                "max_shortfall_c": round(short, 3),
                "switches": r.switches,
                "overrides": r.overrides,
                "plan_ms_median": round(float(np.median(ms)), 2),
                "plan_ms_p95": round(float(np.percentile(ms, 95)), 2),
            }
        )
    return {"default": sim.cfg.planner.planner, "planners": out}


def table(sim: Simulation, runs: list[Run]) -> str:
    """The human table: one row per planner, with the bound's share where it makes sense."""
    doc = summary(sim, runs)
    rows = doc["planners"]
    assert isinstance(rows, list)
    bound_sav = next((r["savings_pct"] for r in rows if r["planner"] == "bound"), None)
    g = sim.inp.grid
    head = (
        f"{g.start:%Y-%m-%d %H:%M}Z .. {g.end:%Y-%m-%d %H:%M}Z, {g.n} slots of {g.step_s // 60} min, "
        f"plant: {sim.settings.plant.label}, re-plan: {sim.settings.replan}"
    )
    lines = [head]
    if sim.inp.label:
        lines.append(sim.inp.label)
    cols = (
        "planner",
        "cost EUR",
        "kWh",
        "save %",
        "shift %",
        "of bound",
        "mean °C",
        "end °C",
        "viol Kh",
        "short K",
        "switch",
        "overr",
        "plans",
        "ms med",
        "ms p95",
    )
    lines.append(" ".join(f"{c:>9}" if i else f"{c:<15}" for i, c in enumerate(cols)))
    for r, run in zip(rows, runs, strict=True):
        share = (
            f"{100 * float(r['savings_pct']) / float(bound_sav):.0f} %"
            if bound_sav and float(bound_sav) > 0 and r["planner"] != "bound"
            else ""
        )
        vals = (
            r["cost_eur"],
            r["energy_kwh"],
            r["savings_pct"],
            r["savings_shift_pct"],
            share,
            r["mean_indoor_c"],
            round(float(run.end_c[-1]), 2),
            r["comfort_violation_kh"],
            r["max_shortfall_c"],
            r["switches"],
            r["overrides"],
            len(run.plan_ms),
            r["plan_ms_median"],
            r["plan_ms_p95"],
        )
        lines.append(f"{r['planner']:<15} " + " ".join(f"{v!s:>9}" for v in vals))
    lines.append(
        "save %: vs the thermostat at the comfort target, after valuing heat left in or taken out of "
        "the house at the end; shift %: vs a thermostat held at the run's mean temperature; "
        "of bound: share of the bound's savings"
    )
    return "\n".join(lines)


def svg_plot(sim: Simulation, runs: list[Run], width: int = 1200) -> str:
    """Price, modes and indoor temperature over time, as a plain SVG (no plotting library)."""
    g = sim.inp.grid
    n = g.n
    colors = ["#555", "#d62728", "#2ca02c", "#1f77b4", "#9467bd", "#ff7f0e"]
    mode_color = {Mode.OFF: "#4477aa", Mode.ECO: "#88ccee", Mode.NORMAL: "#dddddd", Mode.BOOST: "#cc6677"}
    left, right = 60, 20
    w = width - left - right

    def xs(i: NDArray[np.float64] | NDArray[np.int64]) -> FloatArray:
        return np.asarray(left + w * i / max(n, 1), dtype=np.float64)

    def poly(y: FloatArray, top: float, h: float, lo: float, hi: float, color: str) -> str:
        step = max(1, n // 3000)
        idx = np.arange(0, n, step)
        py = top + h * (1 - (y[idx] - lo) / max(hi - lo, 1e-9))
        pts = " ".join(f"{x:.1f},{v:.1f}" for x, v in zip(xs(idx), py, strict=True))
        return f'<polyline fill="none" stroke="{color}" stroke-width="1" points="{pts}"/>'

    planned = [r for r in runs if r.modes]
    h_price, h_mode, h_temp = 160, 14, 220
    y = 30
    parts = [
        f'<text x="{left}" y="20" font-size="13">atsd simulate: {g.start:%Y-%m-%d} .. {g.end:%Y-%m-%d}, '
        f"plant {sim.settings.plant.label}</text>"
    ]
    price = sim.price * 100
    plo, phi = float(np.min(price)), float(np.max(price))
    parts.append(f'<text x="5" y="{y + 12}" font-size="11">c/kWh</text>')
    parts.append(
        f'<text x="5" y="{y + 26}" font-size="10">{phi:.0f}</text><text x="5" y="{y + h_price}" '
        f'font-size="10">{plo:.0f}</text>'
    )
    parts.append(poly(price, y, h_price, plo, phi, "#333"))
    y += h_price + 10
    for r in planned:
        ranks = np.array([m.rank for m in r.modes])
        change = np.flatnonzero(np.diff(ranks, prepend=-1))
        bounds = np.append(change, n)
        for a, b in itertools.pairwise(bounds):
            m = r.modes[int(a)]
            if m is Mode.NORMAL:
                continue
            x0, x1 = xs(np.array([a, b], dtype=np.float64))
            parts.append(
                f'<rect x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 0.5):.1f}" height="{h_mode - 2}" '
                f'fill="{mode_color[m]}"/>'
            )
        parts.append(f'<text x="5" y="{y + 10}" font-size="9">{r.planner[:10]}</text>')
        y += h_mode
    y += 10
    tl = min(float(np.min(sim.band.min_c[:n])) - 0.5, min(float(r.end_c.min()) for r in runs))
    th = max(max(float(r.end_c.max()) for r in runs), float(np.max(sim.band.max_c[:n]))) + 0.2
    parts.append(
        f'<text x="5" y="{y + 12}" font-size="11">°C</text><text x="5" y="{y + 26}" font-size="10">'
        f'{th:.1f}</text><text x="5" y="{y + h_temp}" font-size="10">{tl:.1f}</text>'
    )
    parts.append(poly(sim.band.min_c[:n], y, h_temp, tl, th, "#000"))
    for k, r in enumerate(runs):
        c = colors[k % len(colors)]
        parts.append(poly(r.end_c, y, h_temp, tl, th, c))
        parts.append(
            f'<text x="{left + 10 + 110 * k}" y="{y + h_temp + 16}" font-size="11" fill="{c}">'
            f"{r.planner}</text>"
        )
    y += h_temp + 30
    legend = " ".join(
        f'<rect x="{left + 90 * i}" y="{y - 10}" width="10" height="10" fill="{c}"/>'
        f'<text x="{left + 14 + 90 * i}" y="{y}" font-size="10">{m.value}</text>'
        for i, (m, c) in enumerate(mode_color.items())
        if m is not Mode.NORMAL
    )
    parts.append(legend)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y + 10}" '
        f'font-family="sans-serif">' + "".join(parts) + "</svg>"
    )
