"""Plan latency and single-plan cost of every planner: 48 h at 15-minute slots on real winter data.

    PYTHONPATH=. python tests/benchmarks/bench_planners.py [--windows N] [--hours 48]

Windows start every 12 h over January-April 2026 (FI 15-min prices, with the Helsinki-Vantaa
temperatures of the same dates in 2023, as 2026 has no published weather); the start temperature
cycles through 20.6, 21.0 and 21.8 °C. Each window is planned with all prices known (latency does not
depend on where they come from). Costs are those of the exact simulation of each plan (make_plan);
"bound" is the LP relaxation on the same window.
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

from atsd.config import Config
from atsd.core import house
from atsd.core.plan import make_plan
from atsd.core.planner import get
from atsd.core.planner.bound import bound
from atsd.core.timegrid import Grid, parse_utc
from atsd.csvdata import forecast_from_series, read_prices, read_weather
from atsd.simulate import shift_years

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
PLANNERS = ("thermostat", "cheapest-hours", "greedy", "optimal")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--windows", type=int, default=240)
    ap.add_argument("--hours", type=int, default=48)
    ap.add_argument("--data-dir", type=Path, default=DATA)
    args = ap.parse_args()
    cfg = Config()
    prices = read_prices(args.data_dir / "fi-prices-2025-10-01_2026-08-22-15min.csv")
    weather = shift_years(
        read_weather(args.data_dir / "helsinki-vantaa-weather-2023-01-01_2023-09-30-hourly.csv"), 3
    )
    t0 = parse_utc("2026-01-01")
    grid = Grid.covering(t0, t0 + timedelta(days=125), 900)
    fc_all = forecast_from_series(grid, prices, weather, "bench")
    n = args.hours * 4
    ms: dict[str, list[float]] = {p: [] for p in PLANNERS}
    cost: dict[str, list[float]] = {p: [] for p in [*PLANNERS, "bound"]}
    viol: dict[str, int] = dict.fromkeys(PLANNERS, 0)
    fallback = 0
    starts = (20.6, 21.0, 21.8)
    for w in range(args.windows):
        i0 = w * 48
        if i0 + n > grid.n:
            break
        prob = house.problem(cfg, fc_all.window(i0, i0 + n), starts[w % 3])
        for name in PLANNERS:
            fn = get(name)
            t1 = time.perf_counter()
            dec = fn(prob)
            ms[name].append((time.perf_counter() - t1) * 1000.0)
            plan = make_plan(prob, dec, "bench", prob.grid.start)
            cost[name].append(plan.estimated_cost + plan.stored_heat_adjustment_eur)
            viol[name] += plan.comfort.degree_hours_below_min > 0
            fallback += name == "optimal" and bool(dec.note)
        b = bound(prob)
        cost["bound"].append(b.cost_eur)
        ms.setdefault("bound", []).append(b.solve_ms)
    k = len(ms["optimal"])
    base = np.array(cost["thermostat"])
    b_sav = base - np.array(cost["bound"])
    print(
        f"{k} windows of {args.hours} h at 15 min ({n} slots), Jan-Apr 2026 FI prices, "
        "2023 temperatures of the "
        "same dates; default house"
    )
    print(
        f"{'planner':<15}{'ms median':>10}{'ms p95':>10}{'ms max':>10}{'cost EUR':>10}{'save %':>9}"
        f"{'of bound':>10}{'viol':>6}"
    )
    for name in [*PLANNERS, "bound"]:
        c = np.array(cost[name])
        sav = 100 * (base.sum() - c.sum()) / base.sum()
        share = f"{100 * (base.sum() - c.sum()) / b_sav.sum():.1f} %" if name != "bound" else ""
        t = np.array(ms.get(name) or [np.nan])
        print(
            f"{name:<15}{np.median(t):>10.2f}{np.percentile(t, 95):>10.2f}{np.max(t):>10.2f}{c.sum():>10.2f}"
            f"{sav:>9.2f}{share:>10}{viol.get(name, 0):>6}"
        )
    print(
        "cost: sum over windows, each plan's exact cost plus the value of heat it leaves missing "
        "at the end; "
        f"optimal fell back to greedy's schedule in {fallback} of {k} windows; viol: windows with any "
        "degree-hour below comfort min"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
