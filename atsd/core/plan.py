"""Planning problems and their results: the Plan, its accounting, and the comfort-risk report.

A :class:`PlanProblem` holds everything a planner may know (grid, thermal drive, prices, comfort
band, allowed modes, switching rules, the present state). Every planner returns a mode per slot and a
reason per slot; :func:`make_plan` simulates that schedule exactly and does the accounting the same
way for all planners, so their costs are comparable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from atsd.core.comfort import ComfortBand
from atsd.core.modes import Mode
from atsd.core.thermal import J_PER_KWH, Drive, ThermalModel, Trajectory
from atsd.core.timegrid import Grid, iso_z

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class PlanRules:
    """Switching rules a plan respects (the supervisor enforces the same at run time)."""

    min_dwell_slots: int = 1
    max_off_slots: int = 8
    min_off_gap_slots: int = 4
    max_off_blocks_per_day: int = 3
    comfort_margin_k: float = 0.3


@dataclass
class RuleTracker:
    """The switching-rule state a forward pass carries (what the supervisor will enforce at run time):
    the current mode and how long it is held, the OFF run, the slots since the last OFF, the OFF
    blocks started on each local day."""

    rules: PlanRules
    cur: Mode
    held: int
    off_run: int
    since_off: int
    blocks: dict[date, int]

    @classmethod
    def start(cls, problem: PlanProblem, first_day: date) -> RuleTracker:
        cur, held = problem.current_mode, problem.current_mode_slots
        since = 0 if cur is Mode.OFF else int(problem.extra.get("since_off_slots", held))  # type: ignore[call-overload]
        today = int(problem.extra.get("off_blocks_today", int(cur is Mode.OFF)))  # type: ignore[call-overload]
        return cls(problem.rules, cur, held, held if cur is Mode.OFF else 0, since, {first_day: today})

    def off_allowed(self, day: date) -> bool:
        """OFF may continue or start: within the block length, after the gap, under the day's count."""
        if self.off_run >= self.rules.max_off_slots:
            return False
        if self.cur is Mode.OFF:
            return True
        return (self.since_off >= self.rules.min_off_gap_slots
                and self.blocks.get(day, 0) < self.rules.max_off_blocks_per_day)

    def dwell_holds(self, want: Mode) -> bool:
        """The minimum dwell keeps the current mode (moving to NORMAL is always allowed)."""
        return (want is not self.cur and self.cur is not Mode.NORMAL and want is not Mode.NORMAL
                and self.held < self.rules.min_dwell_slots)

    def commit(self, mode: Mode, day: date) -> None:
        if mode is self.cur:
            self.held += 1
        else:
            if mode is Mode.OFF:
                self.blocks[day] = self.blocks.get(day, 0) + 1
            self.cur, self.held = mode, 1
        self.off_run = self.off_run + 1 if mode is Mode.OFF else 0
        self.since_off = 0 if mode is Mode.OFF else self.since_off + 1


