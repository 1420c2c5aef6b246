"""Reference planners every saving is measured against.

``thermostat``: always NORMAL, the heat pump's own control at the comfort target; no optimisation.

``cheapest-hours``: what most Finnish spot-price relay controllers do today. Each local day the heat
pump may run in the N cheapest hours (BOOST, to store what it can) and is blocked in the others, with
N from the day's heat demand: the hours the compressor needs at full capacity to cover what the
house loses at the comfort target, plus one. Blocking uses OFF within the supervisor's block limits,
else ECO; like the relay controllers' minimum-temperature guard, a slot is raised to NORMAL or BOOST
whenever the house would otherwise fall below the planning floor, and the plan keeps the shared end
rule (it ends no colder than it started).
"""

from __future__ import annotations

import math
from datetime import date

import numpy as np

from atsd.core.modes import Mode
from atsd.core.plan import Decision, PlanProblem, RuleTracker
from atsd.core.planner.greedy import apply_end_rule

SPARE_HOURS = 1  # relay controllers add a spare hour to the computed need


def thermostat(problem: PlanProblem) -> Decision:
    n = problem.n
    reason = "NORMAL: the reference thermostat holds the comfort target all the time"
    return Decision([Mode.NORMAL] * n, [reason] * n, "thermostat")


def hours_needed(problem: PlanProblem) -> dict[date, int]:
    """Per local day: hours of full compressor output that cover the day's heat demand at the target."""
    d = problem.drive
    ua = problem.model.building.ua_w_per_k
    demand_w = np.maximum(0.0, ua * (d.target_c - d.outdoor_c) - d.gains_w)
    cap_w = np.maximum(d.comp_cap_w[Mode.NORMAL.rank] + d.aux_cap_w[Mode.NORMAL.rank], 1.0)
    need_h = demand_w / cap_w * problem.grid.step_h
    out: dict[date, float] = {}
    for day, h in zip(problem.grid.local_dates(problem.tz), need_h, strict=True):
        out[day] = out.get(day, 0.0) + float(h)
    return {day: math.ceil(h - 1e-9) + SPARE_HOURS for day, h in out.items()}


def cheapest_hours(problem: PlanProblem) -> Decision:
    n = problem.n
    if n == 0:
        return Decision([], [], "cheapest-hours")
    model, d = problem.model, problem.drive
    allowed = set(problem.modes) | {Mode.NORMAL}
    order = sorted(allowed, key=lambda m: m.rank)
    price = problem.objective_price()
    p = np.where(np.isfinite(price), price, np.nanmedian(price) if np.isfinite(price).any() else 0.0)
    floor = problem.floor_c()
    days = problem.grid.local_dates(problem.tz)
    need = hours_needed(problem)
    per_hour = max(1, 3600 // problem.grid.step_s)
    on = np.zeros(n, dtype=bool)
    for day in dict.fromkeys(days):
        idx = np.array([i for i in range(n) if days[i] == day])
        k = min(len(idx), need[day] * per_hour)
        on[idx[np.argsort(p[idx], kind="stable")[:k]]] = True
    run_mode = Mode.BOOST if Mode.BOOST in allowed else Mode.NORMAL
    block_mode = Mode.OFF if Mode.OFF in allowed else (Mode.ECO if Mode.ECO in allowed else Mode.NORMAL)

    modes: list[Mode] = []
    reasons: list[str] = []
    temps = np.empty(n + 1)
    temps[0] = problem.start_c
    track = RuleTracker.start(problem, days[0])
    for i in range(n):
        if on[i]:
            want = run_mode
            why = (
                f"{want.value}: one of the {need[days[i]]} cheapest hours of {days[i]:%a} "
                f"({p[i] * 100:.1f} c/kWh)"
            )
        else:
            want = block_mode
            why = f"{want.value}: blocked outside the {need[days[i]]} cheapest hours of the day"
            if want is Mode.OFF and not track.off_allowed(days[i]):
                want = Mode.ECO if Mode.ECO in allowed else Mode.NORMAL
                why = f"{want.value}: blocked outside the cheapest hours, OFF block limits reached"
        if track.dwell_holds(want):
            want, why = track.cur, f"{track.cur.value}: minimum dwell time before the next switch"
        t0 = float(temps[i])
        chosen, end = order[-1], 0.0
        for m in order[order.index(want) :]:
            end = model.step1(d, i, t0, m.rank)[0]
            if end >= floor[i] - 1e-9:
                chosen = m
                break
        else:
            end = model.step1(d, i, t0, chosen.rank)[0]
        if chosen is not want:
            why = f"{chosen.value}: minimum-temperature guard, {want.value} would go below {floor[i]:.1f} °C"
        modes.append(chosen)
        reasons.append(why)
        temps[i + 1] = end
        track.commit(chosen, days[i])
    apply_end_rule(problem, modes, reasons, temps)
    return Decision(modes, reasons, "cheapest-hours")
