"""The perfect-foresight bound: the least any planner could pay, as one linear program (HiGHS).

A relaxation of every schedule the planners can produce on the same model, so no planner that keeps
comfort can pay less:

- heat is continuous: any compressor heat up to its capacity and any auxiliary heat up to the
  heater's, in every slot, whatever the modes and switching rules allow;
- the house follows the exact 1R1C step, with the heat entering anywhere in the slot: the effective
  heat lies between ``decay × Q`` (all of it at the start) and ``Q`` (all at the very end);
- electricity for compressor heat ``Q`` is at least ``f(Q)``, the model's own consumption with the
  most optimistic conditions of the slot: indoor air at the comfort minimum (the lowest supply
  temperature a comfortable house allows) and no cycling loss. ``f`` enters as tangent cuts shifted
  down until they lie under ``f`` everywhere, so the bound stays a relaxation even where ``f`` is not
  convex. (A flat ``Drive.cop_best`` would also be valid but assumes zero load at every output, a
  bound no thermostat-driven heat pump can approach; ``flat_cop=True`` gives that variant.)
  Electricity may also be as high as COP 1 with the full cycling loss, so that negative prices
  cannot make the bound exceed a real schedule;
- comfort: the minimum (not the planners' margin above it) at every slot boundary; the end rule
  of a self-contained plan: end no colder than :func:`~atsd.core.plan.end_goal_c` (over a whole
  simulated period, receding-horizon runs are compared with it after valuing the heat they leave).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from atsd.core.plan import PlanProblem, end_goal_c
from atsd.core.thermal import EMITTER_EXPONENT, J_PER_KWH, KELVIN, MAX_COP, MIN_LIFT_K

FloatArray = NDArray[np.float64]
N_CUTS = 12
N_SAMPLES = 97


class BoundError(Exception):
    pass


@dataclass(frozen=True)
class Bound:
    cost_eur: float
    elec_kwh: FloatArray  # per slot
    heat_kwh: FloatArray
    temps_c: FloatArray  # n + 1 slot boundaries
    solve_ms: float
    status: str

    @property
    def energy_kwh(self) -> float:
        return float(self.elec_kwh.sum())

    @property
    def mean_c(self) -> float:
        t = self.temps_c
        return float(np.mean(0.5 * (t[:-1] + t[1:]))) if len(t) > 1 else float(t[0])


def electricity_cuts(problem: PlanProblem, q_max_kwh: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Per slot, ``N_CUTS`` lines ``elec >= a + b × Q`` under the most optimistic consumption ``f(Q)``."""
    model, d = problem.model, problem.drive
    hp = model.heat_pump
    step_h = problem.grid.step_h
    n = problem.n
    frac = np.linspace(0.0, 1.0, N_SAMPLES)
    q = q_max_kwh[:, None] * frac[None, :]  # (n, M) kWh of heat in the slot

    def f(qk: FloatArray) -> FloatArray:
        w = qk * 1000.0 / step_h
        load = np.clip(w / max(model.design_heat_w, 1.0), 0.0, 3.0)
        supply = problem.comfort.min_c[:, None] + (hp.supply_design_c - 20.0) * load ** (
            1.0 / EMITTER_EXPONENT
        )
        lift = np.maximum(MIN_LIFT_K, supply - d.source_c[:, None])
        cop = np.clip(hp.carnot_fraction * (supply + KELVIN) / lift, 1.0, MAX_COP)
        return np.asarray(qk / cop, dtype=np.float64)

    fq = f(q)
    at = np.linspace(0.02, 1.0, N_CUTS)
    qa = q_max_kwh[:, None] * at[None, :]
    h = np.maximum(q_max_kwh[:, None] * 1e-4, 1e-9)
    slope = (f(qa + h) - f(qa - h)) / (2 * h)
    icpt = f(qa) - slope * qa
    # Shift each line down until it lies under every sample of f (valid even where f is not convex).
    over = icpt[:, :, None] + slope[:, :, None] * q[:, None, :] - fq[:, None, :]
    icpt = icpt - np.maximum(0.0, over.max(axis=2)) - 1e-9
    zero = np.zeros((n, 1))
    return np.concatenate([zero, icpt], axis=1), np.concatenate([zero, slope], axis=1)


def _quiet_highs() -> Any:
    """A HiGHS instance without its banner: HiGHS prints it on file descriptor 1 at the first
    construction, before any option can be set, which would corrupt ``--json`` output."""
    import highspy

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            h = highspy.Highs()  # type: ignore[no-untyped-call]
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    h.setOptionValue("output_flag", False)
    return h