@dataclass(frozen=True)
class PlanProblem:
    grid: Grid
    model: ThermalModel
    drive: Drive
    spot_eur_per_mwh: FloatArray
    price_eur_per_kwh: FloatArray
    comfort: ComfortBand
    start_c: float
    tz: ZoneInfo
    modes: tuple[Mode, ...] = (Mode.OFF, Mode.ECO, Mode.NORMAL, Mode.BOOST)
    rules: PlanRules = PlanRules()
    current_mode: Mode = Mode.NORMAL
    current_mode_slots: int = 1_000_000  # how long the current mode has already been held
    price_estimated: NDArray[np.bool_] | None = None
    co2_g_per_kwh: FloatArray | None = None
    co2_weight_eur_per_t: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)
    # Per-slot (min, max) mode rank, e.g. a demand-response window: shed caps at ECO/OFF, boost
    # forces BOOST. Planners keep within them unless comfort min would break (the floor wins).
    mode_bounds: tuple[NDArray[np.int_], NDArray[np.int_]] | None = None
    # How the plan's end is judged. "start": end no colder than the start (a self-contained plan, the
    # rule the bound shares). "value": the plan will be replaced long before its end (the daemon,
    # `atsd simulate`), so heat left in the house at the end is credited at what it would cost to
    # buy later (see end_value_eur_per_k) instead of being required: a hard rule there ratchets, since
    # each re-plan must end as warm as the house happens to be now, and stored heat is never used.
    end_rule: Literal["start", "value"] = "start"

    @property
    def n(self) -> int:
        return self.grid.n

    @cached_property
    def _end_value(self) -> float | None:
        """See :func:`end_value_eur_per_k`."""
        if self.end_rule != "value" or self.n == 0:
            return None
        model, d = self.model, self.drive
        idx = np.arange(max(0, self.n - max(1, round(86400 / self.grid.step_s))), self.n)
        res = model.step(d, idx, d.target_c[idx], Mode.NORMAL.rank)
        price = np.asarray(self.objective_price(), dtype=np.float64)[idx]
        known = np.isfinite(price)
        price = np.where(known, price, float(np.median(price[known])) if known.any() else 0.0)
        heat = float(res.heat_kwh.sum())
        if heat <= 1e-9:
            return 0.0
        c_kwh = model.building.capacitance_j_per_k / J_PER_KWH
        return max(0.0, float(np.sum(price * res.elec_kwh)) / heat) * c_kwh

    def objective_price(self) -> FloatArray:
        """EUR per kWh the planner minimises: paid price plus the optional carbon weight."""
        p = np.asarray(self.price_eur_per_kwh, dtype=np.float64)
        if self.co2_weight_eur_per_t > 0 and self.co2_g_per_kwh is not None:
            co2 = np.nan_to_num(np.asarray(self.co2_g_per_kwh, dtype=np.float64), nan=0.0)
            p = p + co2 * 1e-6 * self.co2_weight_eur_per_t
        return p

    def bounded(self, i: int) -> tuple[int, int]:
        """The (min, max) mode rank allowed in slot ``i``."""
        if self.mode_bounds is None:
            return Mode.OFF.rank, Mode.BOOST.rank
        return int(self.mode_bounds[0][i]), int(self.mode_bounds[1][i])

    def floor_c(self) -> FloatArray:
        """Planning floor: comfort min plus the margin that keeps the supervisor out of the way."""
        return np.asarray(self.comfort.min_c + self.rules.comfort_margin_k, dtype=np.float64)


@dataclass(frozen=True)
class Decision:
    """What a planner returns: a mode and a human reason per slot."""

    modes: list[Mode]
    reasons: list[str]
    planner: str
    note: str = ""


@dataclass(frozen=True)
class Slot:
    start: datetime
    mode: Mode
    start_indoor_c: float
    expected_indoor_c: float  # at the end of the slot
    outdoor_c: float
    price_eur_per_kwh: float
    spot_eur_per_mwh: float
    energy_kwh: float
    aux_kwh: float
    cost_eur: float
    reason: str
    price_estimated: bool = False


@dataclass(frozen=True)
class ComfortReport:
    comfort_score: float
    min_temp_c: float
    max_temp_c: float
    slots_below_min: int
    degree_hours_below_min: float
    degree_hours_above_max: float
    feasible: bool
    warnings: list[str]
    recommendation: str

    def as_json(self) -> dict[str, object]:
        return {"comfort_score": round(self.comfort_score, 1), "min_temp_c": round(self.min_temp_c, 2),
                "max_temp_c": round(self.max_temp_c, 2), "slots_below_min": self.slots_below_min,
                "degree_hours_below_min": round(self.degree_hours_below_min, 3),
                "degree_hours_above_max": round(self.degree_hours_above_max, 3),
                "feasible": self.feasible, "warnings": self.warnings,
                "recommendation": self.recommendation}


