"""SQLite history: readings, decisions, forecasts and plans, written in batches so an SD card lasts.

One file, ``<state_dir>/history.db``, in WAL mode with ``synchronous=NORMAL``: a ``kill -9`` loses
nothing committed, and a power cut loses at most the last committed batch, never the file. The
daemon appends records to an in-memory buffer (``add_*``: cheap, safe on the event loop) and calls
:meth:`Store.flush` every ``flush_interval_s`` and on stop; everything else here blocks and is meant
for ``asyncio.to_thread``. Retention keeps raw readings ``raw_retention_days`` (30) and their
15-minute aggregates (mean, min, max, count per name) ``aggregate_retention_days`` (400).

Restart state (the current mode and since when, today's OFF blocks) goes through
:meth:`Store.put_state`, which writes through at once and durably: a restart must never be a way
around a safety rule.

Tables are plain enough to read with the ``sqlite3`` shell; the views ``readings_v`` and
``decisions_v`` show names and times in clear text (plan documents and forecast arrays are
zlib-compressed: read them through this class). Times are UTC epoch seconds, except a decision's
key ``ts_ms`` (milliseconds: unique, so it is the row id and needs no index).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import sqlite3
import threading
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import NDArray

from atsd.core.timegrid import ensure_utc, from_epoch_s, local_day_bounds, parse_utc, to_epoch_s

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from atsd.config import DaemonConfig
    from atsd.core.forecast import Forecast

log = logging.getLogger(__name__)

FILENAME = "history.db"
SCHEMA_VERSION = 1
AGGREGATE_STEP_S = 900  # 15-minute aggregates
# Gap between two decisions above which the time in between is counted as unknown, not as the
# earlier decision's mode (the daemon was down; systemd's ExecStopPost had set NORMAL).
DECISION_GAP_S = 600.0

FloatArray = NDArray[np.float64]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS labels (
    id INTEGER PRIMARY KEY,
    text TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS readings (
    ts INTEGER NOT NULL,
    name_id INTEGER NOT NULL,
    value REAL,
    PRIMARY KEY (ts, name_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS readings_15m (
    bucket INTEGER NOT NULL,
    name_id INTEGER NOT NULL,
    mean REAL NOT NULL,
    min REAL NOT NULL,
    max REAL NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (bucket, name_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS decisions (
    ts_ms INTEGER PRIMARY KEY,
    mode_id INTEGER NOT NULL,
    requested_id INTEGER NOT NULL,
    reason_id INTEGER NOT NULL,
    overridden INTEGER NOT NULL,
    rule_id INTEGER
);
CREATE TABLE IF NOT EXISTS forecasts (
    id INTEGER PRIMARY KEY,
    fetched_at INTEGER NOT NULL,
    series TEXT NOT NULL,
    start INTEGER NOT NULL,
    step_s INTEGER NOT NULL,
    n INTEGER NOT NULL,
    hash TEXT NOT NULL,
    provenance TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS forecasts_series ON forecasts (series, fetched_at);
CREATE TABLE IF NOT EXISTS plans (
    id INTEGER PRIMARY KEY,
    generated_at INTEGER NOT NULL,
    hash TEXT NOT NULL,
    doc BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE VIEW IF NOT EXISTS readings_v AS
    SELECT datetime(r.ts, 'unixepoch') AS time_utc, l.text AS name, r.value
    FROM readings r JOIN labels l ON l.id = r.name_id;
CREATE VIEW IF NOT EXISTS decisions_v AS
    SELECT strftime('%Y-%m-%d %H:%M:%f', d.ts_ms / 1000.0, 'unixepoch') AS time_utc, m.text AS mode,
           q.text AS requested, d.overridden, rl.text AS rule, r.text AS reason
    FROM decisions d JOIN labels m ON m.id = d.mode_id JOIN labels q ON q.id = d.requested_id
    JOIN labels r ON r.id = d.reason_id LEFT JOIN labels rl ON rl.id = d.rule_id;
"""


class StoreError(Exception):
    """The history database cannot be opened or written; the message says which file and why."""


class CorruptStoreError(StoreError):
    """The file is not a usable SQLite database (``Store.open(recover=True)`` sets it aside)."""


