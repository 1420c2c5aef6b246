"""Tests for atsd.store: batching, plan and forecast change detection, retention, totals, crash safety."""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from atsd.config import DaemonConfig
from atsd.core.timegrid import iso_z
from atsd.store import AGGREGATE_STEP_S, CorruptStoreError, Store, StoreError

T0 = datetime(2026, 1, 15, 0, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def store(tmp_path: Path):
    s = Store.open(tmp_path / "state")
    yield s
    s.close()


def plan_doc(generated_at: datetime, first_slot: datetime, modes: str) -> dict[str, object]:
    """A plan document with one 15-minute slot per letter of ``modes`` (O, E, N, B)."""
    names = {"O": "OFF", "E": "ECO", "N": "NORMAL", "B": "BOOST"}
    return {"device_id": "test", "generated_at": iso_z(generated_at), "slot_minutes": 15,
            "schedule": [{"start": iso_z(first_slot + timedelta(minutes=15 * i)), "mode": names[m],
                          "reason": "test"} for i, m in enumerate(modes)],
            "estimated_cost": 1.0}


def test_open_creates_history_db_in_wal_mode_with_synchronous_normal(tmp_path: Path):
    cfg = DaemonConfig(state_dir=tmp_path / "state", raw_retention_days=7, aggregate_retention_days=90)
    with Store.open(cfg.state_dir, cfg) as s:
        assert s.path == tmp_path / "state" / "history.db"
        assert s.raw_retention_days == 7
        assert s.aggregate_retention_days == 90
        assert s._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert s._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL


def test_records_stay_in_memory_until_flush(store: Store):
    store.add_readings(T0, {"indoor_temp_c": 21.5, "outdoor_temp_c": -8.0})
    store.add_decision(T0, "NORMAL", "NORMAL", "plan")
    assert store.pending == 3
    assert store.readings(T0, T0 + timedelta(hours=1)) == []
    assert store.flush() == 3
    assert store.pending == 0
    got = store.readings(T0, T0 + timedelta(hours=1))
    assert [(r.name, r.value) for r in got] == [("indoor_temp_c", 21.5), ("outdoor_temp_c", -8.0)]
    assert store.flush() == 0


def test_readings_filter_by_name_and_half_open_range(store: Store):
    for i in range(10):
        store.add_readings(T0 + timedelta(seconds=30 * i), {"a": float(i), "b": -float(i)})
    store.flush()
    got = store.readings(T0 + timedelta(seconds=60), T0 + timedelta(seconds=150), names=["a"])
    assert [r.value for r in got] == [2.0, 3.0, 4.0]
    assert store.readings(T0, T0 + timedelta(hours=1), names=["never-recorded"]) == []


def test_missing_value_is_kept_as_nan(store: Store):
    store.add_reading(T0, "indoor_temp_c", float("nan"))
    store.add_reading(T0 + timedelta(seconds=30), "indoor_temp_c", None)
    store.flush()
    assert all(math.isnan(r.value) for r in store.readings(T0, T0 + timedelta(minutes=1)))


def test_decisions_round_trip_with_reason_and_rule(store: Store):
    store.add_decision(T0, "NORMAL", "OFF", "indoor 19.9 °C below comfort minimum", overridden=True,
                       rule="comfort_floor")
    store.add_decision(T0 + timedelta(seconds=30), "BOOST", "BOOST", "cheapest 2 h of the day")
    store.flush()
    got = store.decisions(T0, T0 + timedelta(hours=1))
    assert [(d.mode, d.requested, d.overridden, d.rule) for d in got] == [
        ("NORMAL", "OFF", True, "comfort_floor"), ("BOOST", "BOOST", False, None)]
    assert got[0].reason == "indoor 19.9 °C below comfort minimum"
    last = store.last_decision()
    assert last is not None
    assert last.mode == "BOOST"
    before = store.last_decision(before=T0 + timedelta(seconds=30))
    assert before is not None
    assert before.mode == "NORMAL"


def test_plan_is_stored_only_when_it_changes(tmp_path: Path):
    with Store(tmp_path / "h.db") as s:
        assert s.add_plan(plan_doc(T0, T0, "NNBBOONN"))
        # Re-plan at the next slot boundary: the past slot dropped, the rest the same.
        assert not s.add_plan(plan_doc(T0 + timedelta(minutes=15), T0 + timedelta(minutes=15), "NBBOONN"))
        # A mode changes.
        assert s.add_plan(plan_doc(T0 + timedelta(minutes=30), T0 + timedelta(minutes=30), "BBBONN"))
        # New prices extend the horizon.
        assert s.add_plan(plan_doc(T0 + timedelta(minutes=45), T0 + timedelta(minutes=45), "BBONNEE"))
        s.flush()
        latest = s.latest_plan()
        assert latest is not None
        assert latest.generated_at == T0 + timedelta(minutes=45)
        assert [x["mode"] for x in latest.doc["schedule"]][-1] == "ECO"
        assert len(s.plans(T0, T0 + timedelta(days=1))) == 3
    # After a restart the last stored plan is still the reference.
    with Store(tmp_path / "h.db") as s:
        assert not s.add_plan(plan_doc(T0 + timedelta(hours=1), T0 + timedelta(hours=1), "BONNEE"))


def test_plan_accepts_an_object_with_as_json(store: Store):
    class FakePlan:
        def as_json(self) -> dict[str, object]:
            return plan_doc(T0, T0, "NB")

    assert store.add_plan(FakePlan())
    assert not store.add_plan(FakePlan())


def test_forecast_round_trip_and_unchanged_refetch_is_skipped(store: Store):
    values = np.array([41.2, 38.0, np.nan, 55.5])
    prov = {"source": "entsoe", "fallback": False}
    assert store.add_forecast_series(T0, "spot_eur_per_mwh", T0, 900, values, prov)
    assert not store.add_forecast_series(T0 + timedelta(hours=1), "spot_eur_per_mwh", T0, 900, values, prov)
    store.flush()
    rec = store.latest_forecast("spot_eur_per_mwh")
    assert rec is not None
    assert rec.fetched_at == T0
    assert rec.step_s == 900
    assert rec.provenance == prov
    np.testing.assert_array_equal(rec.values, values)
    assert store.latest_forecast("temp_c") is None
    assert len(store.forecasts("spot_eur_per_mwh", T0, T0 + timedelta(days=1))) == 1


def test_forecast_object_is_stored_per_series(store: Store):
    from atsd.core.forecast import PRICE, TEMP, Forecast, Provenance
    from atsd.core.timegrid import Grid

    grid = Grid(T0, 3600, 3)
    fc = Forecast(grid, {PRICE: np.array([1.0, 2.0, 3.0]), TEMP: np.array([-5.0, -6.0, -7.0])},
                  {PRICE: Provenance("entsoe", T0, 60)})
    assert store.add_forecast(T0, fc) == 2
    assert store.add_forecast(T0, fc) == 0
    store.flush()
    rec = store.latest_forecast(PRICE)
    assert rec is not None
    assert rec.provenance["source"] == "entsoe"


def test_state_is_written_at_once_and_survives_reopen(tmp_path: Path):
    with Store(tmp_path / "h.db") as s:
        s.put_state("mode", {"mode": "OFF", "since": iso_z(T0)}, now=T0)
        s.put_state("mode", {"mode": "NORMAL", "since": iso_z(T0)}, now=T0)
        assert s.pending == 0
    with Store(tmp_path / "h.db") as s:
        assert s.get_state("mode") == {"mode": "NORMAL", "since": iso_z(T0)}
        assert s.get_state("absent", 7) == 7


def test_retention_folds_old_readings_into_15_minute_aggregates(tmp_path: Path):
    now = T0 + timedelta(days=40)
    with Store(tmp_path / "h.db", raw_retention_days=30, aggregate_retention_days=35) as s:
        old = T0 + timedelta(days=8)  # 32 days before now: aggregated
        for i in range(60):  # 30 minutes of 30 s readings: two buckets
            s.add_reading(old + timedelta(seconds=30 * i), "indoor_temp_c", 20.0 + (i % 30) / 10)
        s.add_reading(T0, "indoor_temp_c", 5.0)  # 40 days old: past the aggregate retention
        recent = now - timedelta(days=1)
        s.add_reading(recent, "indoor_temp_c", 22.0)
        s.flush()
        res = s.apply_retention(now)
        assert res.aggregated == 61
        assert res.aggregates_deleted == 1
        assert s.readings(old, now) == [s.readings(recent, now)[0]]
        aggs = s.aggregates(T0, now, names=["indoor_temp_c"])
        assert [(a.start, a.count) for a in aggs] == [(old, 30), (old + timedelta(minutes=15), 30),
                                                      (recent - timedelta(seconds=recent.timestamp()
                                                                          % AGGREGATE_STEP_S), 1)]
        assert aggs[0].mean == pytest.approx(21.45)
        assert (aggs[0].min, aggs[0].max) == (20.0, pytest.approx(22.9))
        # Retention again changes nothing.
        assert s.apply_retention(now).aggregated == 0
        assert len(s.aggregates(T0, now)) == 3


def test_retention_thins_old_decisions_to_mode_changes(tmp_path: Path):
    now = T0 + timedelta(days=31)
    with Store(tmp_path / "h.db", raw_retention_days=30) as s:
        modes = ["NORMAL"] * 10 + ["OFF"] * 10 + ["NORMAL"] * 10
        for i, m in enumerate(modes):
            s.add_decision(T0 + timedelta(seconds=30 * i), m, m, "plan")
        s.add_decision(now - timedelta(hours=1), "BOOST", "BOOST", "recent")
        s.add_decision(now - timedelta(hours=1, seconds=-30), "BOOST", "BOOST", "recent")
        s.flush()
        s.apply_retention(now)
        kept = s.decisions(T0, now + timedelta(days=1))
        assert [(d.ts - T0).total_seconds() for d in kept[:3]] == [0, 300, 600]
        assert [d.mode for d in kept] == ["NORMAL", "OFF", "NORMAL", "BOOST", "BOOST"]


def test_retention_keeps_the_latest_plan(tmp_path: Path):
    with Store(tmp_path / "h.db", raw_retention_days=1) as s:
        s.add_plan(plan_doc(T0, T0, "NB"))
        s.add_plan(plan_doc(T0 + timedelta(hours=1), T0 + timedelta(hours=1), "BO"))
        s.flush()
        assert s.apply_retention(T0 + timedelta(days=10)).plans_deleted == 1
        latest = s.latest_plan()
        assert latest is not None
        assert latest.generated_at == T0 + timedelta(hours=1)


def test_totals_count_mode_time_switches_and_sums(store: Store):
    # NORMAL before the day starts, OFF 00:30-01:00, NORMAL after, then silence (daemon down).
    store.add_decision(T0 - timedelta(minutes=5), "NORMAL", "NORMAL", "plan")
    for i in range(120):  # 00:00 .. 01:00 every 30 s
        t = T0 + timedelta(seconds=30 * i)
        mode = "OFF" if 60 <= i < 90 else "NORMAL"
        store.add_decision(t, mode, mode, "plan", overridden=i == 100)
        store.add_readings(t, {"cost_eur": 0.01, "indoor_temp_c": 21.0 + (i % 2)})
    store.flush()
    tot = store.totals(T0, T0 + timedelta(hours=2))
    assert tot.decisions == 120
    assert tot.switches == 2
    assert tot.overridden == 1
    assert tot.mode_s["OFF"] == pytest.approx(900)
    # NORMAL: 00:00-00:30 and 00:45-01:00, plus the last decision's 600 s of validity.
    assert tot.mode_s["NORMAL"] == pytest.approx(1800 + 900 - 30 + 600)
    assert tot.unknown_s == pytest.approx(7200 - sum(tot.mode_s.values()))
    assert tot.readings["cost_eur"].sum == pytest.approx(1.2)
    assert tot.readings["indoor_temp_c"].mean == pytest.approx(21.5)
    assert (tot.readings["indoor_temp_c"].min, tot.readings["indoor_temp_c"].max) == (21.0, 22.0)


def test_day_totals_span_the_local_day(store: Store):
    tz = ZoneInfo("Europe/Helsinki")
    tot = store.day_totals(date(2026, 3, 29), tz)  # spring forward: 23 hours
    assert (tot.end - tot.start) == timedelta(hours=23)
    now = datetime(2026, 3, 29, 10, 0, tzinfo=UTC)
    assert store.day_totals(date(2026, 3, 29), tz, now=now).end == now


def test_latest_record_time_bounds_the_clock(store: Store):
    assert store.latest_record_time() is None
    store.add_reading(T0, "a", 1.0)
    store.add_decision(T0 + timedelta(minutes=1), "NORMAL", "NORMAL", "plan")
    store.flush()
    assert store.latest_record_time() == T0 + timedelta(minutes=1)


def test_failed_flush_keeps_records_for_the_next_one(store: Store):
    store.add_reading(T0, "a", 1.0)
    store._conn.execute("PRAGMA query_only=ON")
    with pytest.raises(StoreError, match="cannot write 1 history records"):
        store.flush()
    assert store.pending == 1
    store._conn.execute("PRAGMA query_only=OFF")
    assert store.flush() == 1
    assert len(store.readings(T0, T0 + timedelta(minutes=1))) == 1


def test_full_buffer_drops_the_oldest_readings_and_says_so_once(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture):
    with Store(tmp_path / "h.db", max_pending=10) as s:
        for i in range(15):
            s.add_reading(T0 + timedelta(seconds=i), "a", float(i))
        assert s.pending == 10
        assert s.dropped == 5
        s.flush()
        assert s.readings(T0, T0 + timedelta(minutes=1))[0].value == 5.0
    messages = [r.getMessage() for r in caplog.records]
    assert sum("History buffer is full" in m for m in messages) == 1
    assert any("5 records were dropped" in m for m in messages)


def test_a_newer_schema_is_refused(tmp_path: Path):
    path = tmp_path / "h.db"
    Store(path).close()
    with sqlite3.connect(path) as c:
        c.execute("PRAGMA user_version=99")
    with pytest.raises(StoreError, match="newer atsd"):
        Store(path)


def test_a_garbage_file_is_refused_with_advice(tmp_path: Path):
    path = tmp_path / "h.db"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(CorruptStoreError, match="move it away"):
        Store(path)


def test_open_with_recover_sets_a_corrupt_file_aside(tmp_path: Path):
    (tmp_path / "history.db").write_bytes(b"not a database at all" * 100)
    with Store.open(tmp_path, recover=True, now=T0) as s:
        s.add_reading(T0, "a", 1.0)
    assert (tmp_path / "history.db.corrupt-20260115T000000Z").read_bytes().startswith(b"not a database")


def test_an_unwritable_place_says_so(tmp_path: Path):
    with pytest.raises(StoreError, match="must exist and be writable"):
        Store(tmp_path / "missing-dir" / "history.db")


_WRITER = """
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from atsd.store import Store

store = Store(Path(sys.argv[1]))
batch = int(sys.argv[2])
t0 = datetime(2026, 1, 1, tzinfo=UTC)
i = 0
while True:
    for _ in range(batch):
        store.add_reading(t0 + timedelta(seconds=i), "indoor_temp_c", 21.0 + i % 7)
        i += 1
    store.add_decision(t0 + timedelta(seconds=i), "NORMAL", "NORMAL", "tick")
    store.flush()
    print(i, flush=True)
"""


def test_kill_9_mid_run_loses_at_most_the_unflushed_batch(tmp_path: Path):
    path = tmp_path / "history.db"
    batch = 500
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(batch)], stdout=subprocess.PIPE,
                            text=True, env=env)
    assert proc.stdout is not None
    acked = 0
    for _ in range(20):  # wait for 20 committed batches, then kill while it keeps writing
        line = proc.stdout.readline()
        assert line, "writer died before being killed"
        acked = int(line)
    proc.send_signal(signal.SIGKILL)
    rest = proc.stdout.read().split()
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    if rest:
        acked = int(rest[-1])

    with sqlite3.connect(path) as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        n = c.execute("SELECT count(*) FROM readings").fetchone()[0]
        d = c.execute("SELECT count(*) FROM decisions").fetchone()[0]
    assert acked <= n <= acked + batch  # every acknowledged batch is there, at most one more
    assert n % batch == 0  # and never part of one
    assert d == n // batch
    with Store(path) as s:  # and the daemon starts again on it
        s.add_reading(datetime(2027, 1, 1, tzinfo=UTC), "indoor_temp_c", 21.0)