@dataclass(frozen=True)
class Plan:
    device_id: str
    generated_at: datetime
    planner: str
    grid: Grid
    slots: list[Slot]
    estimated_cost: float
    baseline_cost: float
    total_energy_kwh: float
    baseline_energy_kwh: float
    aux_kwh: float
    start_c: float
    end_c: float
    baseline_end_c: float
    stored_heat_adjustment_eur: float
    comfort: ComfortReport
    min_c: float
    max_c: float
    note: str = ""
    co2_kg: float | None = None  # with a CO2 series (Fingrid's estimate): emissions of the plan
    baseline_co2_kg: float | None = None
    # Highest hourly mean power: what a power fee on the month's peak hour would bill. Pre-heating at
    # full power can raise it; it is reported, not optimised.
    peak_hourly_kw: float = 0.0
    baseline_peak_hourly_kw: float = 0.0

    @property
    def raw_savings(self) -> float:
        return self.baseline_cost - self.estimated_cost

    @property
    def estimated_savings(self) -> float:
        """Savings after valuing any difference in heat left in the house at the end."""
        return self.raw_savings - self.stored_heat_adjustment_eur

    @property
    def modes(self) -> list[Mode]:
        return [s.mode for s in self.slots]

    def mode_at(self, t: datetime) -> Mode | None:
        i = self.grid.index_of(t)
        return self.slots[i].mode if 0 <= i < len(self.slots) else None

    def as_json(self) -> dict[str, object]:
        """The plan document shared by ``atsd plan --json`` and ``GET /api/plan``."""

        def r(x: float, nd: int) -> float | None:
            return round(x, nd) if math.isfinite(x) else None

        return {
            "device_id": self.device_id,
            "generated_at": iso_z(self.generated_at),
            "planner": self.planner,
            "slot_minutes": self.grid.step_s // 60,
            "schedule": [
                {"start": iso_z(s.start), "mode": s.mode.value,
                 "expected_indoor_temp": r(s.expected_indoor_c, 2), "start_indoor_temp": r(s.start_indoor_c, 2),
                 "outdoor_temp": r(s.outdoor_c, 1), "electricity_price": r(s.price_eur_per_kwh, 4),
                 "spot_eur_per_mwh": r(s.spot_eur_per_mwh, 2), "energy_kwh": r(s.energy_kwh, 3),
                 "aux_kwh": r(s.aux_kwh, 3), "cost_eur": r(s.cost_eur, 4), "reason": s.reason,
                 "price_estimated": s.price_estimated}
                for s in self.slots
            ],
            "estimated_cost": round(self.estimated_cost, 2),
            "baseline_cost": round(self.baseline_cost, 2),
            "estimated_savings": round(self.estimated_savings, 2),
            "raw_savings": round(self.raw_savings, 2),
            "stored_heat_adjustment_eur": round(self.stored_heat_adjustment_eur, 2),
            "total_energy_kwh": round(self.total_energy_kwh, 2),
            "baseline_energy_kwh": round(self.baseline_energy_kwh, 2),
            "aux_kwh": round(self.aux_kwh, 2),
            "peak_hourly_kw": round(self.peak_hourly_kw, 2),
            "baseline_peak_hourly_kw": round(self.baseline_peak_hourly_kw, 2),
            "co2_kg": None if self.co2_kg is None else round(self.co2_kg, 2),
            "baseline_co2_kg": None if self.baseline_co2_kg is None else round(self.baseline_co2_kg, 2),
            "start_temp_c": round(self.start_c, 2),
            "end_temp_c": round(self.end_c, 2),
            "comfort": {"min_c": self.min_c, "max_c": self.max_c, "feasible": self.comfort.feasible,
                        "note": self.note or self.comfort.recommendation,
                        **self.comfort.as_json()},
        }


def comfort_score(dh_below: float, dh_above: float) -> float:
    """100 at perfect comfort, falling with degree-hours outside the band.

    ``score = 100 × exp(−(Kh below min + 0.25 × Kh above max) / 2)``: two degree-hours below the
    minimum (one hour 2 K too cold) cost 63 % of the score; overheating weighs a quarter as much.
    """
    return 100.0 * math.exp(-(dh_below + 0.25 * dh_above) / 2.0)


def degree_hours(start_c: FloatArray, end_c: FloatArray, bound_c: FloatArray, step_h: float,
                 below: bool) -> FloatArray:
    """Per-slot degree-hours outside ``bound_c`` (trapezoid of the start and end excess)."""
    if below:
        a = np.maximum(0.0, bound_c - start_c)
        b = np.maximum(0.0, bound_c - end_c)
    else:
        a = np.maximum(0.0, start_c - bound_c)
        b = np.maximum(0.0, end_c - bound_c)
    return np.asarray(0.5 * (a + b) * step_h, dtype=np.float64)


