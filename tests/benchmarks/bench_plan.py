"""Plan latency: 48 h at 15-minute slots on the bundled demo data (real prices and temperatures).

Run: ``python tests/benchmarks/bench_plan.py [--repeat N] [planner ...]``. Prints, per planner, the
median and p95 of the first plan of each of 20 problems, and the median of each problem's best of N
runs (the figure least disturbed by other load on a shared machine). Not a test: timings depend on
the machine; the figures go in the notes.
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
    repeat = 3
    if "--repeat" in argv:
        i = argv.index("--repeat")
        repeat = max(1, int(argv[i + 1]))
        argv = argv[:i] + argv[i + 2 :]
    names = argv or available()
    start = datetime(2026, 1, 19, 22, tzinfo=UTC)
    print(f"{'planner':<16} {'median ms':>10} {'p95 ms':>8} {'best-of-' + str(repeat) + ' median':>18}  runs"
          "  (48 h, 15-min slots, demo data)")
    for name in names:
        fn = get(name)
        first: list[float] = []
        best: list[float] = []
        for day in range(20):
            t0 = start + timedelta(hours=6 * day)
            prob = house.problem(cfg, demo_forecast(t0, 48, 900), 21.0)
            runs = []
            for _ in range(repeat):
                tic = time.perf_counter()
                fn(prob)
                runs.append((time.perf_counter() - tic) * 1000)
            first.append(runs[0])
            best.append(min(runs))
        first.sort()
        print(f"{name:<16} {statistics.median(first):10.2f} {first[int(0.95 * (len(first) - 1))]:8.2f} "
              f"{statistics.median(best):18.2f}  {len(first):4d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
