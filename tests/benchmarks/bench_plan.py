"""Plan latency: 48 h at 15-minute slots on the bundled demo data (real prices and temperatures).

Run: ``python tests/benchmarks/bench_plan.py [planner ...]``. Prints the median and p95 of repeated
plans per planner. Not a test: timings depend on the machine; the figures go in the notes.
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

from atsd.config import Config
from atsd.core import house
from atsd.core.planner import available, get
from atsd.csvdata import demo_forecast


def main(argv: list[str]) -> int:
    cfg = Config()
    names = argv or available()
    start = datetime(2026, 1, 19, 22, tzinfo=UTC)
    print(f"{'planner':<16} {'median ms':>10} {'p95 ms':>8}  runs  (48 h, 15-min slots, demo data)")
    for name in names:
        fn = get(name)
        times = []
        for day in range(20):
            t0 = start + timedelta(hours=6 * day)
            prob = house.problem(cfg, demo_forecast(t0, 48, 900), 21.0)
            tic = time.perf_counter()
            fn(prob)
            times.append((time.perf_counter() - tic) * 1000)
        times.sort()
        print(f"{name:<16} {statistics.median(times):10.2f} {times[int(0.95 * (len(times) - 1))]:8.2f}  {len(times):4d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
