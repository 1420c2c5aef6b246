"""The flexibility envelope: what the house could shed, slot by slot, without leaving comfort.

For each slot of the plan: the electric power the plan draws there (what stopping the heat pump would
shed), how long the house could then stay OFF before it reaches the planning floor (never longer than
the supervisor's OFF block), and the rebound: the extra electric energy the following hours need to
bring the house back onto the plan. Aggregators read this instead of frequency-reserve bids, which a
relay-driven heat pump cannot prequalify for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from atsd.core.modes import Mode
from atsd.core.plan import Plan, PlanProblem


@dataclass(frozen=True)
class FlexSlot:
    start: datetime
    shed_kw: float
    shed_max_min: float
    rebound_kwh: float


def envelope(problem: PlanProblem, plan: Plan, hours: float = 24.0, recovery_slots: int = 8) -> list[FlexSlot]:
    """Per slot of the next ``hours``: shed kW, how long it can be held, and the rebound energy."""
    n = min(problem.n, int(hours * 3600 / problem.grid.step_s))
    model, d = problem.model, problem.drive
    floor = problem.floor_c()
    step_h = problem.grid.step_h
    max_off = problem.rules.max_off_slots
    out: list[FlexSlot] = []
    planned = [s.mode for s in plan.slots]
    for i in range(n):
        slot = plan.slots[i]
        shed_kw = slot.energy_kwh / step_h if planned[i] is not Mode.OFF else 0.0
        if Mode.OFF not in problem.modes or shed_kw <= 0:
            out.append(FlexSlot(slot.start, 0.0, 0.0, 0.0))
            continue
        t = slot.start_indoor_c
        held = 0
        for k in range(i, min(problem.n, i + max_off)):
            end = model.step1(d, k, t, Mode.OFF.rank)[0]
            if end < floor[k] - 1e-9:
                break
            t = end
            held += 1
        if held == 0:
            out.append(FlexSlot(slot.start, 0.0, 0.0, 0.0))
            continue
        # Rebound: follow the plan again after the shed; compare energy with the plan's own.
        k_end = min(problem.n, i + held + recovery_slots)
        extra = 0.0
        for k in range(i + held, k_end):
            end, _m, _c, _a, kwh = model.step1(d, k, t, planned[k].rank)
            extra += kwh - plan.slots[k].energy_kwh
            t = end
        out.append(FlexSlot(slot.start, shed_kw, held * problem.grid.step_s / 60.0, max(0.0, extra)))
    return out


def mode_bounds_for_event(problem_n: int, slot_starts: list[datetime], start: datetime, end: datetime,
                          kind: str, step_s: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-slot (min rank, max rank) bounds for a demand-response window (shed: at most ECO/OFF,
    boost: BOOST). Slots outside the window are unbounded."""
    lo = np.zeros(problem_n, dtype=int)
    hi = np.full(problem_n, Mode.BOOST.rank, dtype=int)
    for i, t in enumerate(slot_starts[:problem_n]):
        t_end = t.timestamp() + step_s
        if t_end <= start.timestamp() or t.timestamp() >= end.timestamp():
            continue
        if kind == "shed":
            hi[i] = Mode.ECO.rank
        else:
            lo[i] = Mode.BOOST.rank
    return lo, hi