# ------------------------------------------------------------------------------------------------
# Records returned by queries
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reading:
    ts: datetime
    name: str
    value: float


@dataclass(frozen=True, slots=True)
class Aggregate:
    """A 15-minute bucket of one reading: ``start`` is the bucket's UTC start."""

    start: datetime
    name: str
    mean: float
    min: float
    max: float
    count: int


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """What the control loop did at ``ts``: ``mode`` applied, ``requested`` by the plan or a user,
    ``overridden`` when the supervisor changed it, by ``rule``."""

    ts: datetime
    mode: str
    requested: str
    reason: str
    overridden: bool = False
    rule: str | None = None


@dataclass(frozen=True, slots=True)
class ForecastRecord:
    fetched_at: datetime
    series: str
    start: datetime
    step_s: int
    values: FloatArray
    provenance: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PlanRecord:
    generated_at: datetime
    hash: str
    doc: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SeriesTotals:
    """Totals of one reading over a period. Per-tick increments (``cost_eur``) add up in ``sum``;
    a cumulative meter's consumption is ``max - min``."""

    count: int
    sum: float
    mean: float
    min: float
    max: float


@dataclass(frozen=True)
class Totals:
    start: datetime
    end: datetime
    readings: dict[str, SeriesTotals] = field(default_factory=dict)
    mode_s: dict[str, float] = field(default_factory=dict)  # seconds spent in each mode
    unknown_s: float = 0.0  # seconds without decisions (daemon down, or before the first)
    switches: int = 0
    overridden: int = 0
    decisions: int = 0


@dataclass(frozen=True, slots=True)
class RetentionResult:
    aggregated: int  # raw readings folded into aggregates and deleted
    aggregates_deleted: int
    decisions_deleted: int
    forecasts_deleted: int
    plans_deleted: int


# Buffered decision: epoch ms, mode, requested, reason, overridden, rule.
_DecisionRow = tuple[int, str, str, str, int, "str | None"]


class _HasPlanJson(Protocol):
    def as_json(self) -> dict[str, object]: ...


# ------------------------------------------------------------------------------------------------
# The store
# ------------------------------------------------------------------------------------------------


