"""The optimal planner: the cheapest mode sequence under the thermal model, by dynamic programming.

State at each slot boundary: the indoor temperature (on a grid, ``temp_step_k`` apart between the
planning floor and the BOOST setpoint, coarser outside) and a small *rule state* that carries what
the supervisor's switching rules need: the last mode and how long it has been held (minimum dwell),
the length of the current OFF block, the slots since the last OFF block (gap) and the OFF blocks
already started on this local day. Modes the actuator does not support are never chosen.

Backward pass: the cost-to-go ``V[k](rule state, T)`` on the grid, with the slot transitions of all
(slot, mode, grid temperature) triples from one vectorised call of :meth:`ThermalModel.step`; between
grid temperatures ``V`` is interpolated linearly (a semi-Lagrangian scheme). The last slot uses the
exact end rule instead of an interpolated value (or, under ``end_rule="value"`` for a receding
horizon, the credit for heat left at the end, see :func:`~atsd.core.plan.end_value_eur_per_k`).
Each slot evaluates every distinct (successor rule state, mode) move once.

Forward pass: from the true start temperature, each slot tries every allowed mode with the exact
scalar model (:meth:`ThermalModel.step1`) and keeps the one with the least slot cost plus
interpolated cost-to-go, so the returned schedule is evaluated exactly and the grid only guides the
choice.

Comfort and the end rule are soft constraints with a penalty far above any price (ten times the cost
of buying the missing heat at the horizon's highest price with COP 1), so a feasible problem is solved
with zero shortfall, and an infeasible one (a heat pump too small for the cold) still gets the plan
with the least shortfall instead of no plan.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from atsd.core.modes import ALL_MODES, Mode
from atsd.core.plan import Decision, PlanProblem, end_goal_c, end_value_eur_per_k
from atsd.core.thermal import J_PER_KWH

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

PENALTY_FACTOR = 10.0  # comfort/end penalty per K = this × C (kWh/K) × highest |price| at COP 1
TIE_EUR = 1e-7  # per slot away from NORMAL: among equal-cost plans prefer the fail-safe mode
TAIL_SLOTS = 3  # the last slots are searched exhaustively (at most 4³ sequences)
STEP_K = 0.05  # the step of the shortfall penalty (see shortfall_cost)
SHORT_TOL_K = 1e-7  # shortfalls below this are rounding, not a violation
BOUND_SHARE = 0.05  # leaving a demand-response window's modes costs as much as 0.05 K below the floor
BLOCKED_EUR = 1e18  # cost-to-go of a move the switching rules forbid (finite: no inf - inf)
COARSE_BELOW_K = (0.15, 0.5, 1.5, 4.0)  # grid points under the floor, for recovery only
COARSE_ABOVE_K = (0.5, 2.5)  # and above the highest setpoint (sun, a warm start)

# A rule state: (mode rank or ON when dwell does not matter, slots held, slots since the last OFF
# block, OFF blocks started today).
RuleState = tuple[int, int, int, int]
ON = 9  # stands for "any mode but OFF" when the minimum dwell is one slot


@dataclass(frozen=True)
class Rules:
    """The switching rules as a finite automaton over rule states, for the allowed modes."""

    states: list[RuleState]
    actions: list[Mode]  # allowed modes, in rank order
    next_idx: IntArray  # (S, A): next state index; S (one past the last) = not allowed
    reset_idx: IntArray  # (S,): the state after a local midnight (blocks-today back to 0)
    start: int

    @property
    def n_states(self) -> int:
        return len(self.states)


def build_rules(problem: PlanProblem) -> Rules:
    """Enumerate the rule states reachable from the present one (a few dozen with the defaults)."""
    r = problem.rules
    actions = sorted(set(problem.modes) | {Mode.NORMAL}, key=lambda m: m.rank)
    dwell = max(1, r.min_dwell_slots)
    off_ok = Mode.OFF in actions and r.max_off_slots > 0 and r.max_off_blocks_per_day > 0
    max_off = max(1, r.max_off_slots)
    gap = max(0, r.min_off_gap_slots)
    blocks_max = max(0, r.max_off_blocks_per_day)
    off = Mode.OFF.rank

    def canon(m: int, held: int, since: int, blocks: int) -> RuleState:
        if m == off:
            return (off, min(held, max(max_off, dwell)), 0, min(blocks, blocks_max))
        if dwell <= 1:
            m, held = ON, 1
        return (
            m,
            min(held, dwell),
            min(since, gap) if off_ok else 0,
            min(blocks, blocks_max) if off_ok else 0,
        )

    def step(s: RuleState, a: Mode) -> RuleState | None:
        m, held, since, blocks = s
        if m not in (a.rank, ON) and held < dwell and a is not Mode.NORMAL:
            return None  # minimum dwell; moving to NORMAL is always allowed
        if a is Mode.OFF:
            if not off_ok:
                return None
            if m == off:
                return canon(off, held + 1, 0, blocks) if held < max_off else None
            if since < gap or blocks >= blocks_max:
                return None
            return canon(off, 1, 0, blocks + 1)
        if m == off:
            return canon(a.rank, 1, 1, blocks)
        same = m in (a.rank, ON)
        return canon(a.rank, held + 1 if same else 1, since + 1, blocks)

    extra = problem.extra
    cur = problem.current_mode
    held0 = max(1, int(problem.current_mode_slots))
    blocks0 = int(extra.get("off_blocks_today", 1 if cur is Mode.OFF else 0))  # type: ignore[call-overload]
    since0 = int(extra.get("since_off_slots", held0))  # type: ignore[call-overload]
    start = canon(cur.rank, held0, since0, blocks0)
    index: dict[RuleState, int] = {start: 0}
    states = [start]
    trans: list[list[RuleState | None]] = []
    i = 0
    while i < len(states):
        s = states[i]
        row = [step(s, a) for a in actions]
        reset = (s[0], s[1], s[2], 0)
        for t in [*row, reset]:
            if t is not None and t not in index:
                index[t] = len(states)
                states.append(t)
        trans.append(row)
        i += 1
    n_s = len(states)
    next_idx = np.array([[n_s if t is None else index[t] for t in row] for row in trans], dtype=np.int64)
    reset_idx = np.array([index[(s[0], s[1], s[2], 0)] for s in states], dtype=np.int64)
    return Rules(states, actions, next_idx.reshape(n_s, len(actions)), reset_idx, 0)


def mode_floor_c(problem: PlanProblem, actions: list[Mode]) -> FloatArray:
    """The floor a slot's end temperature keeps under each mode, shape ``(n, len(actions))``.

    The planning floor (comfort min plus the margin) guards open-loop coasting against model error.
    A mode whose own thermostat holds a setpoint at or above comfort min (ECO clamped at the minimum)
    needs no model to stay there, so under it the floor is that setpoint: the house may then be held
    at the comfort minimum itself, and the savings of running colder show in ``savings_pct``, not in
    the load-shifting share.
    """
    n = problem.n
    floor = problem.floor_c() * np.ones(n)
    d = problem.drive
    out = np.empty((n, len(actions)))
    for j, a in enumerate(actions):
        setpoint = d.comp_set_c[a.rank]
        closed = (d.comp_cap_w[a.rank] > 0) & (setpoint >= problem.comfort.min_c - 1e-9)
        out[:, j] = np.where(closed, np.minimum(floor, setpoint), floor)
    return out


def temperature_grid(problem: PlanProblem, actions: list[Mode]) -> FloatArray:
    """Fine points from the planning floor to the highest setpoint, aligned on the floor; coarse outside."""
    step = float(problem.extra.get("temp_step_k", 0.05))  # type: ignore[arg-type]
    step = min(max(step, 0.005), 0.5)
    floor = mode_floor_c(problem, actions)
    d = problem.drive
    lo = min(float(np.min(floor)), end_goal_c(problem))
    sets = d.comp_set_c[[a.rank for a in actions if a is not Mode.OFF]]
    hi = max(float(np.max(sets[np.isfinite(sets)], initial=lo)), lo + step)
    fine = lo + step * np.arange(math.floor((hi - lo) / step + 1e-9) + 1)
    if hi - fine[-1] > 1e-6:
        fine = np.append(fine, hi)
    below = [lo - k for k in COARSE_BELOW_K]
    above = [hi + k for k in COARSE_ABOVE_K]
    start = problem.start_c
    if start < below[-1]:
        below.append(start - 0.5)
    if start > above[-1]:
        above.append(start + 0.5)
    return np.concatenate([np.sort(np.array(below)), fine, np.array(above)])


@dataclass(frozen=True)
class Solution:
    modes: list[Mode]
    temps_c: FloatArray  # n + 1 boundary temperatures of the exact rollout
    elec_kwh: FloatArray
    cost_eur: FloatArray
    expected_cost_eur: float  # the DP's own estimate at the start, for diagnostics
    grid_c: FloatArray
    n_rule_states: int


@dataclass(frozen=True)
class Backward:
    """The backward pass: cost-to-go on the grid and what the forward pass needs with it."""

    rules: Rules
    ranks: IntArray
    grid: FloatArray
    value: FloatArray  # (n + 1, S + 1, T); row S is the forbidden-move sink
    new_day: NDArray[np.bool_]
    price: FloatArray
    floor: FloatArray  # (n, A): the floor each slot's end must keep under each mode
    goal_c: float
    pen: float
    tie: FloatArray
    bound: FloatArray  # (n, A): cost of a mode outside the slot's demand-response bounds
    end_c: FloatArray  # (n, A, T): the exact transitions from each grid temperature...
    elec_kwh: FloatArray  # (n, A, T): ...and their electricity


def bound_cost(problem: PlanProblem, ranks: IntArray, pen: float) -> FloatArray:
    """Demand-response windows as a soft constraint: dear enough to keep unless comfort needs it."""
    out = np.zeros((problem.n, len(ranks)))
    if problem.mode_bounds is not None:
        lo, hi = problem.mode_bounds
        outside = (ranks[None, :] < np.asarray(lo)[:, None]) | (ranks[None, :] > np.asarray(hi)[:, None])
        out[outside] = BOUND_SHARE * pen
    return out


def backward(problem: PlanProblem) -> Backward:
    """Cost-to-go ``V[k](rule state, T)`` for every slot, from one vectorised transition table."""
    n = problem.n
    model, d = problem.model, problem.drive
    rules = build_rules(problem)
    actions = rules.actions
    ranks = np.array([a.rank for a in actions], dtype=np.int64)
    price = np.asarray(problem.objective_price(), dtype=np.float64)
    known = np.isfinite(price)
    price = np.where(known, price, float(np.nanmedian(price)) if known.any() else 0.0)
    floor = mode_floor_c(problem, actions)
    goal = end_goal_c(problem)
    c_kwh = model.building.capacitance_j_per_k / J_PER_KWH
    pen = PENALTY_FACTOR * c_kwh * (float(np.max(np.abs(price), initial=0.0)) + 0.1)
    tie = TIE_EUR * np.abs(ranks - Mode.NORMAL.rank)

    grid = temperature_grid(problem, actions)
    n_t = len(grid)
    # Every (slot, mode, grid temperature) transition at once.
    res = model.step(d, np.arange(n)[:, None, None], grid[None, None, :], ranks[None, :, None])
    end = res.end_c  # (n, A, T)
    bound = bound_cost(problem, ranks, pen)
    stage = (
        res.elec_kwh * price[:, None, None]
        + shortfall_cost(floor[:, :, None] - end, pen)
        + tie[None, :, None]
        + bound[:, :, None]
    )
    # The end rule, linear in the shortfall here (a step would wreck the interpolation next to it);
    # the forward pass enforces it exactly over the last TAIL_SLOTS slots.
    lam = end_value_eur_per_k(problem)
    if lam is None:
        stage[-1] += pen * np.maximum(0.0, goal - end[-1])
    else:  # heat left at the end is credited (the floors above still hold)
        stage[-1] -= lam * (end[-1] - goal)
    hi_idx = np.clip(np.searchsorted(grid, end, side="right") - 1, 0, n_t - 2)
    g0 = grid[hi_idx]
    w = np.clip((end - g0) / (grid[hi_idx + 1] - g0), 0.0, 1.0)

    days = problem.grid.local_dates(problem.tz)
    new_day = np.zeros(n, dtype=bool)
    new_day[1:] = [days[k] != days[k - 1] for k in range(1, n)]
    n_s = rules.n_states
    nxt_plain = rules.next_idx
    nxt_reset = rules.next_idx[rules.reset_idx]
    value = np.empty((n + 1, n_s + 1, n_t))
    value[:, n_s, :] = BLOCKED_EUR
    value[n, :n_s, :] = 0.0  # the end rule sits in the last slot's stage cost
    # Many (rule state, mode) moves lead to the same (successor, mode) pair (every state that may
    # switch freely reaches the same successor under ECO, NORMAL or BOOST), so each slot evaluates
    # the cost of every distinct pair once, then each state takes the least of its own pairs.
    plain, reset = _pairs(nxt_plain, n_s), _pairs(nxt_reset, n_s)
    buf = np.empty((max(len(plain[0]), len(reset[0])) + 1, n_t))
    for k in range(n - 1, -1, -1):
        succ, act, pair_of = reset if new_day[k] else plain
        n_p = len(succ)
        flat = value[k + 1].ravel()
        at = succ[:, None] * n_t + hi_idx[k][act]  # (P, T) flat index of the lower grid neighbour
        lo = flat[at]
        q = buf[:n_p]
        np.subtract(flat[at + 1], lo, out=q)
        q *= w[k][act]
        q += lo
        q += stage[k][act]
        buf[n_p] = BLOCKED_EUR  # the row of every forbidden move
        value[k, :n_s] = buf[pair_of].min(axis=1)
    return Backward(rules, ranks, grid, value, new_day, price, floor, goal, pen, tie, bound, end, res.elec_kwh)


def _pairs(nxt: IntArray, n_s: int) -> tuple[IntArray, IntArray, IntArray]:
    """The distinct allowed (successor, mode index) pairs of a transition table ``nxt`` (S, A).

    Returns ``(successor, mode, pair_of)``: ``pair_of[s, a]`` indexes the pair of move ``(s, a)``,
    or ``P`` (one past the last pair) for a move the rules forbid.
    """
    n_a = nxt.shape[1]
    code = nxt * n_a + np.arange(n_a)[None, :]
    allowed = nxt < n_s
    uniq, inv = np.unique(code[allowed], return_inverse=True)
    pair_of = np.full(nxt.shape, len(uniq), dtype=np.int64)
    pair_of[allowed] = inv
    return (uniq // n_a).astype(np.int64), (uniq % n_a).astype(np.int64), pair_of


def solve(problem: PlanProblem) -> Solution:
    """Backward DP on the grid, then an exact forward rollout guided by the cost-to-go."""
    n = problem.n
    model, d = problem.model, problem.drive
    b = backward(problem)
    rules, ranks, grid, value, new_day = b.rules, b.ranks, b.grid, b.value, b.new_day
    goal, pen = b.goal_c, b.pen
    lam = end_value_eur_per_k(problem)
    # Plain Python lists: the rollout is scalar code, where numpy's per-element cost dominates.
    price: list[float] = b.price.tolist()
    floor: list[list[float]] = b.floor.tolist()
    tie: list[float] = b.tie.tolist()
    bnd: list[list[float]] = b.bound.tolist()
    rank: list[int] = ranks.tolist()
    nxt_plain: list[list[int]] = rules.next_idx.tolist()
    reset: list[int] = rules.reset_idx.tolist()
    actions = rules.actions
    n_a = len(actions)
    n_s = rules.n_states

    grid_l: list[float] = grid.tolist()
    last = len(grid_l) - 1
    # A house held at a setpoint sits exactly on a grid temperature: its transitions are in the table.
    on_grid = {v: j for j, v in enumerate(grid_l)}
    table_end, table_kwh = b.end_c, b.elec_kwh

    # Forward: exact rollout from the true start temperature.
    modes: list[Mode] = []
    temps = np.empty(n + 1)
    elec = np.empty(n)
    temps[0] = problem.start_c
    s = rules.start
    t = problem.start_c
    tail = max(0, n - TAIL_SLOTS)
    for k in range(tail):
        if new_day[k]:
            s = reset[s]
        best = (math.inf, -1, t, 0.0, s)
        j = on_grid.get(t)
        for ai in range(n_a):
            s2 = nxt_plain[s][ai]
            if s2 == n_s:
                continue
            if j is None:
                e, _mc, _qc, _qa, kwh = model.step1(d, k, t, rank[ai])
            else:
                e, kwh = float(table_end[k, ai, j]), float(table_kwh[k, ai, j])
            q = kwh * price[k] + _shortfall1(floor[k][ai] - e, pen) + tie[ai] + bnd[k][ai]
            # the cost-to-go between grid temperatures, as np.interp (clamped at the ends) but scalar
            i = bisect_right(grid_l, e) - 1
            if i < 0:
                q += float(value[k + 1, s2, 0])
            elif i >= last:
                q += float(value[k + 1, s2, last])
            else:
                v0 = float(value[k + 1, s2, i])
                q += v0 + (float(value[k + 1, s2, i + 1]) - v0) * (e - grid_l[i]) / (grid_l[i + 1] - grid_l[i])
            if q < best[0] - 1e-12:
                best = (q, ai, e, kwh, s2)
        _q, ai, e, kwh, s = best
        modes.append(actions[ai])
        temps[k + 1] = t = e
        elec[k] = kwh

    # The last slots: every allowed sequence, exactly, with the end rule as a hard(-penalty) limit.
    best_tail: tuple[float, list[int], list[float], list[float]] = (math.inf, [], [], [])

    def search(
        k: int, t: float, s: int, acc: float, seq: list[int], ts: list[float], es: list[float]
    ) -> None:
        nonlocal best_tail
        if acc >= best_tail[0]:
            return
        if k == n:
            total = acc + (_shortfall1(goal - t, pen) if lam is None else -lam * (t - goal))
            if total < best_tail[0] - 1e-12:
                best_tail = (total, list(seq), list(ts), list(es))
            return
        if new_day[k]:
            s = reset[s]
        for ai in range(n_a):
            s2 = nxt_plain[s][ai]
            if s2 == n_s:
                continue
            e, _mc, _qc, _qa, kwh = model.step1(d, k, t, rank[ai])
            q = kwh * price[k] + _shortfall1(floor[k][ai] - e, pen) + tie[ai] + bnd[k][ai]
            search(k + 1, e, s2, acc + q, [*seq, ai], [*ts, e], [*es, kwh])

    search(tail, t, s, 0.0, [], [], [])
    for j, ai in enumerate(best_tail[1]):
        modes.append(actions[ai])
        temps[tail + j + 1] = best_tail[2][j]
        elec[tail + j] = best_tail[3][j]
    cost = elec * problem.price_eur_per_kwh
    expected = float(np.interp(problem.start_c, grid, value[0, rules.start])) if n else 0.0
    return Solution(modes, temps, elec, cost, expected, grid, n_s)


def shortfall_cost(short_k: FloatArray | float, pen_eur_per_k: float) -> FloatArray:
    """Penalty for ending a slot below the floor (or the plan below its end goal) by ``short_k``.

    Linear in the shortfall plus a step as if it were ``STEP_K`` deeper, so that even a tiny
    shortfall never pays for itself when a whole slot of heating is the only way to avoid it.
    """
    s = np.asarray(short_k, dtype=np.float64)
    return np.asarray(np.where(s > SHORT_TOL_K, pen_eur_per_k * (s + STEP_K), 0.0), dtype=np.float64)


def _shortfall1(short_k: float, pen_eur_per_k: float) -> float:
    """:func:`shortfall_cost` for one number, without numpy's per-call cost."""
    return pen_eur_per_k * (short_k + STEP_K) if short_k > SHORT_TOL_K else 0.0


