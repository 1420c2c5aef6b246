"""``atsd forecast``: print the assembled forecast with each series' provenance.

Light at import (argparse and stdlib only); the sources are imported when the command runs.
"""

from __future__ import annotations

import argparse
import json
import sys

from atsd.cli import EX_OK, EX_USAGE, add_config_arg, command, load_config, parse_start

# Series groups of the JSON document's provenance, as the contract names them.
GROUPS = {"price": "spot_eur_per_mwh", "weather": "temp_c", "grid": "co2_g_per_kwh"}


def _forecast_args(p: argparse.ArgumentParser) -> None:
    add_config_arg(p)
    p.add_argument("--start", default=None, help="window start, ISO-8601 (default: now)")
    p.add_argument(
        "--hours",
        type=float,
        default=None,
        help="window length in hours (default: as far as published prices reach)",
    )
    p.add_argument("--json", action="store_true", help="print the forecast document as JSON")
    p.add_argument("--demo", action="store_true", help="bundled demo data instead of the network")
    p.add_argument("--offline", action="store_true", help="do not fetch: use the cache and estimates only")


@command("forecast", "print the price and weather forecast with where each series came from")(_forecast_args)
def cmd_forecast(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime, timedelta

    cfg = load_config(args)
    if args.hours is not None and not 0 < args.hours <= 96:
        print(f"atsd forecast: --hours must be within 0..96 (got {args.hours:g})", file=sys.stderr)
        return EX_USAGE
    start = parse_start(args.start)
    now = datetime.now(UTC)
    step_s = cfg.planner.slot_minutes * 60
    if args.demo:
        from atsd.csvdata import demo_forecast

        fc = demo_forecast(start, int(args.hours or cfg.planner.horizon_hours), step_s)
    else:
        from atsd.sources.forecasts import forecast_for_cli

        t0 = start or now
        end = t0 + timedelta(hours=args.hours) if args.hours is not None else None
        fc = forecast_for_cli(cfg, t0, end, now=now, offline=args.offline)
    if args.json:
        print(json.dumps(forecast_document(fc), indent=1))
    else:
        print(forecast_table(fc, cfg.device.tz))
    return EX_OK


def forecast_document(fc: object) -> dict[str, object]:
    """``Forecast.as_json()`` with provenance also under the group names ``price``, ``weather``, ``grid``."""
    doc: dict[str, object] = fc.as_json()  # type: ignore[attr-defined]
    prov = doc["provenance"]
    assert isinstance(prov, dict)
    grouped = {g: prov[name] for g, name in GROUPS.items() if name in prov}
    doc["provenance"] = {**grouped, **prov}
    return doc


def forecast_table(fc: object, tz: object) -> str:
    import numpy as np

    from atsd.core.forecast import Forecast

    assert isinstance(fc, Forecast)
    names = list(fc.series)
    head = ["local time", *names]
    lines = ["  ".join(f"{h:>16}" for h in head)]
    for i, t in enumerate(fc.grid.times()):
        cells = [t.astimezone(tz).strftime("%a %d.%m %H:%M")]  # type: ignore[arg-type]
        for n in names:
            v = float(fc.series[n][i])
            mark = "~" if fc.is_estimated(n)[i] else " "
            cells.append("-" if not np.isfinite(v) else f"{v:.2f}{mark}")
        lines.append("  ".join(f"{c:>16}" for c in cells))
    lines.append("")
    lines.append("~ = estimate, not published data")
    for n, p in fc.provenance.items():
        when = p.fetched_at.strftime("%Y-%m-%d %H:%MZ") if p.fetched_at else "-"
        flags = (
            ", ".join(f for f, on in (("fallback", p.fallback), ("estimate", p.estimate)) if on) or "primary"
        )
        lines.append(
            f"{n}: {p.source} ({p.resolution_min} min, fetched {when}, {flags})"
            + (f": {p.note}" if p.note else "")
        )
    return "\n".join(lines)
