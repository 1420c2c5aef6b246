"""Calibration: the fit recovers the parameters of houses the thermal model generates, and refuses data
that cannot identify them."""

from __future__ import annotations

import functools
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atsd.core.calibrate import CalibrationRefused, History, Limits, fit, score
from atsd.core.modes import Mode
from atsd.core.timegrid import Grid, resample_step

from . import histories as hist

UA, C_KWH, GAINS = 160.0, 5.0, 350.0


def rel(a: float, b: float) -> float:
    return abs(a / b - 1.0)


def test_recovers_ua_and_capacitance_within_10_percent_from_noisy_history():
    h, _m = hist.standard(14.0, seed=1)
    cal = fit(h)
    assert cal.ua_w_per_k is not None
    assert cal.capacitance_kwh_per_k is not None
    assert rel(cal.ua_w_per_k.value, UA) < 0.10
    assert rel(cal.capacitance_kwh_per_k.value, C_KWH) < 0.10
    assert rel(cal.tau_h.value, C_KWH * 3.6e6 / UA / 3600) < 0.10
    assert cal.internal_gains_w is not None
    assert abs(cal.internal_gains_w.value - GAINS) < 100
    assert not cal.model_estimate
    # the multi-step residual is the sensor noise (0.1 K), not drift
    assert 0.08 < cal.rmse_c < 0.13


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_true_values_lie_inside_the_95_percent_intervals(seed):
    h, _m = hist.standard(10.0, seed=seed)
    cal = fit(h)
    assert cal.ua_w_per_k is not None
    assert cal.capacitance_kwh_per_k is not None
    assert cal.ua_w_per_k.low <= UA <= cal.ua_w_per_k.high
    assert cal.capacitance_kwh_per_k.low <= C_KWH <= cal.capacitance_kwh_per_k.high
    assert cal.ua_w_per_k.low < cal.ua_w_per_k.value < cal.ua_w_per_k.high


def test_recovers_parameters_through_gaps_and_lost_readings():
    rng = np.random.default_rng(8)
    h, _m = hist.standard(21.0, seed=8)
    gappy = hist.punch_gaps(h, rng, count=20)
    assert np.isnan(gappy.outdoor_c).sum() > 100
    cal = fit(gappy)
    assert cal.ua_w_per_k is not None
    assert cal.capacitance_kwh_per_k is not None
    assert rel(cal.ua_w_per_k.value, UA) < 0.10
    assert rel(cal.capacitance_kwh_per_k.value, C_KWH) < 0.10
    assert cal.segments > 21  # the gaps cut the history into more segments


def test_recovers_solar_aperture_with_a_ghi_series():
    rng = np.random.default_rng(5)
    model = hist.true_model(aperture_m2=6.0)
    grid, out = hist.outdoor(hist.START, 21.0)
    ghi = hist.clear_sky_ghi(grid, rng)
    h = hist.simulate_history(model, grid, out, hist.mode_mix(grid.n, rng), ghi=ghi, rng=rng)
    cal = fit(h)
    assert cal.solar_aperture_m2 is not None
    assert cal.ua_w_per_k is not None
    assert rel(cal.solar_aperture_m2.value, 6.0) < 0.10
    assert rel(cal.ua_w_per_k.value, UA) < 0.10
    assert cal.overrides()["solar_aperture_m2"] == pytest.approx(cal.solar_aperture_m2.value)