def plan(problem: PlanProblem) -> Decision:
    """The DP's plan; if greedy's plan is better under the exact model (it can be, by the grid's
    interpolation error), greedy's schedule is returned instead and the note says so."""
    if problem.n == 0:
        return Decision([], [], "optimal")
    sol = solve(problem)
    modes, temps = sol.modes, sol.temps_c
    note = ""
    from atsd.core.planner import greedy

    alt = greedy.plan(problem).modes
    alt_temps, alt_score = score(problem, alt)
    if alt_score < score(problem, modes)[1] - 1e-9 and legal(problem, alt):
        modes, temps = alt, alt_temps
        note = "the greedy schedule was cheaper than the DP's on this input and is used"
    reasons = explain(problem, modes, temps)
    if problem.mode_bounds is not None:
        lo, hi = problem.mode_bounds
        for i in range(problem.n):
            if lo[i] > Mode.OFF.rank or hi[i] < Mode.BOOST.rank:
                kind = "shed" if hi[i] < Mode.BOOST.rank else "boost"
                inside = lo[i] <= modes[i].rank <= hi[i]
                reasons[i] += (f" (demand-response {kind} window)" if inside else
                               f" (demand-response {kind} window, overruled to keep the comfort floor)")
    return Decision(modes, reasons, "optimal", note)


