"""The UTC slot grid every series and plan lives on, plus local-day and DST helpers.

Inside atsd every timestamp is an aware UTC ``datetime``. A :class:`Grid` is a start, a step and a
count; series on it are plain numpy arrays of that length. Local time (Europe/Helsinki by default)
appears only when a local day, a tariff hour or a comfort schedule is asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ensure_utc(t: datetime) -> datetime:
    """Return ``t`` as aware UTC; a naive ``datetime`` is refused because its zone is a guess."""
    if t.tzinfo is None:
        raise ValueError(f"naive datetime {t.isoformat()} has no time zone; atsd needs aware UTC times")
    return t.astimezone(UTC)


def parse_utc(text: str) -> datetime:
    """Parse ISO-8601 (``Z`` or an offset) into aware UTC; a date alone means its UTC midnight."""
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    t = datetime.fromisoformat(s)
    if t.tzinfo is None:
        if len(s) <= 10:
            return t.replace(tzinfo=UTC)
        raise ValueError(f"timestamp {text!r} has no time zone; write it with Z or an offset")
    return t.astimezone(UTC)


def iso_z(t: datetime) -> str:
    """Format an aware time as ``2026-01-15T12:00:00Z``."""
    return ensure_utc(t).strftime("%Y-%m-%dT%H:%M:%SZ")


def to_epoch_s(t: datetime) -> int:
    return int((ensure_utc(t) - _EPOCH).total_seconds())


def from_epoch_s(s: float) -> datetime:
    return _EPOCH + timedelta(seconds=float(s))


def floor_time(t: datetime, step_s: int) -> datetime:
    """Start of the UTC slot of ``step_s`` seconds containing ``t``."""
    e = to_epoch_s(t)
    return from_epoch_s(e - e % step_s)


def ceil_time(t: datetime, step_s: int) -> datetime:
    f = floor_time(t, step_s)
    return f if f == ensure_utc(t) else f + timedelta(seconds=step_s)


@dataclass(frozen=True, slots=True)
class Grid:
    """``n`` consecutive UTC slots of ``step_s`` seconds starting at ``start``."""

    start: datetime
    step_s: int
    n: int

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.start.utcoffset() != timedelta(0):
            object.__setattr__(self, "start", ensure_utc(self.start))
        if self.step_s <= 0 or self.n < 0:
            raise ValueError(f"grid needs step_s > 0 and n >= 0 (got {self.step_s}, {self.n})")

    @classmethod
    def covering(cls, start: datetime, end: datetime, step_s: int) -> Grid:
        """Slots from the slot containing ``start`` up to (not including) ``end``."""
        s = floor_time(start, step_s)
        n = max(0, -(-(to_epoch_s(end) - to_epoch_s(s)) // step_s))
        return cls(s, step_s, n)

    @property
    def step_h(self) -> float:
        return self.step_s / 3600.0

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.step_s * self.n)

    def time(self, i: int) -> datetime:
        return self.start + timedelta(seconds=self.step_s * i)

    def times(self) -> list[datetime]:
        return [self.time(i) for i in range(self.n)]

    def epoch_s(self) -> NDArray[np.int64]:
        """Slot starts as integer seconds since the epoch (cheap to compare and index)."""
        return to_epoch_s(self.start) + self.step_s * np.arange(self.n, dtype=np.int64)

    def index_of(self, t: datetime) -> int:
        """Index of the slot containing ``t`` (may be out of range: callers check)."""
        return (to_epoch_s(t) - to_epoch_s(self.start)) // self.step_s

    def slice(self, i0: int, i1: int) -> Grid:
        i0 = max(0, i0)
        i1 = min(self.n, i1)
        return Grid(self.time(i0), self.step_s, max(0, i1 - i0))

    def local_hours(self, tz: ZoneInfo) -> FloatArray:
        """Local clock time of each slot start in hours (0..24), for tariff and comfort schedules."""
        out = np.empty(self.n)
        for i, t in enumerate(self.times()):
            lt = t.astimezone(tz)
            out[i] = lt.hour + lt.minute / 60.0
        return out

    def local_dates(self, tz: ZoneInfo) -> list[date]:
        return [t.astimezone(tz).date() for t in self.times()]


def local_day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """UTC start and end of a local calendar day (23, 24 or 25 hours long around DST)."""
    start = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return start, end


def local_day_hours(day: date, tz: ZoneInfo) -> int:
    start, end = local_day_bounds(day, tz)
    return int((end - start).total_seconds() // 3600)


def local_day_grid(day: date, tz: ZoneInfo, step_s: int) -> Grid:
    start, end = local_day_bounds(day, tz)
    return Grid.covering(start, end, step_s)


def resample_step(src_epoch_s: NDArray[np.int64], values: FloatArray, src_step_s: int, grid: Grid) -> FloatArray:
    """Piecewise-constant series (each value holds for ``src_step_s`` from its start) onto ``grid``.

    Each grid slot gets the time-weighted mean of the source values overlapping it; slots not covered
    at all get NaN so the caller sees the gap instead of an invented number.
    """
    out = np.full(grid.n, np.nan)
    if grid.n == 0 or len(values) == 0:
        return out
    order = np.argsort(src_epoch_s)
    s0 = np.asarray(src_epoch_s, dtype=np.int64)[order]
    v = np.asarray(values, dtype=np.float64)[order]
    s1 = s0 + src_step_s
    g0 = grid.epoch_s()
    g1 = g0 + grid.step_s
    # Source slots are sorted and non-overlapping; for each grid slot find the candidate range.
    lo = np.searchsorted(s1, g0, side="right")
    hi = np.searchsorted(s0, g1, side="left")
    for i in range(grid.n):
        a, b = lo[i], hi[i]
        if b <= a:
            continue
        ov = np.minimum(s1[a:b], g1[i]) - np.maximum(s0[a:b], g0[i])
        ok = (ov > 0) & np.isfinite(v[a:b])
        covered = ov[ok].sum()
        if covered >= grid.step_s * 0.999:
            out[i] = float((v[a:b][ok] * ov[ok]).sum() / covered)
    return out


def resample_linear(src_epoch_s: NDArray[np.int64], values: FloatArray, grid: Grid,
                    max_gap_s: int = 3 * 3600) -> FloatArray:
    """Instantaneous samples (temperatures) linearly interpolated to each slot's midpoint.

    Midpoints beyond the samples, or inside a gap longer than ``max_gap_s``, are NaN.
    """
    out = np.full(grid.n, np.nan)
    ok = np.isfinite(values)
    x = np.asarray(src_epoch_s, dtype=np.float64)[ok]
    y = np.asarray(values, dtype=np.float64)[ok]
    if grid.n == 0 or len(x) == 0:
        return out
    order = np.argsort(x)
    x, y = x[order], y[order]
    mid = grid.epoch_s().astype(np.float64) + grid.step_s / 2.0
    inside = (mid >= x[0]) & (mid <= x[-1])
    out[inside] = np.interp(mid[inside], x, y)
    j = np.searchsorted(x, mid, side="right")
    j = np.clip(j, 1, len(x) - 1) if len(x) > 1 else np.zeros_like(j)
    if len(x) > 1:
        gap = x[j] - x[j - 1]
        out[inside & (gap > max_gap_s)] = np.nan
    return out


def sequence_epoch_s(times: Sequence[datetime]) -> NDArray[np.int64]:
    return np.array([to_epoch_s(t) for t in times], dtype=np.int64)
