from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from atsd.core.modes import Mode
from atsd.core.thermal import J_PER_KWH, HeatSource
from atsd.core.timegrid import Grid

from .conftest import T0, flat_band, make_model


def drive_for(model, outdoor, n=96, step_s=900, ghi=None, band=None):
    band = band or flat_band(n)
    return model.drive(Grid(T0, step_s, n), np.full(n, outdoor) if np.isscalar(outdoor) else outdoor, ghi,
                       band.target_c, band.min_c, band.max_c)


def test_steady_state_heat_equals_ua_times_delta_t():
    m = make_model(aux_w=0.0)
    d = drive_for(m, -10.0)
    res = m.step(d, 0, np.array([21.0]), Mode.NORMAL.rank)
    heat_w = res.heat_comp_j[0] / 900.0
    assert math.isclose(heat_w, 150.0 * (21.0 - (-10.0)), rel_tol=1e-9)
    assert abs(res.end_c[0] - 21.0) < 1e-9


def test_heat_pump_off_cools_with_time_constant_c_over_ua():
    m = make_model(aux_w=0.0)
    n = 40
    d = drive_for(m, 0.0, n=n)
    traj = m.simulate(d, 21.0, [Mode.OFF] * n)
    tau_s = 15e6 / 150.0
    t = 900.0 * np.arange(1, n + 1)
    np.testing.assert_allclose(traj.end_c, 21.0 * np.exp(-t / tau_s), rtol=1e-9)
    assert traj.elec_kwh.sum() == 0.0


def test_energy_balance_closes_over_a_day():
    m = make_model(gains_w=500.0)
    n = 96
    rng = np.random.default_rng(4)
    outdoor = rng.uniform(-25, 5, n)
    d = drive_for(m, outdoor, n=n)
    modes = [Mode(x) for x in rng.choice(["OFF", "ECO", "NORMAL", "BOOST"], n)]
    traj = m.simulate(d, 20.5, modes)
    heat_j = traj.heat_kwh.sum() * J_PER_KWH
    gains_j = 500.0 * 900.0 * n
    loss_j = float((150.0 * (traj.mean_c - outdoor) * 900.0).sum())
    stored_j = 15e6 * (traj.end_c[-1] - 20.5)
    assert math.isclose(heat_j + gains_j - loss_j, stored_j, rel_tol=1e-9, abs_tol=1.0)


def test_cop_falls_as_lift_rises():
    hp = make_model().heat_pump
    supply = np.linspace(25, 60, 15)
    cop = hp.cop(0.0, supply)
    assert np.all(np.diff(cop) < 0)
    assert np.all(np.diff(hp.cop(np.linspace(-20, 10, 10), 35.0)) > 0)
    # calibrated to the nominal COP at its rating point
    assert math.isclose(float(hp.cop(0.0, 35.0)), 4.5, rel_tol=1e-9)


def test_boost_costs_efficiency_per_kwh_of_heat():
    m = make_model()
    d = drive_for(m, -5.0)
    norm = m.step(d, 0, np.array([21.0]), Mode.NORMAL.rank)
    boost = m.step(d, 0, np.array([21.0]), Mode.BOOST.rank)
    assert boost.heat_kwh[0] > norm.heat_kwh[0]
    assert boost.heat_kwh[0] / boost.elec_kwh[0] < norm.heat_kwh[0] / norm.elec_kwh[0]


def test_air_source_capacity_derates_in_the_cold():
    hp = make_model(source=HeatSource.AIR).heat_pump
    cap = hp.capacity_w(np.array([7.0, -7.0, -20.0]))
    assert cap[0] > cap[1] > cap[2] > 0
    assert hp.capacity_w(np.array([-35.0]))[0] == 0.0  # below the compressor's cut-off


def _fine_reference(m, d, k, t0, rank, dt_s=0.5):
    """Explicit integration of the thermostat ODE with tiny steps (the slow, obvious way)."""
    ua, c = m.building.ua_w_per_k, m.building.capacitance_j_per_k
    qc, qa = d.comp_cap_w[rank, k], d.aux_cap_w[rank, k]
    b1 = d.aux_set_c[rank, k]
    b2 = max(d.comp_set_c[rank, k], b1)
    tout, g = d.outdoor_c[k], d.gains_w[k]
    t = t0
    for _ in range(int(d.grid.step_s / dt_s)):
        comp = 0.0 if t >= b2 else qc
        aux = qa if t < b1 else 0.0
        t += dt_s * (comp + aux + g - ua * (t - tout)) / c
    return t


@settings(max_examples=25, deadline=None)
@given(st.floats(-25, 10), st.floats(17.0, 24.0), st.sampled_from(list(Mode)))
def test_exact_discretisation_agrees_with_fine_step_reference(outdoor, t0, mode):
    m = make_model(gains_w=300.0)
    d = drive_for(m, outdoor, n=1)
    exact = float(m.step(d, 0, t0, mode.rank).end_c)
    ref = _fine_reference(m, d, 0, t0, mode.rank)
    assert abs(exact - ref) < 2e-3  # bang-bang chatter of the reference around the setpoint


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 95), st.floats(15.0, 25.0), st.integers(0, 3))
def test_scalar_step_matches_vectorised_step(k, t0, rank):
    m = make_model(gains_w=400.0)
    outdoor = np.linspace(-28, 12, 96)
    d = drive_for(m, outdoor, n=96)
    v = m.step(d, k, np.array([t0]), rank)
    s = m.step1(d, k, t0, rank)
    assert abs(v.end_c[0] - s[0]) < 1e-9
    assert abs(v.elec_kwh[0] - s[4]) < 1e-9
    assert abs(v.mean_c[0] - s[1]) < 1e-9


def test_aux_heater_catches_up_a_large_deficit_at_cop_one():
    m = make_model()
    d = drive_for(m, -20.0)
    res = m.step(d, 0, np.array([19.0]), Mode.NORMAL.rank)  # 2 K below target, beyond the aux deadband
    assert res.heat_aux_j[0] > 0
    no_aux = make_model(aux_w=0.0)
    d2 = drive_for(no_aux, -20.0)
    assert no_aux.step(d2, 0, np.array([19.0]), Mode.NORMAL.rank).heat_aux_j[0] == 0
