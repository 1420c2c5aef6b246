"""The sanity rules for price days: what must never be believed."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pytest

from atsd.sources import make_series
from atsd.sources.pricecheck import PriceDay, check_day, cross_check, day_bounds_s, expected_slots, split_days

NOW = datetime(2026, 1, 15, tzinfo=UTC)
D1, D2 = date(2026, 1, 14), date(2026, 1, 15)


def day(d: date, values: np.ndarray, source: str = "entsoe", step_s: int = 900) -> PriceDay:
    return PriceDay(d, day_bounds_s(d)[0], step_s, np.asarray(values, dtype=np.float64), source, NOW)


def profile(seed: int, n: int = 96) -> np.ndarray:
    return np.round(np.random.default_rng(seed).uniform(-5, 300, n), 2)


@pytest.mark.parametrize(
    ("d", "step", "n"),
    [
        (date(2026, 3, 29), 900, 92),
        (date(2025, 10, 26), 900, 100),
        (date(2026, 1, 15), 900, 96),
        (date(2026, 3, 29), 3600, 23),
        (date(2025, 10, 26), 3600, 25),
        (date(2026, 1, 15), 3600, 24),
    ],
)
def test_market_day_slot_counts(d: date, step: int, n: int) -> None:
    assert expected_slots(d, step) == n


def test_good_day_is_accepted() -> None:
    assert check_day(day(D2, profile(2)), day(D1, profile(1))) is None


@pytest.mark.parametrize(
    ("values", "words"),
    [
        (np.zeros(96), "zero"),
        (np.r_[profile(2)[:95], 4000.5], "limits"),
        (np.r_[profile(2)[:95], -500.01], "limits"),
        (np.r_[profile(2)[:95], np.nan], "without a price"),
        (profile(2)[:92], "slots where the day has 96"),
        (profile(1), "identical"),
        (np.r_[profile(1)[92:], profile(1)[:92]], "shifted by an hour"),
        (np.r_[profile(1)[4:], profile(1)[:4]], "shifted by an hour"),
    ],
)
def test_bad_day_is_rejected(values: np.ndarray, words: str) -> None:
    why = check_day(day(D2, values), day(D1, profile(1)))
    assert why is not None
    assert words in why


def test_market_limits_themselves_are_allowed() -> None:
    assert check_day(day(D2, np.r_[profile(2)[:94], -500.0, 4000.0]), None) is None


def test_partial_day_is_not_split_into_a_day() -> None:
    a, _ = day_bounds_s(D2)
    raw = make_series("spothinta", {a + 900 * i: 10.0 + i for i in range(48)}, 900, NOW)
    days, rejected = split_days(raw)
    assert days == []
    assert "48 of 96" in rejected[0].reason


def test_cross_check_tolerates_rounding_but_reports_a_disagreement() -> None:
    p = day(D2, profile(2))
    assert cross_check(p, day(D2, profile(2) + 0.05, "spothinta")) is None
    msg = cross_check(p, day(D2, profile(2) * 1.255, "porssisahko"))
    assert msg is not None
    assert "using entsoe" in msg


def test_cross_check_compares_hourly_with_quarter_hourly() -> None:
    q = profile(3)
    hourly = q.reshape(-1, 4).mean(axis=1)
    assert cross_check(day(D2, q), day(D2, hourly, "elering", 3600)) is None