def legal(problem: PlanProblem, modes: list[Mode]) -> bool:
    """Whether a schedule keeps the switching rules and the allowed modes (the DP's automaton)."""
    rules = build_rules(problem)
    days = problem.grid.local_dates(problem.tz)
    s = rules.start
    for k, m in enumerate(modes):
        if m not in rules.actions:
            return False
        if k > 0 and days[k] != days[k - 1]:
            s = int(rules.reset_idx[s])
        s = int(rules.next_idx[s, rules.actions.index(m)])
        if s == rules.n_states:
            return False
    return True


def score(problem: PlanProblem, modes: list[Mode]) -> tuple[FloatArray, float]:
    """Exact objective of a schedule as the DP counts it: cost plus floor and end-rule penalties."""
    traj = problem.model.simulate(problem.drive, problem.start_c, modes)
    price = np.asarray(problem.objective_price(), dtype=np.float64)
    price = np.where(
        np.isfinite(price), price, float(np.nanmedian(price)) if np.isfinite(price).any() else 0.0
    )
    c_kwh = problem.model.building.capacitance_j_per_k / J_PER_KWH
    pen = PENALTY_FACTOR * c_kwh * (float(np.max(np.abs(price), initial=0.0)) + 0.1)
    floor = mode_floor_c(problem, list(ALL_MODES))[np.arange(problem.n), [m.rank for m in modes]]
    total = float(np.sum(traj.elec_kwh * price) + np.sum(shortfall_cost(floor - traj.end_c, pen)))
    lam = end_value_eur_per_k(problem)
    if lam is None:
        total += float(shortfall_cost(end_goal_c(problem) - traj.end_c[-1], pen))
    else:
        total -= lam * float(traj.end_c[-1] - end_goal_c(problem))
    ranks = np.array([m.rank for m in ALL_MODES], dtype=np.int64)
    total += float(bound_cost(problem, ranks, pen)[np.arange(problem.n), [m.rank for m in modes]].sum())
    temps = np.concatenate([[problem.start_c], traj.end_c])
    return temps, total


