from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from atsd.core.timegrid import (
    Grid,
    local_day_bounds,
    local_day_hours,
    parse_utc,
    resample_linear,
    resample_step,
)

HEL = ZoneInfo("Europe/Helsinki")


def test_local_days_have_23_24_25_hours():
    assert local_day_hours(date(2026, 3, 29), HEL) == 23
    assert local_day_hours(date(2026, 10, 25), HEL) == 25
    assert local_day_hours(date(2026, 6, 1), HEL) == 24
    start, end = local_day_bounds(date(2026, 1, 15), HEL)
    assert start == datetime(2026, 1, 14, 22, tzinfo=UTC)
    assert end == datetime(2026, 1, 15, 22, tzinfo=UTC)


def test_hourly_prices_resample_onto_quarter_hours_and_back():
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    src = np.array([0, 3600, 7200], dtype=np.int64) + int(t0.timestamp())
    q = resample_step(src, np.array([10.0, 20.0, 30.0]), 3600, Grid(t0, 900, 12))
    assert q.tolist() == [10.0] * 4 + [20.0] * 4 + [30.0] * 4
    h = resample_step(Grid(t0, 900, 12).epoch_s(), q, 900, Grid(t0, 3600, 4))
    assert h[:3].tolist() == [10.0, 20.0, 30.0]
    assert np.isnan(h[3])


def test_linear_resampling_leaves_long_gaps_unknown():
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    e = int(t0.timestamp())
    src = np.array([e, e + 3600, e + 12 * 3600], dtype=np.int64)
    v = resample_linear(src, np.array([0.0, 4.0, 8.0]), Grid(t0, 3600, 6))
    assert v[0] == pytest.approx(2.0)
    assert np.isnan(v[2])


def test_naive_timestamps_are_refused():
    with pytest.raises(ValueError, match="no time zone"):
        parse_utc("2026-01-01T12:00:00")
    assert parse_utc("2026-01-01T14:00:00+02:00") == datetime(2026, 1, 1, 12, tzinfo=UTC)
