"""Full-winter simulation on the shared real data; prints one table per data set and plant.

    PYTHONPATH=. python tests/benchmarks/bench_winter.py [--data 2023|2026|both] [--plants model|all]
                                                         [--planners all|optimal,...] [--days N]

Data sets (``../shared/data`` by default, or ``--data-dir``):
- 2023: FI hourly day-ahead prices with Helsinki-Vantaa hourly temperatures, 2023-01-01..2023-05-01;
- 2026: FI 15-minute prices 2026-01-01..2026-05-01 with the 2023 temperatures of the same calendar
  dates (2026 has no published weather), labelled as such.
Plants: the model itself, then UA ±20 % × C ±20 % (the planner keeps the nominal model).
Besides the planners and the LP bound, ``optimal-pf`` is the optimal planner run once over the whole
period with perfect foresight and plant = model: the best the modes allow, for reference.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from atsd.config import Config
from atsd.core.timegrid import parse_utc
from atsd.csvdata import read_prices, read_weather
from atsd.simulate import Plant, SimSettings, Simulation, shift_years, sim_inputs, table

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
SETS = {
    "2023": (
        "fi-prices-2023-01-01_2023-09-30-hourly.csv",
        "helsinki-vantaa-weather-2023-01-01_2023-09-30-hourly.csv",
        0,
        "2023-01-01",
        "2023-05-01",
        "FI hourly prices 2023 with Helsinki-Vantaa temperatures 2023",
    ),
    "2026": (
        "fi-prices-2025-10-01_2026-08-22-15min.csv",
        "helsinki-vantaa-weather-2023-01-01_2023-09-30-hourly.csv",
        3,
        "2026-01-01",
        "2026-05-01",
        "FI 15-min prices 2026 with the Helsinki-Vantaa temperatures of the same dates in 2023 "
        "(no 2026 weather)",
    ),
}
PLANTS = [Plant(), Plant(1.2, 1.2), Plant(1.2, 0.8), Plant(0.8, 1.2), Plant(0.8, 0.8)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", choices=("2023", "2026", "both"), default="both")
    ap.add_argument("--plants", choices=("model", "all", "mismatch"), default="model")
    ap.add_argument("--planners", default="all")
    ap.add_argument("--data-dir", type=Path, default=DATA)
    ap.add_argument("--days", type=int, default=None, help="only the first N days")
    ap.add_argument("--json", type=Path, default=None, help="also write all rows to this JSON file")
    ap.add_argument(
        "--sgready",
        action="store_true",
        help="an SG-Ready actuator (NORMAL, BOOST; OFF only with allow_unbounded_block; no ECO), not all four modes",
    )
    args = ap.parse_args()
    names = (
        ["thermostat", "cheapest-hours", "greedy", "optimal"]
        if args.planners == "all"
        else args.planners.split(",")
    )
    plants = {"model": PLANTS[:1], "all": PLANTS, "mismatch": PLANTS[1:]}[args.plants]
    cfg = Config()
    if args.sgready:
        cfg = dataclasses.replace(cfg, actuator=dataclasses.replace(cfg.actuator, kind="sgready_gpio"))
    out = []
    for key in ("2023", "2026") if args.data == "both" else (args.data,):
        pf, wf, years, start, end, label = SETS[key]
        prices = read_prices(args.data_dir / pf)
        weather = shift_years(read_weather(args.data_dir / wf), years)
        s, e = parse_utc(start), parse_utc(end)
        if args.days:
            e = min(e, parse_utc(start) + (parse_utc("2000-01-02") - parse_utc("2000-01-01")) * args.days)
        inp = sim_inputs(cfg, prices, weather, s, e, label)
        for plant in plants:
            sim = Simulation(cfg, inp, SimSettings(plant=plant))
            t0 = time.perf_counter()
            runs = []
            wall = {}
            for name in names:
                t1 = time.perf_counter()
                runs.append(sim.run(name))
                wall[name] = time.perf_counter() - t1
            full = sim.compare_runs(runs, with_bound=True)
            if plant == Plant():
                t1 = time.perf_counter()
                pf_run = sim.perfect_foresight()
                wall["optimal-pf"] = time.perf_counter() - t1
                full = sim.compare_runs([*runs, pf_run], with_bound=True)
            if args.sgready:
                print("actuator: SG-Ready relays, modes " + ", ".join(m.value for m in sim.modes))
            print(table(sim, full))
            weeks = sim.inp.grid.n * sim.inp.grid.step_h / 168.0
            print(
                "wall-clock s per run: "
                + ", ".join(f"{k} {v:.1f}" for k, v in wall.items())
                + "; comfort violation per week: "
                + ", ".join(f"{r.planner} {sim.comfort(r)[0] / weeks:.3f} Kh" for r in full if r.modes)
            )
            print(f"(total {time.perf_counter() - t0:.1f} s)\n")
            sys.stdout.flush()
            for r in full:
                kh, short = sim.comfort(r)
                out.append(
                    {
                        "data": key,
                        "plant": plant.label,
                        "planner": r.planner,
                        "cost_eur": r.total_cost_eur,
                        "savings_pct": r.savings_pct,
                        "savings_shift_pct": r.savings_shift_pct,
                        "mean_indoor_c": r.mean_indoor_c,
                        "end_c": float(r.end_c[-1]),
                        "violation_kh": kh,
                        "violation_kh_per_week": kh / weeks,
                        "max_shortfall_c": short,
                        "switches": r.switches,
                        "overrides": r.overrides,
                        "plans": len(r.plan_ms),
                        "plan_ms_median": float(np.median(r.plan_ms)) if r.plan_ms else 0.0,
                        "wall_s": wall.get(r.planner),
                    }
                )
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
