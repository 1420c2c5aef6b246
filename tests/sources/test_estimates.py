"""The labelled estimates: finite where they must be, and shaped like the history they come from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from atsd.core.timegrid import Grid
from atsd.sources.estimates import (
    FLAT_PRICE_EUR_PER_MWH,
    MONTHLY_NORMAL_C,
    estimate_co2,
    fill_prices,
    fill_weather,
)

TZ = ZoneInfo("Europe/Helsinki")
T0 = datetime(2026, 1, 15, 22, tzinfo=UTC)  # local midnight


def hist_grid(days: int, step_s: int = 3600) -> Grid:
    return Grid(T0 - timedelta(days=days), step_s, days * 86400 // step_s)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.floats(-500, 4000)), min_size=48, max_size=48),
    st.lists(st.booleans(), min_size=24, max_size=24),
)
def test_price_estimate_fills_every_gap_with_a_finite_value(
    hist: list[float | None], known: list[bool]
) -> None:
    g = Grid(T0, 3600, 24)
    vals = np.where(known, 50.0, np.nan)
    h = np.array([np.nan if v is None else v for v in hist])
    out, mask, note = fill_prices(g, vals, TZ, hist_grid(2), h)
    assert np.isfinite(out).all()
    assert (mask == ~np.array(known)).all()
    assert (out[np.array(known)] == 50.0).all()
    assert note or all(known)


def test_price_profile_repeats_the_daily_shape() -> None:
    shape = np.arange(24, dtype=float) * 10
    out, mask, _ = fill_prices(
        Grid(T0, 3600, 24), np.full(24, np.nan), TZ, hist_grid(2), np.r_[shape, shape + 2]
    )
    assert mask.all()
    assert out.tolist() == (shape + 1).tolist()


def test_price_without_history_is_flat_so_nothing_is_shifted() -> None:
    out, mask, note = fill_prices(Grid(T0, 900, 8), np.full(8, np.nan), TZ, hist_grid(1), np.full(24, np.nan))
    assert (out == FLAT_PRICE_EUR_PER_MWH).all()
    assert mask.all()
    assert "flat" in note


def test_weather_persists_near_and_returns_to_the_diurnal_profile_far() -> None:
    hours = np.arange(48) % 24
    hist_v = -10.0 + 3.0 * np.sin((hours - 8) / 24 * 2 * np.pi)  # local-time diurnal cycle
    g = Grid(T0, 3600, 72)
    out, mask, _ = fill_weather(
        g, np.full(72, np.nan), TZ, hist_grid(2), hist_v, anchor=(int(T0.timestamp()), 0.0)
    )
    assert mask.all()
    assert abs(out[0] - 0.0) < 1.0  # one hour after a 0 °C reading
    assert abs(out[-1] - hist_v[-1]) < 0.5  # three days on: the profile of the same local hour


def test_weather_without_any_data_uses_the_monthly_normal() -> None:
    out, mask, note = fill_weather(
        Grid(T0, 3600, 4), np.full(4, np.nan), TZ, hist_grid(1), np.full(24, np.nan)
    )
    assert mask.all()
    assert (out == MONTHLY_NORMAL_C[0]).all()
    assert "normal" in note


def test_optional_weather_without_data_stays_unknown() -> None:
    out, mask, _ = fill_weather(
        Grid(T0, 3600, 4), np.full(4, np.nan), TZ, hist_grid(1), np.full(24, np.nan), normal=False
    )
    assert np.isnan(out).all()
    assert not mask.any()


def test_co2_estimate_falls_with_forecast_wind() -> None:
    rng = np.random.default_rng(0)
    wind_h = rng.uniform(500, 6000, 72)
    co2_h = 120 - 0.015 * wind_h + rng.normal(0, 1, 72)
    g = Grid(T0, 3600, 24)
    calm, _ = estimate_co2(g, TZ, hist_grid(3), co2_h, wind_h, np.full(24, 500.0))
    windy, note = estimate_co2(g, TZ, hist_grid(3), co2_h, wind_h, np.full(24, 6000.0))
    assert (windy < calm - 50).all()
    assert (windy >= 0).all()
    assert "wind forecast" in note


def test_co2_without_wind_forecast_is_the_hourly_profile() -> None:
    co2_h = np.tile(np.r_[np.full(12, 80.0), np.full(12, 100.0)], 3)
    out, note = estimate_co2(
        Grid(T0, 3600, 24), TZ, hist_grid(3), co2_h, np.full(72, np.nan), np.full(24, np.nan)
    )
    assert np.isfinite(out).all()
    assert sorted(set(np.round(out, 6))) == [80.0, 100.0]
    assert "no wind forecast" in note
