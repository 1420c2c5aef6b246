"""Benchmark: bytes of history per simulated day, and the projected size at full retention.

Simulates what the daemon writes: six readings every 30 s tick, a decision per tick, a re-plan every
15 minutes (stored only when it changed), a day-ahead price forecast once a day and a weather forecast
every hour; a flush every 5 minutes and retention once a day, as the daemon does.

    PYTHONPATH=. python tests/benchmarks/bench_store.py [--days 7] [--plan-change-rate 0.25]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from atsd.core.timegrid import iso_z
from atsd.store import Store

TICK_S = 30
FLUSH_S = 300
SLOT_S = 900
START = datetime(2026, 1, 5, tzinfo=UTC)
MODES = ("OFF", "ECO", "NORMAL", "BOOST")


def plan_doc(now: datetime, modes: list[str], prices: list[float]) -> dict[str, object]:
    """A plan document shaped like ``Plan.as_json()`` (every field a real one carries)."""
    slots = []
    for i, (m, p) in enumerate(zip(modes, prices, strict=True)):
        slots.append({
            "start": iso_z(now + timedelta(seconds=SLOT_S * i)), "mode": m,
            "expected_indoor_temp": round(21.0 + 0.4 * np.sin(i / 9), 2),
            "start_indoor_temp": round(21.0 + 0.4 * np.sin((i - 1) / 9), 2),
            "outdoor_temp": round(-8 + 3 * np.sin(i / 30), 1), "electricity_price": round(p / 1000 + 0.09, 4),
            "spot_eur_per_mwh": round(p, 2), "energy_kwh": round(0.6 + 0.1 * (m == "BOOST"), 3),
            "aux_kwh": 0.0, "cost_eur": round(0.6 * (p / 1000 + 0.09), 4),
            "reason": f"{m}: moderate price {p / 10 + 9:.1f} c/kWh", "price_estimated": False})
    return {"device_id": "bench", "generated_at": iso_z(now), "planner": "greedy", "slot_minutes": 15,
            "schedule": slots, "estimated_cost": 4.12, "baseline_cost": 4.95, "estimated_savings": 0.83,
            "total_energy_kwh": 58.3, "comfort": {"min_c": 20.0, "max_c": 23.0, "feasible": True, "note": ""}}


def simulate(path: Path, days: int, plan_change_rate: float, seed: int = 1) -> Store:
    rng = random.Random(seed)
    store = Store(path)
    n_ticks = days * 86400 // TICK_S
    energy_kwh = 0.0
    horizon: list[tuple[str, float]] = []  # (mode, spot price) per slot from the current slot on
    for k in range(n_ticks):
        now = START + timedelta(seconds=TICK_S * k)
        sec = k * TICK_S
        if sec % 86400 == 12 * 3600 or not horizon:  # day-ahead prices: the horizon grows by a day
            prices = [40 + 30 * np.sin(i / 14) + rng.uniform(-5, 5) for i in range(96)]
            horizon += [(rng.choice(MODES), p) for p in prices]
            store.add_forecast_series(now, "spot_eur_per_mwh", now, SLOT_S, [p for _, p in horizon],
                                      {"source": "entsoe", "resolution_min": 15})
        if sec % 3600 == 0:  # weather every hour
            for series in ("temp_c", "ghi_w_m2", "wind_ms"):
                store.add_forecast_series(now, series, now, 3600, np.round(np.random.default_rng(k).normal(
                    size=72), 1), {"source": "openmeteo", "resolution_min": 60})
        if sec % SLOT_S == 0:
            if k:
                horizon.pop(0)
            if rng.random() < plan_change_rate:
                i = rng.randrange(len(horizon))
                horizon[i] = (rng.choice(MODES), horizon[i][1])
            store.add_plan(plan_doc(now, [m for m, _ in horizon], [p for _, p in horizon]))
        mode = horizon[0][0]
        power_kw = {"OFF": 0.0, "ECO": 1.1, "NORMAL": 1.6, "BOOST": 2.3}[mode] + rng.uniform(-0.05, 0.05)
        energy_kwh += power_kw * TICK_S / 3600
        store.add_readings(now, {
            "indoor_temp_c": round(21 + np.sin(sec / 20000) + rng.choice((-1, 0, 1)) / 16, 4),  # DS18B20
            "outdoor_temp_c": round(-8 + 3 * np.sin(sec / 43200), 2),
            "supply_temp_c": round(35 + rng.uniform(-2, 2), 2),
            "power_kw": round(power_kw, 3),
            "energy_kwh": round(energy_kwh, 3),
            "cost_eur": round(power_kw * TICK_S / 3600 * (horizon[0][1] / 1000 + 0.09), 5),
        })
        store.add_decision(now, mode, mode, f"{mode}: moderate price {horizon[0][1] / 10 + 9:.1f} c/kWh")
        if (k + 1) * TICK_S % FLUSH_S == 0:
            store.flush()
        if (k + 1) * TICK_S % 86400 == 0:
            store.apply_retention(now)
    store.flush()
    return store


def table_bytes(path: Path) -> dict[str, int]:
    try:
        with sqlite3.connect(path) as c:
            return dict(c.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"))
    except sqlite3.Error:  # SQLite built without the dbstat table
        return {}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--plan-change-rate", type=float, default=0.25,
                    help="share of the 15-minute re-plans that change a mode (default 0.25)")
    args = ap.parse_args(argv)
    days = args.days
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "history.db"
        t0 = time.perf_counter()
        store = simulate(path, days, args.plan_change_rate)
        elapsed = time.perf_counter() - t0
        with store._db_lock:
            store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = store.size_bytes()
        n_plans = len(store.plans(START, START + timedelta(days=days + 1)))
        raw = table_bytes(path)
        # Age everything past the raw retention: what remains per day for the 400-day part.
        store.apply_retention(START + timedelta(days=days + store.raw_retention_days + 1))
        with store._db_lock:
            store._conn.execute("VACUUM")
        old = table_bytes(path)
        store.close()
    per_day = size / days
    print(f"simulated {days} days in {elapsed:.1f} s ({days * 86400 // TICK_S} ticks, "
          f"{n_plans} plans stored)")
    print(f"history.db: {size:,} bytes, {per_day:,.0f} bytes per simulated day")
    if raw:
        print(f"  {'table':<22} {'raw':>10} {'aged':>10}  (bytes per day)")
        for name in raw:
            print(f"  {name:<22} {raw[name] / days:>10,.0f} {old.get(name, 0) / days:>10,.0f}")
        aged_per_day = sum(old.values()) / days
        full = 30 * per_day + 370 * aged_per_day
        print(f"aged history: {aged_per_day:,.0f} bytes per day (15-minute aggregates, decisions thinned "
              "to changes, forecasts)")
        print(f"projected at full retention (30 days raw, 400 days aggregates): {full / 1e6:,.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