def bound(problem: PlanProblem, *, flat_cop: bool = False) -> Bound:
    """Solve the relaxation; raises :class:`BoundError` if HiGHS finds no optimum."""
    import highspy

    n = problem.n
    d, model = problem.drive, problem.model
    if n == 0:
        return Bound(0.0, np.zeros(0), np.zeros(0), np.array([problem.start_c]), 0.0, "empty")
    step_h = problem.grid.step_h
    c_kwh = model.building.capacitance_j_per_k / J_PER_KWH
    ua = model.building.ua_w_per_k
    ranks = [m.rank for m in problem.modes]
    qc_max = np.max(d.comp_cap_w[ranks], axis=0) * step_h / 1000.0
    qa_max = np.max(d.aux_cap_w[ranks], axis=0) * step_h / 1000.0
    a = d.decay
    t_eq = d.outdoor_c + d.gains_w / ua
    price = np.asarray(problem.objective_price(), dtype=np.float64)
    cl = model.heat_pump.cycling_loss
    if flat_cop:
        icpt = np.zeros((n, 1))
        slope = (1.0 / d.cop_best)[:, None]
    else:
        icpt, slope = electricity_cuts(problem, qc_max)
    n_cut = slope.shape[1]

    k = np.arange(n)
    qc, qa, hh, ec, tt = k, n + k, 2 * n + k, 3 * n + k, 4 * n + k  # column indices; tt = T[k+1]
    rows: list[tuple[FloatArray, FloatArray, FloatArray]] = []  # (row ids, col ids, values)
    lo: list[FloatArray] = []
    hi: list[FloatArray] = []
    r0 = 0

    def add(cols: list[tuple[NDArray[Any], Any]], lower: FloatArray, upper: FloatArray) -> None:
        nonlocal r0
        m = len(lower)
        rid = r0 + np.arange(m)
        for c, v in cols:
            rows.append(
                (
                    rid.astype(np.float64),
                    np.asarray(c, dtype=np.float64),
                    np.broadcast_to(v, (m,)).astype(float),
                )
            )
        lo.append(lower)
        hi.append(upper)
        r0 += m

    # Dynamics: T[k+1] - a T[k] - H/C = (1 - a) T_eq  (T[0] is the start, moved to the right side).
    rhs = np.array((1 - a) * t_eq, dtype=np.float64)
    rhs[0] += a[0] * problem.start_c
    add([(tt, 1.0), (hh, -1.0 / c_kwh)], rhs, rhs)
    if n > 1:
        rows.append(((r0 - n + k[1:]).astype(np.float64), (tt[:-1]).astype(np.float64), -a[1:]))
    inf = np.full(n, np.inf)
    add([(hh, 1.0), (qc, -1.0), (qa, -1.0)], -inf, np.zeros(n))  # H <= Q
    add([(hh, 1.0), (qc, -a), (qa, -a)], np.zeros(n), inf)  # H >= decay × Q
    add([(ec, 1.0), (qc, -1.0 / (1.0 - cl))], -inf, np.zeros(n))  # COP >= 1 with full cycling loss
    for j in range(n_cut):
        add([(ec, 1.0), (qc, -slope[:, j])], icpt[:, j], inf)

    r = np.concatenate([x[0] for x in rows]).astype(np.int64)
    c = np.concatenate([x[1] for x in rows]).astype(np.int64)
    v = np.concatenate([x[2] for x in rows])
    order = np.lexsort((c, r))
    r, c, v = r[order], c[order], v[order]
    n_row = r0
    start = np.searchsorted(r, np.arange(n_row + 1))

    col_lo = np.zeros(5 * n)
    col_hi = np.full(5 * n, np.inf)
    col_hi[qc] = qc_max
    col_hi[qa] = qa_max
    col_lo[tt] = problem.comfort.min_c
    col_lo[tt[-1]] = max(float(problem.comfort.min_c[-1]), end_goal_c(problem))
    cost = np.zeros(5 * n)
    cost[ec] = price
    cost[qa] = price

    lp = highspy.HighsLp()
    lp.num_col_ = 5 * n
    lp.num_row_ = n_row
    lp.col_cost_ = cost
    lp.col_lower_ = col_lo
    lp.col_upper_ = col_hi
    lp.row_lower_ = np.concatenate(lo)
    lp.row_upper_ = np.concatenate(hi)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = start
    lp.a_matrix_.index_ = c
    lp.a_matrix_.value_ = v
    h = _quiet_highs()
    h.passModel(lp)
    t0 = time.perf_counter()
    h.run()
    ms = (time.perf_counter() - t0) * 1000.0
    status = h.modelStatusToString(h.getModelStatus())
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise BoundError(f"the bound's linear program has no optimum: {status}")
    x = np.asarray(h.getSolution().col_value)
    elec = x[ec] + x[qa]
    temps = np.concatenate([[problem.start_c], x[tt]])
    return Bound(float(np.sum(elec * price)), elec, x[qc] + x[qa], temps, ms, status)
