"""Sanity checks for day-ahead prices, learned from what breaks other spot-price controllers.

Prices are judged per **market day**: SDAC delivery days run in CET/CEST (23:00Z-23:00Z in winter) in
every Nordic and Baltic zone, and a Finnish local day spans two of them. A day is accepted only if it is
complete for its length (23/24/25 hours, 92/96/100 quarter-hours), every price is within the market's
limits, it is not all zeros, and it is neither identical to the previous day nor that day shifted by an
hour (stale data served under a new date, or a time-zone slip). Only accepted days are ever cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from atsd.core.tariff import MARKET_MAX_EUR_PER_MWH, MARKET_MIN_EUR_PER_MWH
from atsd.core.timegrid import local_day_bounds, to_epoch_s
from atsd.sources import RawSeries

MARKET_TZ = ZoneInfo("Europe/Brussels")  # CET/CEST, the SDAC market day
CROSS_CHECK_TOL_EUR_PER_MWH = 0.5  # spot-hinta's 4 decimals of EUR/kWh are 0.1 EUR/MWh steps


@dataclass(frozen=True)
class PriceDay:
    """One market day of prices at ``step_s`` from its first slot ``start_s``."""

    day: date
    start_s: int
    step_s: int
    values: NDArray[np.float64]
    source: str
    fetched_at: datetime

    @property
    def end_s(self) -> int:
        return self.start_s + self.step_s * len(self.values)

    def epoch_s(self) -> NDArray[np.int64]:
        return self.start_s + self.step_s * np.arange(len(self.values), dtype=np.int64)

    def hourly(self) -> NDArray[np.float64]:
        k = 3600 // self.step_s
        return np.asarray(self.values.reshape(-1, k).mean(axis=1), dtype=np.float64)


@dataclass(frozen=True)
class Rejection:
    source: str
    day: date
    reason: str
    edge: bool = False  # a fragment at the start or end of the answer: normal for keyless APIs

    def __str__(self) -> str:
        return f"{self.source}: prices of market day {self.day} rejected: {self.reason}"


def market_day(epoch_s: int) -> date:
    return datetime.fromtimestamp(epoch_s, MARKET_TZ).date()


def day_bounds_s(day: date) -> tuple[int, int]:
    a, b = local_day_bounds(day, MARKET_TZ)
    return to_epoch_s(a), to_epoch_s(b)


def expected_slots(day: date, step_s: int) -> int:
    a, b = day_bounds_s(day)
    return (b - a) // step_s


def split_days(raw: RawSeries) -> tuple[list[PriceDay], list[Rejection]]:
    """Cut a series into market days; incomplete days become rejections (not yet the other checks)."""
    days: list[PriceDay] = []
    rejected: list[Rejection] = []
    if raw.n == 0:
        return days, rejected
    index = {int(t): float(v) for t, v in zip(raw.epoch_s, raw.values, strict=True)}
    first, last = market_day(int(raw.epoch_s[0])), market_day(int(raw.epoch_s[-1]))
    d = first
    while d <= last:
        a, b = day_bounds_s(d)
        n = (b - a) // raw.step_s
        vals = np.array([index.get(a + i * raw.step_s, np.nan) for i in range(n)], dtype=np.float64)
        have = int(np.isfinite(vals).sum())
        if have == n:
            days.append(PriceDay(d, a, raw.step_s, vals, raw.source, raw.fetched_at))
        elif have:
            edge = (d in (first, last)) and bool(
                np.isfinite(vals[-1]) if d == first else np.isfinite(vals[0])
            )
            rejected.append(Rejection(raw.source, d, f"partial day ({have} of {n} slots)", edge))
        d += timedelta(days=1)
    return days, rejected


def check_day(day: PriceDay, prev: PriceDay | None) -> str | None:
    """Why ``day`` must not be believed, or None. ``prev`` is the accepted day before it, if any."""
    v = day.values
    n = expected_slots(day.day, day.step_s)
    if len(v) != n:
        return f"{len(v)} slots where the day has {n}"
    if not np.isfinite(v).all():
        return f"{int((~np.isfinite(v)).sum())} slots without a price"
    lo, hi = float(v.min()), float(v.max())
    if lo < MARKET_MIN_EUR_PER_MWH or hi > MARKET_MAX_EUR_PER_MWH:
        return (
            f"price outside the market's limits {MARKET_MIN_EUR_PER_MWH:g}..{MARKET_MAX_EUR_PER_MWH:g} "
            f"EUR/MWh (min {lo:g}, max {hi:g})"
        )
    if not v.any():
        return "every price is zero"
    if prev is None or prev.day != day.day - timedelta(days=1):
        return None
    a, b = _comparable(day, prev)
    if a is None or b is None:
        return None
    if len(a) == len(b) and np.array_equal(a, b):
        return f"identical to {prev.day}"
    if np.ptp(a) > 0:
        k = 3600 // day.step_s if day.step_s == prev.step_s else 1
        m = min(len(a), len(b))
        for sa, sb in ((a[k:m], b[: m - k]), (a[: m - k], b[k:m])):
            if len(sa) >= 12 and np.array_equal(sa, sb):
                return f"the prices of {prev.day} shifted by an hour"
    return None


def _comparable(a: PriceDay, b: PriceDay) -> tuple[NDArray[np.float64] | None, NDArray[np.float64] | None]:
    if a.step_s == b.step_s:
        return a.values, b.values
    if 3600 % a.step_s or 3600 % b.step_s:
        return None, None
    return a.hourly(), b.hourly()


def cross_check(primary: PriceDay, other: PriceDay, tol: float = CROSS_CHECK_TOL_EUR_PER_MWH) -> str | None:
    """A disagreement between two sources for the same day, as a sentence, or None."""
    a, b = _comparable(primary, other)
    if a is None or b is None or len(a) != len(b):
        return f"{other.source} has a different day length from {primary.source}"
    diff = np.abs(a - b)
    worst = int(np.argmax(diff))
    if diff[worst] > tol:
        return (
            f"{primary.source} and {other.source} disagree on {primary.day}: up to "
            f"{diff[worst]:.2f} EUR/MWh ({a[worst]:g} vs {b[worst]:g}); using {primary.source}"
        )
    return None