def test_hourly_history_fits_too():
    h, _m = hist.standard(14.0, seed=9)
    fine = Grid(hist.START, 900, h.n)
    coarse = Grid(hist.START, 3600, h.n // 4)
    ep = fine.epoch_s()
    hourly = History(3600, h.indoor_c[::4].copy(), resample_step(ep, h.outdoor_c, 900, coarse), None,
                     resample_step(ep, h.heat_w, 900, coarse))
    cal = fit(hourly)
    assert cal.ua_w_per_k is not None
    assert cal.capacitance_kwh_per_k is not None
    assert rel(cal.ua_w_per_k.value, UA) < 0.10
    assert rel(cal.capacitance_kwh_per_k.value, C_KWH) < 0.10


def test_relay_only_fits_time_constant_and_heating_rate_per_mode():
    rng = np.random.default_rng(6)
    grid, out = hist.outdoor(hist.START, 14.0)
    model = hist.true_model(gains_w=300.0)
    heat = {Mode.OFF: 0.0, Mode.ECO: 2500.0, Mode.NORMAL: 4500.0, Mode.BOOST: 6500.0}
    h = hist.simulate_history(model, grid, out, hist.mode_mix(grid.n, rng), rng=rng, fixed_heat_w=heat)
    assert h.relay_only
    cal = fit(h)
    assert cal.model_estimate
    assert cal.ua_w_per_k is None
    assert cal.capacitance_kwh_per_k is None
    assert rel(cal.tau_h.value, C_KWH * 3.6e6 / UA / 3600) < 0.10
    for mode, q in heat.items():
        true_rate = (q + 300.0) / (C_KWH * 1000.0)  # K/h: (mode heat + internal gains) / C
        assert rel(cal.heat_rate_k_per_h[mode.value].value, true_rate) < 0.10
    doc = cal.as_json()
    assert doc["model_estimate"] is True
    assert doc["ua_w_per_k"] is None
    assert "model estimate" in " ".join(doc["notes"])  # type: ignore[arg-type]
    assert cal.overrides() == {}


@pytest.mark.parametrize("seed", [1, 2])
def test_relay_only_thermostat_house_fits_time_constant_and_compressor_rate(seed):
    # A heat pump that holds each mode's setpoint itself; only the relay mode is logged.
    rng = np.random.default_rng(seed)
    grid, out = hist.outdoor(hist.START, 14.0)
    h = hist.simulate_history(hist.true_model(aux_w=0.0), grid, out, hist.mode_mix(grid.n, rng), rng=rng)
    cal = fit(replace(h, heat_w=None))
    assert cal.model_estimate
    assert cal.relay_model == "thermostat"
    assert rel(cal.tau_h.value, C_KWH * 3.6e6 / UA / 3600) < 0.10
    compressor_rate = (8000.0 + GAINS) / (C_KWH * 1000.0)  # K/h below the setpoint
    for mode in ("ECO", "NORMAL", "BOOST"):
        assert rel(cal.heat_rate_k_per_h[mode].value, compressor_rate) < 0.10
    assert cal.heat_rate_k_per_h["OFF"].value < 0.2  # gains only
    assert cal.tau_h.low < cal.tau_h.value < cal.tau_h.high


def test_relay_fit_prefers_the_model_that_explains_the_history():
    rng = np.random.default_rng(6)
    grid, out = hist.outdoor(hist.START, 10.0)
    heat = {Mode.OFF: 0.0, Mode.ECO: 2500.0, Mode.NORMAL: 4500.0, Mode.BOOST: 6500.0}
    fixed = hist.simulate_history(hist.true_model(), grid, out, hist.mode_mix(grid.n, rng), rng=rng,
                                  fixed_heat_w=heat)
    assert fit(fixed).relay_model == "fixed heat per mode"


def test_refuses_a_history_shorter_than_three_days():
    h, _m = hist.standard(2.5, seed=1)
    with pytest.raises(CalibrationRefused, match="too short"):
        fit(h)


def test_refuses_flat_indoor_with_constant_heat():
    h, _m = hist.standard(7.0, seed=1)
    rng = np.random.default_rng(1)
    flat = replace(h, indoor_c=21.0 + rng.normal(0, 0.01, h.n), heat_w=np.full(h.n, 3000.0))
    with pytest.raises(CalibrationRefused, match="no excitation"):
        fit(flat)


def test_refuses_constant_heat_even_when_indoor_moves():
    h, _m = hist.standard(7.0, seed=1)
    with pytest.raises(CalibrationRefused, match="no excitation"):
        fit(replace(h, heat_w=np.zeros(h.n)))


def test_refuses_a_history_mostly_made_of_gaps():
    h, _m = hist.standard(10.0, seed=1)
    out = h.outdoor_c.copy()
    out[: int(h.n * 0.5)] = np.nan
    with pytest.raises(CalibrationRefused, match="too many gaps"):
        fit(replace(h, outdoor_c=out))


def test_refuses_gaps_that_leave_no_long_enough_stretch():
    h, _m = hist.standard(6.0, seed=1)
    out = h.outdoor_c.copy()
    out[::8] = np.nan  # a gap every two hours, the limit asks for 3 h stretches
    with pytest.raises(CalibrationRefused):
        fit(replace(h, outdoor_c=out), Limits(min_coverage=0.5))


def test_refuses_relay_history_with_one_mode_only():
    h, _m = hist.standard(7.0, seed=1)
    with pytest.raises(CalibrationRefused, match="one mode"):
        fit(replace(h, heat_w=None, mode_rank=np.full(h.n, Mode.NORMAL.rank)))


def test_refuses_without_heat_and_modes():
    h, _m = hist.standard(7.0, seed=1)
    with pytest.raises(CalibrationRefused, match="heat_w"):
        fit(replace(h, heat_w=None, mode_rank=None))


def test_refuses_ill_conditioned_data():
    h, _m = hist.standard(7.0, seed=1)
    # A GHI that never changes is indistinguishable from the internal gains.
    with pytest.raises(CalibrationRefused, match="ill-conditioned"):
        fit(replace(h, ghi_w_m2=np.full(h.n, 100.0)))


def test_refuses_heat_that_only_mirrors_the_weather():
    h, _m = hist.standard(7.0, seed=1)
    # Heat exactly proportional to the outdoor temperature carries no information on C.
    with pytest.raises(CalibrationRefused, match=r"not identified|not identifiable|ill-conditioned"):
        fit(replace(h, heat_w=1000.0 - 50.0 * h.outdoor_c))


def test_score_ranks_true_parameters_above_wrong_ones():
    h, _m = hist.standard(10.0, seed=3)
    right = score(h, UA, C_KWH, 0.0, GAINS)
    wrong = score(h, UA * 0.8, C_KWH * 1.2, 0.0, GAINS)
    assert right < 0.12
    assert wrong > 1.5 * right
    assert score(h, UA, C_KWH) <= right + 1e-9  # fitting the offset can only help


@functools.cache
def _base_history() -> History:
    return hist.standard(5.0, seed=11)[0]


@settings(max_examples=8, deadline=None)
@given(scale=st.floats(0.3, 3.0), shift_c=st.floats(-15.0, 15.0))
def test_fit_scales_with_the_heat_and_ignores_the_temperature_origin(scale, shift_c):
    # Heat ×k is the same house with UA and C ×k; moving every temperature by a constant changes nothing.
    h = _base_history()
    ref = fit(h)
    got = fit(replace(h, heat_w=h.heat_w * scale, indoor_c=h.indoor_c + shift_c, outdoor_c=h.outdoor_c + shift_c))
    assert got.ua_w_per_k is not None
    assert ref.ua_w_per_k is not None
    assert got.capacitance_kwh_per_k is not None
    assert ref.capacitance_kwh_per_k is not None
    assert got.ua_w_per_k.value == pytest.approx(ref.ua_w_per_k.value * scale, rel=1e-4)
    assert got.capacitance_kwh_per_k.value == pytest.approx(ref.capacitance_kwh_per_k.value * scale, rel=1e-4)
    assert got.tau_h.value == pytest.approx(ref.tau_h.value, rel=1e-4)
    assert got.rmse_c == pytest.approx(ref.rmse_c, rel=1e-4)
