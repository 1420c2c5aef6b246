"""Greedy thermal pre-charging: the original atsd heuristic.

Slots are classified by total price relative to the horizon: cheap (bottom third), moderate,
expensive (top third). Cheap slots BOOST when an expensive slot follows within half a day (the heat
is stored in the building's mass); expensive slots go OFF (or ECO) while the stored heat lasts;
everything else runs NORMAL. A forward pass simulates each choice exactly and raises the mode
whenever the house would fall below comfort min plus the margin, or could not recover in the next
slot. Switching rules (dwell, OFF block length, gap, blocks per local day) are kept as the
supervisor would keep them. Finally the end rule: the plan ends no colder than it started.
"""

from __future__ import annotations

import numpy as np

from atsd.core.modes import Mode
from atsd.core.plan import Decision, PlanProblem, RuleTracker, end_goal_c

LOOKAHEAD_H = 6.0
STORAGE_LOSS = 0.10  # share of pre-charged heat lost through the warmer envelope before it is used
FLAT_SPREAD_EUR_PER_KWH = 0.005  # below half a cent of spread, shifting heat cannot pay for itself


def _ordinal(k: int) -> str:
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def plan(problem: PlanProblem) -> Decision:
    n = problem.n
    if n == 0:
        return Decision([], [], "greedy")
    model, d = problem.model, problem.drive
    price = problem.objective_price()
    known = np.isfinite(price)
    p = np.where(known, price, np.nanmedian(price) if known.any() else 0.0)
    floor = problem.floor_c()
    allowed = set(problem.modes)
    order = sorted(allowed, key=lambda m: m.rank)

    cheap_q = float(problem.extra.get("cheap_q", 0.33))  # type: ignore[arg-type]
    expensive_q = float(problem.extra.get("expensive_q", 0.67))  # type: ignore[arg-type]
    lo, hi = np.quantile(p, [cheap_q, expensive_q]) if n > 2 else (p.min(), p.max())
    flat = float(p.max() - p.min()) < FLAT_SPREAD_EUR_PER_KWH
    rank_of = np.empty(n, dtype=int)
    rank_of[np.argsort(p, kind="stable")] = np.arange(1, n + 1)
    look = max(1, int(LOOKAHEAD_H * 3600 / problem.grid.step_s))
    # Heat bought in a valley at full power (hot supply, lower COP) must beat heat bought at the peak.
    hp = model.heat_pump
    hold_w = np.maximum(model.building.ua_w_per_k * (d.target_c - d.outdoor_c) - d.gains_w, 0.0)
    cop_hold = hp.cop(d.source_c, hp.supply_c(d.target_c, hold_w, model.design_heat_w))
    cap = d.comp_cap_w[Mode.BOOST.rank]
    cop_boost = hp.cop(d.source_c, hp.supply_c(d.target_c, np.maximum(cap, hold_w), model.design_heat_w))
    expensive = (p >= hi) & ~flat
    cheap = (p <= lo) & ~flat
    next_peak = np.full(n, -1)
    nxt = -1
    for i in range(n - 1, -1, -1):
        next_peak[i] = nxt
        if expensive[i]:
            nxt = i

    def local(i: int) -> str:
        return f"{problem.grid.time(i).astimezone(problem.tz):%H:%M}"

    desired: list[Mode] = []
    why: list[str] = []
    for i in range(n):
        if (cheap[i] and Mode.BOOST in allowed and 0 <= next_peak[i] - i <= look
                and p[i] / cop_boost[i] < (1.0 - STORAGE_LOSS) * p[next_peak[i]] / cop_hold[next_peak[i]]):
            desired.append(Mode.BOOST)
            why.append(f"BOOST: {_ordinal(int(rank_of[i]))} cheapest slot of the horizon, pre-charging "
                       f"before the {local(int(next_peak[i]))} peak")
        elif expensive[i] and (Mode.OFF in allowed or Mode.ECO in allowed):
            m = Mode.OFF if Mode.OFF in allowed else Mode.ECO
            desired.append(m)
            why.append(f"{m.value}: {p[i] * 100:.1f} c/kWh is in the top third of the horizon; "
                       "coasting on stored heat")
        else:
            desired.append(Mode.NORMAL)
            why.append("NORMAL: flat prices, nothing to gain by shifting" if flat else
                       f"NORMAL: moderate price {p[i] * 100:.1f} c/kWh")

    modes: list[Mode] = []
    reasons: list[str] = []
    temps = np.empty(n + 1)
    temps[0] = problem.start_c
    days = problem.grid.local_dates(problem.tz)
    track = RuleTracker.start(problem, days[0])
    up_mode = Mode.BOOST if Mode.BOOST in allowed else Mode.NORMAL

    floor_hit = False  # once the floor stops coasting in an expensive run, stay up until it ends
    for i in range(n):
        t0 = float(temps[i])
        want = desired[i]
        reason = why[i]
        if not expensive[i]:
            floor_hit = False
        elif floor_hit and want.rank < Mode.NORMAL.rank:
            want, reason = Mode.NORMAL, "NORMAL: the stored heat is used up; holding the comfort floor"
        lo_r, hi_r = problem.bounded(i)
        if not lo_r <= want.rank <= hi_r:
            inside = [m for m in order if lo_r <= m.rank <= hi_r]
            if inside:
                want = inside[-1] if want.rank > hi_r else inside[0]
                reason = f"{want.value}: demand-response event ({'shed' if want.rank < lo_r or hi_r < 3 else 'boost'})"
        if want is Mode.OFF and not track.off_allowed(days[i]):
            want = Mode.ECO if Mode.ECO in allowed else Mode.NORMAL
            reason = f"{want.value}: expensive, but the OFF block limits are reached"
        if track.dwell_holds(want):
            want, reason = track.cur, f"{track.cur.value}: minimum dwell time before the next switch"
        # Raise the mode until this slot stays above the floor and the next one can recover.
        start_idx = order.index(want) if want in order else order.index(Mode.NORMAL)
        chosen = order[-1]
        end = 0.0
        for m in order[start_idx:]:
            end = model.step1(d, i, t0, m.rank)[0]
            ok = end >= floor[i] - 1e-9
            if ok and m.rank < Mode.NORMAL.rank and i + 1 < n:
                ok = model.step1(d, i + 1, end, up_mode.rank)[0] >= floor[i + 1] - 1e-9
            if ok:
                chosen = m
                break
        else:
            end = model.step1(d, i, t0, chosen.rank)[0]
        if chosen is not want and chosen.rank > want.rank:
            floor_hit = True
            reason = (f"{chosen.value}: comfort floor, {want.value} would take the house below "
                      f"{floor[i]:.1f} °C")
        modes.append(chosen)
        reasons.append(reason)
        temps[i + 1] = end
        track.commit(chosen, days[i])

    apply_end_rule(problem, modes, reasons, temps)
    return Decision(modes, reasons, "greedy")


def apply_end_rule(problem: PlanProblem, modes: list[Mode], reasons: list[str], temps: np.ndarray) -> None:
    """Raise late slots, cheapest first, until the plan ends no colder than it started."""
    goal = end_goal_c(problem)
    if temps[-1] >= goal - 1e-6:
        return
    n = problem.n
    model, d = problem.model, problem.drive
    allowed = sorted(problem.modes, key=lambda m: m.rank)
    price = problem.objective_price()
    p = np.where(np.isfinite(price), price, np.nanmax(price) if np.isfinite(price).any() else 0.0)
    window = max(1, int(LOOKAHEAD_H * 3600 / problem.grid.step_s))
    candidates = sorted(range(max(0, n - window), n), key=lambda i: (p[i], -i))
    for i in candidates * 3:
        m = modes[i]
        higher = [x for x in allowed if x.rank > m.rank]
        if not higher:
            continue
        modes[i] = higher[0]
        reasons[i] = f"{modes[i].value}: end rule, the plan must end no colder than it started"
        t = float(temps[i])
        for k in range(i, n):
            t = model.step1(d, k, t, modes[k].rank)[0]
            temps[k + 1] = t
        if temps[-1] >= goal - 1e-6:
            return
