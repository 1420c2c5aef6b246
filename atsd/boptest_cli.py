"""``atsd bench boptest``: registers the command; the work is in :mod:`atsd.boptest.bench` (imported on use)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from atsd.cli import EX_FAIL, EX_OK, EX_UNAVAILABLE, EX_USAGE, command


def _bench_args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="bench", metavar="BENCH", required=True)
    b = sub.add_parser("boptest", help="atsd in the loop of a BOPTEST test case vs its baseline controller",
                       description="Run a BOPTEST scenario with atsd in the loop and once with the baseline "
                                   "controller; print BOPTEST's KPIs side by side.")
    b.add_argument("--url", required=True, help="BOPTEST server, e.g. http://127.0.0.1:80")
    b.add_argument("--testcase", default="bestest_hydronic_heat_pump")
    b.add_argument("--scenario", default="peak_heat_day", choices=("peak_heat_day", "typical_heat_day"))
    b.add_argument("--price", default="highly_dynamic", choices=("constant", "dynamic", "highly_dynamic"))
    b.add_argument("--step", type=int, default=900, help="control step in seconds: 900 or 3600 (default 900)")
    b.add_argument("--horizon-hours", type=int, default=24, help="planning horizon (default 24)")
    b.add_argument("--planner", default=None, help="default: the configured default planner")
    b.add_argument("--api", default="auto", choices=("auto", "service", "single"),
                   help="BOPTEST API generation: web service with test ids, or single test case (default: detect)")
    b.add_argument("--json", action="store_true", help='print {"atsd": {...}, "baseline": {...}, "scenario": {...}}')


@command("bench", "benchmarks against external plants (bench boptest)")(_bench_args)
def cmd_bench(args: argparse.Namespace) -> int:
    from atsd.boptest import BoptestError
    from atsd.boptest.bench import BenchOptions, run, table
    from atsd.sources import SourceError

    if args.step not in (900, 3600):
        print(f"atsd bench boptest: --step must be 900 or 3600 (got {args.step})", file=sys.stderr)
        return EX_USAGE
    opts = BenchOptions(args.url, args.testcase, args.scenario, args.price, args.step, args.horizon_hours, args.api,
                        args.planner)
    try:
        doc = asyncio.run(run(opts))
    except BoptestError as exc:
        print(f"atsd bench boptest: {exc}", file=sys.stderr)
        return EX_UNAVAILABLE if exc.status == 0 else EX_FAIL
    except (SourceError, ValueError) as exc:
        print(f"atsd bench boptest: {exc}", file=sys.stderr)
        return EX_FAIL
    print(json.dumps(doc, indent=1) if args.json else table(doc))
    return EX_OK