class Store:
    """The history database: buffered appends, one transaction per flush, queries for web and CLI.

    Thread-safe: ``add_*`` only touch the buffer under a lock; the connection is used under another,
    so ``flush`` and queries may run in worker threads (``asyncio.to_thread``) while the loop appends.
    """

    def __init__(self, path: Path, *, raw_retention_days: int = 30, aggregate_retention_days: int = 400,
                 max_pending: int = 200_000) -> None:
        self.path = Path(path)
        self.raw_retention_days = raw_retention_days
        self.aggregate_retention_days = aggregate_retention_days
        self.max_pending = max_pending
        self.dropped = 0  # records dropped because the buffer was full (flushes kept failing)
        self._dropped_reported = 0
        self._buf_lock = threading.Lock()
        self._db_lock = threading.Lock()
        self._readings: list[tuple[int, str, float | None]] = []
        self._decisions: list[_DecisionRow] = []
        self._forecasts: list[tuple[int, str, int, int, int, str, str, bytes]] = []
        self._plans: list[tuple[int, str, bytes]] = []
        self._labels: dict[str, int] = {}
        self._last_plan_keys: list[tuple[str, str]] | None = None
        self._last_forecast_hash: dict[str, str] = {}
        self._conn = self._connect()

    @classmethod
    def open(cls, state_dir: Path, config: DaemonConfig | None = None, *, recover: bool = False,
             now: datetime | None = None) -> Store:
        """The store at ``<state_dir>/history.db`` with the config's retention (creating the dir).

        ``recover=True``: a corrupt file is renamed ``history.db.corrupt-<UTC time>`` (with its WAL)
        and a new one started, so a damaged SD card sector costs the history, not the heating.
        """
        state_dir = Path(state_dir)
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{state_dir}: cannot create the state directory: {exc.strerror} "
                             "(check [daemon] state_dir and its permissions)") from exc
        kwargs: dict[str, Any] = {}
        if config is not None:
            kwargs = {"raw_retention_days": config.raw_retention_days,
                      "aggregate_retention_days": config.aggregate_retention_days}
        path = state_dir / FILENAME
        try:
            return cls(path, **kwargs)
        except CorruptStoreError as exc:
            if not recover:
                raise
            stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
            for suffix in ("", "-wal", "-shm"):
                p = Path(f"{path}{suffix}")
                if p.exists():
                    p.rename(f"{path}.corrupt-{stamp}{suffix}")
            log.error("%s Set it aside as %s.corrupt-%s and started a new history.", exc, path.name, stamp)
            return cls(path, **kwargs)

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10.0)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open the history database: {exc} (the state directory "
                             "must exist and be writable by the user atsd runs as)") from exc
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path}: written by a newer atsd (schema {version}, this one knows "
                                 f"{SCHEMA_VERSION}); upgrade atsd or move the file away")
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreError(f"{self.path}: cannot use WAL mode (got {mode}); is it on a network share?")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA journal_size_limit=4194304")  # truncate the WAL back to 4 MB
            conn.execute("PRAGMA temp_store=MEMORY")
            conn.executescript(_SCHEMA)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._labels = {t: i for i, t in conn.execute("SELECT id, text FROM labels")}
            row = conn.execute("SELECT doc FROM plans ORDER BY id DESC LIMIT 1").fetchone()
            if row is not None:
                self._last_plan_keys = _plan_keys(_unpack_json(row[0]))
            for series, h in conn.execute("SELECT series, hash FROM forecasts WHERE id IN "
                                          "(SELECT max(id) FROM forecasts GROUP BY series)"):
                self._last_forecast_hash[series] = h
        except sqlite3.OperationalError as exc:
            conn.close()
            raise StoreError(f"{self.path}: cannot open the history database: {exc} (the state directory "
                             "must exist and be writable by the user atsd runs as)") from exc
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise CorruptStoreError(f"{self.path}: not a usable history database ({exc}); "
                                    "move it away and atsd starts a new one") from exc
        except StoreError:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        """Flush what is pending and close; the WAL is checkpointed into the main file."""
        try:
            self.flush()
        finally:
            with self._db_lock:
                self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- buffered appends (cheap, in memory, safe on the event loop) ---------------------------------

    @property
    def pending(self) -> int:
        """Records waiting for the next flush."""
        with self._buf_lock:
            return len(self._readings) + len(self._decisions) + len(self._forecasts) + len(self._plans)

    def add_reading(self, ts: datetime, name: str, value: float | None) -> None:
        """Queue one reading; NaN or None is kept as NULL (a failed read). Same second and name: the
        last one wins."""
        v = None if value is None or value != value else float(value)
        with self._buf_lock:
            self._readings.append((to_epoch_s(ts), name, v))
            self._trim()

    def add_readings(self, ts: datetime, values: Mapping[str, float | None]) -> None:
        """Queue several readings taken at ``ts``."""
        e = to_epoch_s(ts)
        rows = [(e, n, None if v is None or v != v else float(v)) for n, v in values.items()]
        with self._buf_lock:
            self._readings.extend(rows)
            self._trim()

    def add_decision(self, ts: datetime, mode: str, requested: str, reason: str, *, overridden: bool = False,
                     rule: str | None = None) -> None:
        """Queue what the control loop did at ``ts`` (modes as their names, e.g. ``Mode.BOOST``)."""
        with self._buf_lock:
            self._decisions.append((_epoch_ms(ts), str(mode), str(requested), reason, int(overridden),
                                    rule))
            self._trim()

    def add_forecast_series(self, fetched_at: datetime, series: str, start: datetime, step_s: int,
                            values: Sequence[float] | FloatArray, provenance: Mapping[str, Any]) -> bool:
        """Queue one forecast series unless it equals the last one stored for ``series``.

        Returns True when queued. The comparison covers the grid and the values, not the provenance,
        so an hourly re-fetch of an unchanged forecast costs nothing.
        """
        arr = np.ascontiguousarray(values, dtype="<f8")
        raw = arr.tobytes()
        e_start = to_epoch_s(start)
        h = hashlib.sha256(f"{series}|{e_start}|{step_s}|".encode() + raw).hexdigest()[:32]
        with self._buf_lock:
            if self._last_forecast_hash.get(series) == h:
                return False
            self._last_forecast_hash[series] = h
            self._forecasts.append((to_epoch_s(fetched_at), series, e_start, int(step_s), len(arr), h,
                                    json.dumps(dict(provenance), sort_keys=True, default=str),
                                    zlib.compress(raw, 6)))
        return True

    def add_forecast(self, fetched_at: datetime, forecast: Forecast) -> int:
        """Queue every series of a :class:`~atsd.core.forecast.Forecast` that changed; returns how many."""
        n = 0
        for name, values in forecast.series.items():
            prov = forecast.provenance.get(name)
            n += self.add_forecast_series(fetched_at, name, forecast.grid.start, forecast.grid.step_s, values,
                                          prov.as_json() if prov is not None else {})
        return n

    def add_plan(self, plan: _HasPlanJson | Mapping[str, Any]) -> bool:
        """Queue a plan when it changed; returns True when queued.

        A plan counts as unchanged when its (slot start, mode) schedule is the previous stored plan's
        schedule from the same first slot on: re-planning at every slot boundary drops the past slot,
        which is no change; a different mode anywhere, or a longer horizon (new prices), is one.
        """
        doc = dict(plan) if isinstance(plan, Mapping) else plan.as_json()
        keys = _plan_keys(doc)
        generated_at = doc.get("generated_at")
        if not isinstance(generated_at, str):
            raise ValueError("plan document has no generated_at")
        with self._buf_lock:
            prev = self._last_plan_keys
            if prev is not None and keys:
                tail = [k for k in prev if k[0] >= keys[0][0]]
                if tail == keys:
                    return False
            self._last_plan_keys = keys
            h = hashlib.sha256(json.dumps(keys).encode()).hexdigest()[:32]
            self._plans.append((to_epoch_s(parse_utc(generated_at)), h, _pack_json(doc)))
        return True

    def _trim(self) -> None:
        """Drop the oldest readings and decisions when flushes keep failing (called under the lock)."""
        over = len(self._readings) + len(self._decisions) - self.max_pending
        if over <= 0:
            return
        if self.dropped == self._dropped_reported:
            log.error("History buffer is full (%d records): dropping the oldest until %s can be written.",
                      self.max_pending, self.path)
        k = min(over, len(self._readings))
        del self._readings[:k]
        del self._decisions[:over - k]
        self.dropped += over

    # -- writes (blocking: call through asyncio.to_thread) ---------------------------------------

    def flush(self) -> int:
        """Write every pending record in one transaction; returns how many were written.

        On failure the records go back into the buffer (the next flush retries them) and
        :class:`StoreError` says why.
        """
        with self._buf_lock:
            readings, self._readings = self._readings, []
            decisions, self._decisions = self._decisions, []
            forecasts, self._forecasts = self._forecasts, []
            plans, self._plans = self._plans, []
        n = len(readings) + len(decisions) + len(forecasts) + len(plans)
        if n == 0:
            return 0
        try:
            with self._db_lock:
                new_labels: dict[str, int] = {}
                try:
                    self._conn.execute("BEGIN IMMEDIATE")
                    label = self._label_fn(new_labels)
                    self._conn.executemany(
                        "INSERT OR REPLACE INTO readings (ts, name_id, value) VALUES (?, ?, ?)",
                        [(ts, label(name), v) for ts, name, v in readings])
                    self._conn.executemany(
                        "INSERT INTO decisions (ts_ms, mode_id, requested_id, reason_id, overridden, "
                        "rule_id) VALUES (?, ?, ?, ?, ?, ?)",
                        [(ts, label(m), label(r), label(why), o, None if rule is None else label(rule))
                         for ts, m, r, why, o, rule in self._unique_times(decisions)])
                    self._conn.executemany(
                        "INSERT INTO forecasts (fetched_at, series, start, step_s, n, hash, provenance, "
                        "data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", forecasts)
                    self._conn.executemany(
                        "INSERT INTO plans (generated_at, hash, doc) VALUES (?, ?, ?)", plans)
                    self._conn.execute("COMMIT")
                except BaseException:
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                    raise
                self._labels.update(new_labels)
            if self.dropped > self._dropped_reported:
                log.warning("History is written again; %d records were dropped while it could not be.",
                            self.dropped - self._dropped_reported)
                self._dropped_reported = self.dropped
        except sqlite3.Error as exc:
            with self._buf_lock:
                self._readings[:0] = readings
                self._decisions[:0] = decisions
                self._forecasts[:0] = forecasts
                self._plans[:0] = plans
                self._trim()
            raise StoreError(f"{self.path}: cannot write {n} history records: {exc}") from exc
        return n

    def _unique_times(self, decisions: list[_DecisionRow]) -> list[_DecisionRow]:
        """The decisions with their millisecond keys made unique: a clash moves one 1 ms later."""
        taken: set[int] = set()
        out = []
        for ts, mode, requested, reason, overridden, rule in decisions:
            while ts in taken or self._conn.execute(
                    "SELECT 1 FROM decisions WHERE ts_ms = ?", (ts,)).fetchone() is not None:
                ts += 1
            taken.add(ts)
            out.append((ts, mode, requested, reason, overridden, rule))
        return out

    def _label_fn(self, new: dict[str, int]) -> Callable[[str], int]:
        def label(text: str) -> int:
            i = self._labels.get(text)
            if i is None:
                i = new.get(text)
            if i is None:
                cur = self._conn.execute("INSERT INTO labels (text) VALUES (?)", (text,))
                i = new[text] = int(cur.lastrowid or 0)
            return i

        return label

    def put_state(self, key: str, value: Any, now: datetime | None = None) -> None:
        """Write restart state at once and durably (fsync): the current mode and since when, OFF blocks."""
        text = json.dumps(value, sort_keys=True, default=str)
        updated = to_epoch_s(now if now is not None else datetime.now(UTC))
        try:
            with self._db_lock:
                self._conn.execute("PRAGMA synchronous=FULL")
                try:
                    self._conn.execute(
                        "INSERT INTO state (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) "
                        "DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                        (key, text, updated))
                finally:
                    self._conn.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot write state {key!r}: {exc}") from exc

    def get_state(self, key: str, default: Any = None) -> Any:
        with self._db_lock:
            row = self._conn.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def apply_retention(self, now: datetime) -> RetentionResult:
        """Fold raw readings older than the raw retention into 15-minute aggregates, and expire.

        Decisions older than the raw retention are thinned to the changes (of mode, requested mode or
        override), so the mode history stays complete in a fraction of the space; plans are kept as
        long as raw readings (the latest always); forecasts are thinned to the last version of each
        UTC day and then kept as long as aggregates.
        """
        raw_cut = to_epoch_s(now - timedelta(days=self.raw_retention_days))
        raw_cut -= raw_cut % AGGREGATE_STEP_S  # whole buckets only
        agg_cut = to_epoch_s(now - timedelta(days=self.aggregate_retention_days))
        try:
            with self._db_lock:
                c = self._conn
                c.execute("BEGIN IMMEDIATE")
                try:
                    c.execute(
                        "INSERT INTO readings_15m (bucket, name_id, mean, min, max, count) "
                        "SELECT ts - ts % ?1, name_id, avg(value), min(value), max(value), count(value) "
                        "FROM readings WHERE ts < ?2 GROUP BY 1, 2 HAVING count(value) > 0 "
                        "ON CONFLICT (bucket, name_id) DO UPDATE SET "
                        "mean = (mean * count + excluded.mean * excluded.count) / (count + excluded.count), "
                        "min = min(min, excluded.min), max = max(max, excluded.max), "
                        "count = count + excluded.count",
                        (AGGREGATE_STEP_S, raw_cut))
                    aggregated = c.execute("DELETE FROM readings WHERE ts < ?", (raw_cut,)).rowcount
                    agg_deleted = c.execute("DELETE FROM readings_15m WHERE bucket < ?", (agg_cut,)).rowcount
                    dec_deleted = c.execute("DELETE FROM decisions WHERE ts_ms < ?",
                                            (agg_cut * 1000,)).rowcount
                    dec_deleted += c.execute(
                        "DELETE FROM decisions WHERE ts_ms IN (SELECT ts_ms FROM (SELECT ts_ms, k, "
                        "lag(k) OVER (ORDER BY ts_ms) AS prev FROM (SELECT ts_ms, "
                        "mode_id || '|' || requested_id || '|' || overridden AS k "
                        "FROM decisions WHERE ts_ms < ?)) WHERE k = prev)", (raw_cut * 1000,)).rowcount
                    fc_deleted = c.execute(
                        "DELETE FROM forecasts WHERE fetched_at < ? AND id NOT IN "
                        "(SELECT max(id) FROM forecasts GROUP BY series)", (agg_cut,)).rowcount
                    fc_deleted += c.execute(  # past the raw retention, the day's last version only
                        "DELETE FROM forecasts WHERE fetched_at < ? AND id NOT IN "
                        "(SELECT max(id) FROM forecasts GROUP BY series, fetched_at / 86400)",
                        (raw_cut,)).rowcount
                    plans_deleted = c.execute(
                        "DELETE FROM plans WHERE generated_at < ? AND id != (SELECT max(id) FROM plans)",
                        (raw_cut,)).rowcount
                    # Labels no row refers to any more (old plan reasons, retired sensor names).
                    c.execute("DELETE FROM labels WHERE id NOT IN (SELECT name_id FROM readings) "
                              "AND id NOT IN (SELECT name_id FROM readings_15m) "
                              "AND id NOT IN (SELECT reason_id FROM decisions) "
                              "AND id NOT IN (SELECT mode_id FROM decisions) "
                              "AND id NOT IN (SELECT requested_id FROM decisions) "
                              "AND id NOT IN (SELECT rule_id FROM decisions WHERE rule_id IS NOT NULL)")
                    c.execute("COMMIT")
                except BaseException:
                    if c.in_transaction:
                        c.execute("ROLLBACK")
                    raise
                finally:
                    self._labels = {t: i for i, t in c.execute("SELECT id, text FROM labels")}
                c.execute("PRAGMA optimize")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: retention failed: {exc}") from exc
        return RetentionResult(aggregated, agg_deleted, dec_deleted, fc_deleted, plans_deleted)

    # -- queries (blocking: call through asyncio.to_thread) --------------------------------------

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        try:
            with self._db_lock:
                return self._conn.execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: query failed: {exc}") from exc

    def _name_filter(self, names: Iterable[str] | None) -> tuple[str, list[int]] | None:
        """SQL and ids restricting to ``names``; None when no asked name was ever recorded."""
        if names is None:
            return "", []
        with self._db_lock:
            ids = [self._labels[n] for n in names if n in self._labels]
        if not ids:
            return None
        return f" AND name_id IN ({','.join('?' * len(ids))})", ids

    def readings(self, start: datetime, end: datetime, names: Iterable[str] | None = None) -> list[Reading]:
        """Raw readings with ``start <= ts < end`` (only the raw retention period has them), by time."""
        flt = self._name_filter(names)
        if flt is None:
            return []
        rows = self._query(
            "SELECT r.ts, l.text, r.value FROM readings r JOIN labels l ON l.id = r.name_id "
            f"WHERE r.ts >= ? AND r.ts < ?{flt[0]} ORDER BY r.ts, l.text",
            [to_epoch_s(start), to_epoch_s(end), *flt[1]])
        return [Reading(from_epoch_s(ts), n, float("nan") if v is None else v) for ts, n, v in rows]

    def aggregates(self, start: datetime, end: datetime,
                   names: Iterable[str] | None = None) -> list[Aggregate]:
        """15-minute aggregates of the buckets starting in ``[start, end)``, by time then name.

        Covers the whole history: stored aggregates for old periods, computed from raw readings for
        the recent ones.
        """
        flt = self._name_filter(names)
        if flt is None:
            return []
        s = to_epoch_s(start)
        s -= s % AGGREGATE_STEP_S
        e = to_epoch_s(end)
        rows = self._query(
            "SELECT bucket, name_id, mean, min, max, count FROM readings_15m "
            f"WHERE bucket >= ? AND bucket < ?{flt[0]} "
            "UNION ALL "
            "SELECT ts - ts % ?, name_id, avg(value), min(value), max(value), count(value) FROM readings "
            f"WHERE ts >= ? AND ts < ?{flt[0]} GROUP BY 1, 2 HAVING count(value) > 0",
            [s, e, *flt[1], AGGREGATE_STEP_S, s, e, *flt[1]])
        merged: dict[tuple[int, int], tuple[float, float, float, int]] = {}
        for bucket, name_id, mean, lo, hi, n in rows:
            old = merged.get((bucket, name_id))
            if old is not None:  # readings that arrived after their bucket was aggregated
                m0, lo0, hi0, n0 = old
                mean, lo, hi, n = (m0 * n0 + mean * n) / (n0 + n), min(lo0, lo), max(hi0, hi), n0 + n
            merged[(bucket, name_id)] = (mean, lo, hi, n)
        with self._db_lock:
            names_by_id = {i: t for t, i in self._labels.items()}
        out = [Aggregate(from_epoch_s(b), names_by_id.get(i, f"#{i}"), m, lo, hi, n)
               for (b, i), (m, lo, hi, n) in merged.items()]
        out.sort(key=lambda a: (a.start, a.name))
        return out

    def decisions(self, start: datetime, end: datetime) -> list[DecisionRecord]:
        """Decisions with ``start <= ts < end``, oldest first."""
        return self._decision_rows("WHERE d.ts_ms >= ? AND d.ts_ms < ? ORDER BY d.ts_ms",
                                   (_epoch_ms(start), _epoch_ms(end)))

    def last_decision(self, before: datetime | None = None) -> DecisionRecord | None:
        """The latest decision (before ``before`` when given): the mode in force at a restart."""
        if before is None:
            rows = self._decision_rows("ORDER BY d.ts_ms DESC LIMIT 1", ())
        else:
            rows = self._decision_rows("WHERE d.ts_ms < ? ORDER BY d.ts_ms DESC LIMIT 1",
                                       (_epoch_ms(before),))
        return rows[0] if rows else None

    def _decision_rows(self, tail: str, params: tuple[int, ...]) -> list[DecisionRecord]:
        rows = self._query(
            "SELECT d.ts_ms, m.text, q.text, r.text, d.overridden, rl.text FROM decisions d "
            "JOIN labels m ON m.id = d.mode_id JOIN labels q ON q.id = d.requested_id "
            "JOIN labels r ON r.id = d.reason_id LEFT JOIN labels rl ON rl.id = d.rule_id " + tail, params)
        return [DecisionRecord(from_epoch_s(ts / 1000), m, req, why, bool(o), rule)
                for ts, m, req, why, o, rule in rows]

    def latest_plan(self) -> PlanRecord | None:
        """The last stored plan (the current one, unless it changed since the last flush)."""
        rows = self._query("SELECT generated_at, hash, doc FROM plans ORDER BY id DESC LIMIT 1")
        if not rows:
            return None
        ts, h, doc = rows[0]
        return PlanRecord(from_epoch_s(ts), h, _unpack_json(doc))

    def plans(self, start: datetime, end: datetime) -> list[PlanRecord]:
        """Stored plans generated in ``[start, end)``, oldest first."""
        rows = self._query("SELECT generated_at, hash, doc FROM plans WHERE generated_at >= ? AND "
                           "generated_at < ? ORDER BY id", (to_epoch_s(start), to_epoch_s(end)))
        return [PlanRecord(from_epoch_s(ts), h, _unpack_json(doc)) for ts, h, doc in rows]

    def forecasts(self, series: str, start: datetime, end: datetime) -> list[ForecastRecord]:
        """Stored versions of one forecast series fetched in ``[start, end)``, oldest first."""
        rows = self._query(
            "SELECT fetched_at, series, start, step_s, provenance, data FROM forecasts "
            "WHERE series = ? AND fetched_at >= ? AND fetched_at < ? ORDER BY fetched_at, id",
            (series, to_epoch_s(start), to_epoch_s(end)))
        return [_forecast_record(r) for r in rows]

    def latest_forecast(self, series: str) -> ForecastRecord | None:
        rows = self._query(
            "SELECT fetched_at, series, start, step_s, provenance, data FROM forecasts WHERE series = ? "
            "ORDER BY id DESC LIMIT 1", (series,))
        return _forecast_record(rows[0]) if rows else None

    def latest_record_time(self) -> datetime | None:
        """Time of the newest reading or decision: a system clock earlier than this is wrong."""
        rows = self._query("SELECT max(t) FROM (SELECT max(ts) AS t FROM readings UNION ALL "
                           "SELECT max(ts_ms) / 1000 FROM decisions UNION ALL "
                           "SELECT max(bucket) FROM readings_15m)")
        t = rows[0][0] if rows else None
        return None if t is None else from_epoch_s(t)

    def totals(self, start: datetime, end: datetime, *, gap_s: float = DECISION_GAP_S) -> Totals:
        """Readings totals and time per mode in ``[start, end)``.

        The mode at ``start`` is the last decision before it; a decision holds until the next one,
        for at most ``gap_s`` (longer silences count as unknown).
        """
        per: dict[str, list[float]] = {}
        for a in self.aggregates(start, end):
            acc = per.setdefault(a.name, [0, 0.0, float("inf"), float("-inf")])
            acc[0] += a.count
            acc[1] += a.mean * a.count
            acc[2] = min(acc[2], a.min)
            acc[3] = max(acc[3], a.max)
        readings = {n: SeriesTotals(int(c), s, s / c, lo, hi) for n, (c, s, lo, hi) in per.items() if c}

        s_e, e_e = to_epoch_s(start), to_epoch_s(end)
        decisions = self.decisions(start, end)
        prior = self.last_decision(before=start)
        timeline = [(to_epoch_s(d.ts), d.mode) for d in decisions]
        if prior is not None:
            timeline.insert(0, (to_epoch_s(prior.ts), prior.mode))
        mode_s: dict[str, float] = {}
        for i, (t, mode) in enumerate(timeline):
            nxt = timeline[i + 1][0] if i + 1 < len(timeline) else e_e
            held = min(nxt, t + gap_s, e_e) - max(t, s_e)
            if held > 0:
                mode_s[mode] = mode_s.get(mode, 0.0) + held
        switches = sum(1 for (_, a), (_, b) in itertools.pairwise(timeline) if a != b)
        return Totals(start, end, readings, mode_s, max(0.0, (e_e - s_e) - sum(mode_s.values())), switches,
                      sum(d.overridden for d in decisions), len(decisions))

    def day_totals(self, day: date, tz: ZoneInfo, now: datetime | None = None) -> Totals:
        """Totals of a local calendar day (23 to 25 hours), up to ``now`` when the day is running."""
        start, end = local_day_bounds(day, tz)
        if now is not None and now < end:
            end = max(start, now)
        return self.totals(start, end)

    def size_bytes(self) -> int:
        """Bytes on disk: the database and its write-ahead log."""
        total = 0
        for suffix in ("", "-wal"):
            p = Path(f"{self.path}{suffix}")
            if p.exists():
                total += p.stat().st_size
        return total


def _epoch_ms(t: datetime) -> int:
    return round(ensure_utc(t).timestamp() * 1000)


def _plan_keys(doc: Mapping[str, Any]) -> list[tuple[str, str]]:
    schedule = doc.get("schedule") or []
    return [(str(s["start"]), str(s["mode"])) for s in schedule]


def _pack_json(doc: Mapping[str, Any]) -> bytes:
    return zlib.compress(json.dumps(doc, separators=(",", ":"), default=str).encode(), 6)


def _unpack_json(blob: bytes) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(zlib.decompress(blob))
    return out


def _forecast_record(row: tuple[Any, ...]) -> ForecastRecord:
    fetched_at, series, start, step_s, prov, data = row
    values = np.frombuffer(zlib.decompress(data), dtype="<f8").astype(np.float64)
    return ForecastRecord(from_epoch_s(fetched_at), series, from_epoch_s(start), step_s, values,
                          json.loads(prov))


__all__ = ["AGGREGATE_STEP_S", "FILENAME", "Aggregate", "CorruptStoreError", "DecisionRecord",
           "ForecastRecord", "PlanRecord", "Reading", "RetentionResult", "SeriesTotals", "Store",
           "StoreError", "Totals"]
