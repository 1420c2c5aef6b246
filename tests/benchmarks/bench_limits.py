"""Where the savings stop: the modes, a continuously adjustable setpoint, and the LP bound, on one winter.

    PYTHONPATH=. python tests/benchmarks/bench_limits.py [--data 2023|2026|both] [--days N] [--levels-k 0.1]

For the data sets of ``bench_winter.py`` (plant = model, perfect weather) it prints, next to the
thermostat, the receding-horizon ``optimal`` planner and ``optimal-pf`` (the same planner over the
whole period with every price known):

- ``setpoint-pf``: the cheapest schedule on the exact model when the planner may set *any* room
  setpoint from comfort min to the BOOST setpoint (in ``--levels-k`` steps) in every slot, with perfect
  foresight: a dynamic program over the indoor temperature. A falling setpoint gives the partial heat
  the four modes cannot (a thermostat mode heats at full speed, holds, or stops), so this is about the
  best any controller of this heat pump could do on the model.
- ``bound``: the linear program of ``atsd simulate`` (continuous power, the most optimistic COP).
- the bound's own temperature trajectory, followed on the exact model with a setpoint per slot: what
  its schedule really costs; the difference is the relaxation inside the LP (heat may enter at the
  end of a slot, electricity is a lower envelope), not anything a controller could reach.

Memory: the DP keeps slots × levels × temperatures transitions (about 300 MB for a 4-month winter at
15 minutes and 0.1 K).
"""

from __future__ import annotations

import argparse
import math
from datetime import timedelta

import numpy as np

from atsd.config import Config
from atsd.core.modes import Mode
from atsd.core.thermal import J_PER_KWH, Drive
from atsd.core.timegrid import parse_utc
from atsd.csvdata import read_prices, read_weather
from atsd.simulate import Plant, Run, SimSettings, Simulation, shift_years, sim_inputs, table
from tests.benchmarks.bench_winter import DATA, SETS

CHUNK = 96  # slots per vectorised transition call


def setpoint_drive(sim: Simulation, setpoints: np.ndarray) -> Drive:
    """The plant's drive with one row per setpoint row of ``setpoints`` (rows × slots) instead of one
    per mode; the compressor and aux heater behave as under NORMAL, the aux level as under ECO."""
    d = sim.plant_drive
    n_r = setpoints.shape[0]
    cap = np.repeat(d.comp_cap_w[Mode.NORMAL.rank][None], n_r, 0)
    aux = np.repeat(d.aux_cap_w[Mode.NORMAL.rank][None], n_r, 0)
    aux_set = np.repeat(d.aux_set_c[Mode.ECO.rank][None], n_r, 0)
    return Drive(d.grid, d.outdoor_c, d.gains_w, d.target_c, d.min_c, d.max_c, d.decay, d.source_c, cap,
                 setpoints, aux, aux_set, d.cop_best)


def rollout(sim: Simulation, d: Drive, name: str, choose) -> Run:  # type: ignore[no-untyped-def]
    """Run the plant slot by slot, ``choose(k, t)`` giving the setpoint row."""
    n = d.n
    rows = np.empty((5, n))
    t = sim.start_c
    for k in range(n):
        end, mean, qc, qa, kwh = sim.plant.step1(d, k, t, choose(k, t))
        rows[:, k] = (t, end, mean, kwh, (qc + qa) / J_PER_KWH)
        t = end
    return Run(name, [Mode.NORMAL] * n, rows[0], rows[1], rows[2], rows[3], rows[4], rows[3] * sim.price, 0, [], 0)


def setpoint_pf(sim: Simulation, step_k: float) -> Run:
    model = sim.plant
    d0 = sim.plant_drive
    n = d0.n
    lo = float(np.min(d0.min_c))
    hi = float(np.max(d0.comp_set_c[Mode.BOOST.rank]))
    levels = np.round(np.arange(lo, hi + 1e-9, step_k), 6)
    d = setpoint_drive(sim, np.repeat(levels[:, None], n, 1))
    grid = np.concatenate([[lo - 1.0, lo - 0.5, lo - 0.15], np.round(np.arange(lo, hi + 1e-9, 0.05), 6),
                           [hi + 0.5, hi + 2.5]])
    price = sim.price
    c_kwh = model.building.capacitance_j_per_k / J_PER_KWH
    pen = 10.0 * c_kwh * (float(np.max(np.abs(price))) + 0.1)
    goal = sim.start_c
    value = np.zeros((n + 1, len(grid)))
    n_l = len(levels)
    for a in range(((n - 1) // CHUNK) * CHUNK, -1, -CHUNK):
        b = min(n, a + CHUNK)
        res = model.step(d, np.arange(a, b)[:, None, None], grid[None, None, :], np.arange(n_l)[None, :, None])
        stage = res.elec_kwh * price[a:b, None, None] + pen * np.maximum(0.0, d0.min_c[a:b, None, None] - res.end_c)
        if b == n:
            stage[-1] += pen * np.maximum(0.0, goal - res.end_c[-1])
        for k in range(b - 1, a - 1, -1):
            q = stage[k - a] + np.interp(res.end_c[k - a].ravel(), grid, value[k + 1]).reshape(stage[k - a].shape)
            value[k] = q.min(axis=0)

    def choose(k: int, t: float) -> int:
        best, arg = math.inf, 0
        for j in range(n_l):
            end, _m, _c, _a, kwh = model.step1(d, k, t, j)
            q = kwh * price[k] + float(np.interp(end, grid, value[k + 1]))
            if k == n - 1 and end < goal:
                q += pen * (goal - end)
            if q < best:
                best, arg = q, j
        return arg

    return rollout(sim, d, f"setpoint-pf {step_k:g} K", choose)


def follow(sim: Simulation, bound: Run) -> Run:
    """The bound's temperature trajectory as a setpoint per slot, on the exact model."""
    levels = np.maximum(bound.end_c, float(np.min(sim.plant_drive.min_c)))
    d = setpoint_drive(sim, levels[None, :])
    return rollout(sim, d, "bound, followed", lambda k, t: 0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", choices=("2023", "2026", "both"), default="both")
    ap.add_argument("--days", type=int, default=None)
    ap.add_argument("--levels-k", type=float, default=0.1)
    args = ap.parse_args()
    cfg = Config()
    for key in ("2023", "2026") if args.data == "both" else (args.data,):
        pf, wf, years, start, end, label = SETS[key]
        s, e = parse_utc(start), parse_utc(end)
        if args.days:
            e = min(e, s + timedelta(days=args.days))
        inp = sim_inputs(cfg, read_prices(DATA / pf), shift_years(read_weather(DATA / wf), years), s, e, label)
        sim = Simulation(cfg, inp, SimSettings(plant=Plant()))
        runs = [sim.run("thermostat"), sim.run("optimal"), sim.perfect_foresight(), setpoint_pf(sim, args.levels_k)]
        runs = sim.compare_runs(runs, with_bound=True)
        runs = sim.compare_runs([*runs[:-1], follow(sim, runs[-1])], with_bound=True)
        print(table(sim, runs))
        by = {r.planner: r for r in runs}
        sp = by[f"setpoint-pf {args.levels_k:g} K"]
        print(f"optimal reaches {100 * by['optimal'].savings_pct / sp.savings_pct:.0f} % of setpoint-pf's savings; "
              f"the bound's schedule costs {by['bound, followed'].total_cost_eur - by['bound'].total_cost_eur:+.2f} EUR "
              "more on the model than the LP counts\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