def test_retention_thins_old_forecasts_to_one_version_a_day_and_drops_unused_labels(tmp_path: Path):
    now = T0 + timedelta(days=40)
    with Store(tmp_path / "h.db", raw_retention_days=30) as s:
        for h in range(24):  # hourly weather fetches, each different
            s.add_forecast_series(T0 + timedelta(hours=h), "temp_c", T0, 3600, [float(h)] * 4, {})
            s.add_decision(T0 + timedelta(hours=h), "NORMAL", "NORMAL", f"reason number {h}")
        s.add_decision(now, "NORMAL", "NORMAL", "recent")
        s.flush()
        n_labels = s._conn.execute("SELECT count(*) FROM labels").fetchone()[0]
        s.apply_retention(now)
        kept = s.forecasts("temp_c", T0, now)
        assert [r.fetched_at for r in kept] == [T0 + timedelta(hours=23)]
        # Thinning kept the first old decision: one old reason and "recent" remain, plus NORMAL.
        assert s._conn.execute("SELECT count(*) FROM labels").fetchone()[0] == n_labels - 23
        s.add_decision(now + timedelta(seconds=30), "OFF", "OFF", "reason number 5")
        s.flush()
        assert s.last_decision().reason == "reason number 5"


def test_decisions_at_the_same_instant_are_all_kept(store: Store):
    store.add_decision(T0, "NORMAL", "NORMAL", "tick")
    store.flush()
    store.add_decision(T0, "BOOST", "BOOST", "manual override")
    store.add_decision(T0, "BOOST", "BOOST", "tick")
    store.flush()
    got = store.decisions(T0, T0 + timedelta(seconds=1))
    assert [d.reason for d in got] == ["tick", "manual override", "tick"]


def test_benchmark_prints_bytes_per_simulated_day(capsys: pytest.CaptureFixture[str]):
    import importlib.util

    path = REPO / "tests" / "benchmarks" / "bench_store.py"
    spec = importlib.util.spec_from_file_location("bench_store", path)
    assert spec is not None
    assert spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--days", "1"]) == 0
    assert "bytes per simulated day" in capsys.readouterr().out