def comfort_report(problem: PlanProblem, traj: Trajectory, modes: list[Mode],
                   baseline: Trajectory | None = None) -> ComfortReport:
    comfort = problem.comfort
    step_h = problem.grid.step_h
    dh_b = degree_hours(traj.start_c, traj.end_c, comfort.min_c, step_h, below=True)
    dh_a = degree_hours(traj.start_c, traj.end_c, comfort.max_c, step_h, below=False)
    below = int(np.count_nonzero(traj.end_c < comfort.min_c - 1e-6))
    dhb = float(dh_b.sum())
    dha = float(dh_a.sum())
    feasible = nominal_feasible(problem, baseline)
    warnings: list[str] = []
    lo = float(np.min(traj.end_c)) if problem.n else problem.start_c
    hi = float(np.max(traj.end_c)) if problem.n else problem.start_c
    if dhb > 0.01:
        first = int(np.flatnonzero(dh_b > 0)[0])
        warnings.append(f"below the comfort minimum for {below} slots ({dhb:.2f} K·h), first at "
                        f"{problem.grid.time(first).astimezone(problem.tz):%a %H:%M}; lowest {lo:.1f} °C")
    if dha > 0.01:
        warnings.append(f"above the comfort maximum for {dha:.2f} K·h; highest {hi:.1f} °C")
    if np.any(traj.aux_kwh > 0.01):
        warnings.append(f"the auxiliary heater runs at COP 1 for {traj.aux_kwh.sum():.1f} kWh of heat")
    off_run = longest_run(modes, Mode.OFF)
    if off_run * step_h > problem.rules.max_off_slots * step_h + 1e-9:
        warnings.append(f"an OFF block of {off_run * step_h:.2f} h exceeds the {problem.rules.max_off_slots * step_h:.2f} h "
                        "the supervisor allows; it will be cut short")
    if not feasible:
        rec = ("the heat pump cannot hold the comfort minimum in this weather even in NORMAL; "
               "expect the house to run cold, and check the auxiliary heater")
    elif dhb > 0.01:
        rec = "heat earlier or avoid OFF/ECO before the cold slots; this schedule lets the house get too cold"
    elif dha > 0.01:
        rec = "less BOOST: the house overheats"
    else:
        rec = "the schedule keeps the comfort band"
    return ComfortReport(comfort_score(dhb, dha), min(lo, problem.start_c), max(hi, problem.start_c), below,
                         dhb, dha, feasible, warnings, rec)


def longest_run(modes: list[Mode], mode: Mode) -> int:
    best = cur = 0
    for m in modes:
        cur = cur + 1 if m is mode else 0
        best = max(best, cur)
    return best


def nominal_feasible(problem: PlanProblem, baseline: Trajectory | None = None) -> bool:
    """Comfort is reachable when holding NORMAL all along keeps the house at or above the minimum."""
    traj = baseline if baseline is not None else baseline_trajectory(problem)
    return bool(np.all(traj.end_c >= problem.comfort.min_c - 1e-6))


def baseline_trajectory(problem: PlanProblem) -> Trajectory:
    return problem.model.simulate(problem.drive, problem.start_c, [Mode.NORMAL] * problem.n)


def stored_heat_value_eur(problem: PlanProblem, end_c: float, reference_end_c: float) -> float:
    """Money value of heat the plan leaves missing (positive) or extra (negative) at the end.

    Heat ``C × ΔT`` is valued at what NORMAL would pay to make it up over the horizon: the mean
    price divided by the mean COP of the horizon. This is the end rule for every planner: a plan
    cannot save money by draining the house at the horizon's end.
    """
    if problem.n == 0:
        return 0.0
    c_kwh = problem.model.building.capacitance_j_per_k / J_PER_KWH
    d = problem.drive
    cop = problem.model.heat_pump.cop(d.source_c, d.target_c + 15.0)
    price = np.nanmean(problem.price_eur_per_kwh)
    return float(c_kwh * (reference_end_c - end_c) * price / float(np.mean(cop)))


