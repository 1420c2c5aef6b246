"""``atsd calibrate``: fit the house's thermal parameters from logged history (and store them).

A light plugin module: argparse only at import time; numpy and the fit load inside the command.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from atsd.cli import EX_FAIL, EX_OK, EX_USAGE, add_config_arg, command, load_config, parse_start


def _calibrate_args(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--csv", type=Path, help="history CSV: time_utc,indoor_c,outdoor_c[,ghi_w_m2][,heat_w][,elec_w][,mode]")
    src.add_argument("--db", type=Path, help="the daemon's SQLite history database")
    p.add_argument("--start", default=None, help="with --db: first time to use, ISO-8601 UTC")
    p.add_argument("--end", default=None, help="with --db: end of the history, ISO-8601 UTC")
    p.add_argument("--step-min", type=int, default=None,
                   help="grid of the fit in minutes (default: the CSV's own step, within 5..60)")
    p.add_argument("--min-days", type=float, default=3.0, help="refuse shorter histories (default 3)")
    p.add_argument("--json", action="store_true", help="print the fit as JSON")
    p.add_argument("--apply", action="store_true",
                   help="store the fit in the state directory (unless the stored one fits this history better)")
    add_config_arg(p)
    p.add_argument("--state-dir", type=Path, default=None, help="where --apply stores calibration.json "
                   "(default [daemon] state_dir)")


@command("calibrate", "fit UA, heat capacity and solar aperture from logged history")(_calibrate_args)
def cmd_calibrate(args: argparse.Namespace) -> int:
    cfg = load_config(args, demo_ok=True)
    from atsd import calibration as cal_io
    from atsd.core import house
    from atsd.core.calibrate import CalibrationRefused, Limits, fit

    if args.step_min is not None and not 1 <= args.step_min <= 180:
        print(f"atsd calibrate: --step-min must be within 1..180 (got {args.step_min})", file=sys.stderr)
        return EX_USAGE
    step_s = args.step_min * 60 if args.step_min else None
    model = house.thermal_model(cfg)
    try:
        if args.csv is not None:
            h, grid, notes = cal_io.history_from_csv(args.csv, step_s, model.heat_pump, model.design_heat_w)
            source = str(args.csv)
        else:
            h, grid, notes = cal_io.history_from_db(args.db, parse_start(args.start), parse_start(args.end),
                                                    step_s or 900, cfg, model.heat_pump, model.design_heat_w)
            source = str(args.db)
    except cal_io.DataError as exc:
        print(f"atsd calibrate: {exc}", file=sys.stderr)
        return EX_FAIL
    h = cal_io.with_setpoints(h, grid, cfg)
    limits = Limits(min_days=args.min_days)
    now = datetime.now(UTC)
    state_dir = args.state_dir or cfg.daemon.state_dir
    try:
        if args.apply:
            doc, replaced, message = cal_io.refit(cfg, h, grid, state_dir=state_dir, now=now, source=source,
                                                  limits=limits)
        else:
            doc = cal_io.calibration_doc(fit(h, limits), grid, fitted_at=now, source=source, cfg=cfg)
            replaced, message = False, ""
    except CalibrationRefused as exc:
        if args.json:
            print(json.dumps({"refused": True, "reason": exc.reason, "source": source}, indent=1))
        print(f"atsd calibrate: refused: {exc.reason}", file=sys.stderr)
        return EX_FAIL
    doc["notes"] = [*doc["notes"], *notes]
    if args.apply:
        doc["applied"] = replaced
        doc["apply_message"] = message
    if args.json:
        print(json.dumps(doc, indent=1))
    else:
        print(_summary(doc))
        if message:
            print(message)
    return EX_OK


def _summary(doc: dict[str, object]) -> str:
    ci = doc["intervals_95"]
    assert isinstance(ci, dict)

    def line(label: str, key: str, unit: str) -> str:
        e = ci.get(key)
        if not e:
            return f"{label:<24} not fitted"
        return f"{label:<24} {e['value']:>10g} {unit:<8} (95 %: {e['low']:g} .. {e['high']:g})"

    h = doc["history"]
    assert isinstance(h, dict)
    rows = [f"history {h['start']} .. {h['end']}: {doc['days']} days used, {doc['samples']} indoor readings, "
            f"{doc['segments']} segments",
            line("heat loss UA", "ua_w_per_k", "W/K"),
            line("heat capacity C", "capacitance_kwh_per_k", "kWh/K"),
            line("time constant", "tau_h", "h"),
            line("solar aperture", "solar_aperture_m2", "m²"),
            line("internal gains", "internal_gains_w", "W"),
            f"{'multi-step RMSE':<24} {doc['rmse_c']:>10g} K"]
    rates = doc.get("heat_rate_k_per_h")
    if isinstance(rates, dict):
        for mode, e in rates.items():
            rows.append(f"{'heating rate ' + mode:<24} {e['value']:>10g} K/h      (95 %: {e['low']:g} .. {e['high']:g})")
    if doc.get("model_estimate"):
        rows.append(f"MODEL ESTIMATE ({doc.get('relay_model')}): no heat or power series, so UA and C are not "
                    "separately known.")
    notes = doc.get("notes")
    if isinstance(notes, list):
        rows.extend(f"note: {n}" for n in notes)
    return "\n".join(rows)