# -- reasons ----------------------------------------------------------------------------------------


def explain(problem: PlanProblem, modes: list[Mode], temps_c: FloatArray) -> list[str]:
    """One sentence per slot saying why its mode pays, in the terms a person checks: price and heat."""
    n = problem.n
    price = np.asarray(problem.objective_price(), dtype=np.float64)
    price = np.where(
        np.isfinite(price), price, float(np.nanmedian(price)) if np.isfinite(price).any() else 0.0
    )
    floors = mode_floor_c(problem, list(ALL_MODES))
    floor = floors[np.arange(n), [m.rank for m in modes]]
    cents = price * 100.0
    order = np.argsort(price, kind="stable")
    pct = np.empty(n)
    pct[order] = 100.0 * (np.arange(n) + 0.5) / max(n, 1)
    est = problem.price_estimated if problem.price_estimated is not None else np.zeros(n, dtype=bool)
    goal = end_goal_c(problem)
    lam = end_value_eur_per_k(problem)
    c_kwh = problem.model.building.capacitance_j_per_k / J_PER_KWH
    after = (f"heat left at the end is worth {100.0 * lam / c_kwh:.1f} c/kWh, what holding the house "
             "costs on the horizon's last day" if lam is not None else "")

    def local(i: int) -> str:
        return f"{problem.grid.time(i).astimezone(problem.tz):%H:%M}"

    target = problem.drive.target_c
    # Slots that live on stored heat: blocked, or NORMAL while the house cools from above its target.
    coast = np.array(
        [
            (m is Mode.OFF or temps_c[i + 1] < temps_c[i] - 1e-4)
            and (m.rank < Mode.NORMAL.rank or (m is Mode.NORMAL and temps_c[i] > target[i] + 0.02))
            for i, m in enumerate(modes)
        ]
    )
    boost = np.array([m is Mode.BOOST for m in modes])
    next_coast = _next_true(coast)
    prev_boost = _prev_true(boost)
    run_end = np.arange(n)
    for i in range(n - 2, -1, -1):
        if coast[i] and coast[i + 1]:
            run_end[i] = run_end[i + 1]
    out: list[str] = []
    for i, m in enumerate(modes):
        p = f"{cents[i]:.1f} c/kWh{' (estimated)' if est[i] else ''}"
        t0, t1 = float(temps_c[i]), float(temps_c[i + 1])
        cheap = f" (cheapest {max(1, round(pct[i]))} % of the horizon)" if pct[i] <= 50 else ""
        if m is Mode.BOOST:
            if price[i] < 0:
                why = f"BOOST: negative price {p}: heat is paid for, stored in the house"
            elif next_coast[i] >= 0 and not (i >= n - 8 and t1 <= goal + 0.3):
                j = int(next_coast[i])
                k = int(run_end[j])
                peak = float(np.max(cents[j : k + 1]))
                why = (
                    f"BOOST: {p}{cheap}; storing heat for {local(j)}-{local(k + 1 if k + 1 < n else k)}, "
                    f"when prices reach {peak:.1f} c/kWh"
                )
            elif i >= n - 8:
                why = (f"BOOST: {p}; {after}" if lam is not None else
                       f"BOOST: {p}; the plan must end no colder than it started ({goal:.1f} °C)")
            else:
                why = f"BOOST: {p}{cheap}; storing heat"
        elif coast[i]:
            src = int(prev_boost[i])
            bought = f", bought at {local(src)} for {cents[src]:.1f} c/kWh" if src >= 0 else ""
            dear = f" (dearest {max(1, round(100 - pct[i]))} %)" if pct[i] > 50 else ""
            why = (
                f"{m.value}: {p}{dear}; coasting on stored heat{bought} ({t0:.1f} -> {t1:.1f} °C, "
                f"floor {floor[i]:.1f} °C)"
            )
        elif m.rank < Mode.NORMAL.rank:
            why = (
                f"{m.value}: {p}; the heat pump holds {t1:.1f} °C "
                f"(comfort min {problem.comfort.min_c[i]:.1f} °C): running colder, not shifting"
            )
        elif i > 0 and coast[i - 1] and t0 <= floor[i] + 0.15:
            why = f"NORMAL: the stored heat is used up at {t0:.1f} °C; back to the heat pump's own control"
        elif i >= n - 8 and t1 < goal - 0.05 and lam is None:
            why = f"NORMAL: {p}; reheating so the plan ends no colder than it started"
        else:
            why = (
                f"NORMAL: {p}; holding the target: storing this heat elsewhere would cost more in COP "
                "and losses than it saves"
            )
        out.append(why)
    return out


def _next_true(mask: NDArray[np.bool_]) -> IntArray:
    out = np.full(len(mask), -1, dtype=np.int64)
    nxt = -1
    for i in range(len(mask) - 1, -1, -1):
        out[i] = nxt
        if mask[i]:
            nxt = i
    return out


def _prev_true(mask: NDArray[np.bool_]) -> IntArray:
    out = np.full(len(mask), -1, dtype=np.int64)
    prv = -1
    for i in range(len(mask)):
        out[i] = prv
        if mask[i]:
            prv = i
    return out