def make_plan(problem: PlanProblem, decision: Decision, device_id: str, generated_at: datetime,
              baseline: Trajectory | None = None) -> Plan:
    """Simulate a decided schedule exactly and account for cost, savings, comfort and end state."""
    modes = decision.modes
    traj = problem.model.simulate(problem.drive, problem.start_c, modes)
    base = baseline if baseline is not None else baseline_trajectory(problem)
    price = problem.price_eur_per_kwh
    cost = traj.elec_kwh * price
    est = problem.price_estimated if problem.price_estimated is not None else np.zeros(problem.n, dtype=bool)
    slots = [
        Slot(problem.grid.time(i), modes[i], float(traj.start_c[i]), float(traj.end_c[i]),
             float(problem.drive.outdoor_c[i]), float(price[i]), float(problem.spot_eur_per_mwh[i]),
             float(traj.elec_kwh[i]), float(traj.aux_kwh[i]), float(cost[i]), decision.reasons[i], bool(est[i]))
        for i in range(problem.n)
    ]
    report = comfort_report(problem, traj, modes, base)
    end_c = float(traj.end_c[-1]) if problem.n else problem.start_c
    base_end = float(base.end_c[-1]) if problem.n else problem.start_c
    adj = stored_heat_value_eur(problem, end_c, base_end)
    note = decision.note
    if not report.feasible and not note:
        note = ("The heat pump is too small for this cold: even NORMAL cannot hold the comfort minimum. "
                "The plan heats as much as it can.")
    co2 = co2_base = None
    if problem.co2_g_per_kwh is not None and np.isfinite(problem.co2_g_per_kwh).any():
        g = np.nan_to_num(np.asarray(problem.co2_g_per_kwh, dtype=np.float64), nan=float(np.nanmean(problem.co2_g_per_kwh)))
        co2, co2_base = float((traj.elec_kwh * g).sum() / 1000.0), float((base.elec_kwh * g).sum() / 1000.0)
    hour = problem.grid.epoch_s() // 3600
    peak = float(np.bincount(hour - hour.min(), weights=traj.elec_kwh).max()) if problem.n else 0.0
    base_peak = float(np.bincount(hour - hour.min(), weights=base.elec_kwh).max()) if problem.n else 0.0
    return Plan(device_id, generated_at, decision.planner, problem.grid, slots,
                float(np.nansum(cost)), float(np.nansum(base.elec_kwh * price)), float(traj.elec_kwh.sum()),
                float(base.elec_kwh.sum()), float(traj.aux_kwh.sum()), problem.start_c, end_c, base_end, adj,
                report, float(problem.comfort.min_c.min()) if problem.n else 0.0,
                float(problem.comfort.max_c.max()) if problem.n else 0.0, note, co2, co2_base, peak, base_peak)


def end_value_eur_per_k(problem: PlanProblem) -> float | None:
    """EUR per K of indoor temperature left at the end under the ``"value"`` end rule, else None.

    One K more at the end saves buying ``C`` × 1 K of heat soon after the horizon. Its price is what
    holding the house at the target costs per kWh of heat over the horizon's last day (electricity
    price over the COP the model gives for that load): the best estimate of the hours after the end,
    with no constant to tune. On days that need no heat it is worth nothing. Computed once per problem
    (the planner's passes, its scoring and its reasons all ask).
    """
    return problem._end_value


def end_goal_c(problem: PlanProblem) -> float:
    """The end rule of a self-contained plan (``end_rule="start"``): end no colder than the start.

    Every planner keeps it on such a problem, and the bound always does. Under ``end_rule="value"``
    the optimal planner credits the heat left at the end instead and uses this only as a reference.

    Capped at what BOOST could hold at the end (a house started above its BOOST setpoint by the sun
    cannot be asked to end there too), and never below the last slot's planning floor.
    """
    if problem.n == 0:
        return problem.start_c
    top = min(float(problem.comfort.max_c[-1]), float(problem.drive.comp_set_c[Mode.BOOST.rank, -1])) - 0.2
    return max(min(problem.start_c, top), float(problem.floor_c()[-1]))
