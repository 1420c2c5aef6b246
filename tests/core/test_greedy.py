from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atsd.config import Config, HeatPumpConfig
from atsd.core import house
from atsd.core.forecast import PRICE, TEMP, Forecast
from atsd.core.modes import Mode
from atsd.core.plan import Decision, baseline_trajectory, end_goal_c, make_plan, nominal_feasible
from atsd.core.planner import greedy
from atsd.core.timegrid import local_day_grid

from .conftest import make_problem

HELSINKI = ZoneInfo("Europe/Helsinki")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.floats(-20, 400), min_size=96, max_size=96),
       st.floats(-25, 8), st.floats(0, 12), st.floats(20.3, 22.5))
def test_plan_never_predicts_below_comfort_min_on_feasible_days(prices, base_c, swing_c, start_c):
    outdoor = base_c + swing_c * np.sin(np.linspace(0, 2 * np.pi, 96))
    prob = make_problem(np.array(prices), outdoor, start_c=start_c)
    if not nominal_feasible(prob):
        return
    dec = greedy.plan(prob)
    traj = prob.model.simulate(prob.drive, prob.start_c, dec.modes)
    assert np.all(traj.end_c >= prob.comfort.min_c - 1e-6)


def test_two_hour_off_at_minus_20_is_priced_with_its_catch_up():
    n = 32  # 8 hours
    prob = make_problem(np.full(n, 80.0), np.full(n, -20.0))
    off = [Mode.OFF] * 8 + [Mode.NORMAL] * (n - 8)
    plan = make_plan(prob, Decision(off, ["test"] * n, "manual"), "t", prob.grid.start)
    base = baseline_trajectory(prob)
    # The OFF block saves nothing at flat prices once its catch-up (partly at COP 1) is paid.
    assert plan.aux_kwh > 0
    catch_up = plan.total_energy_kwh - float(base.elec_kwh[8:].sum())
    assert catch_up > float(base.elec_kwh[:8].sum())
    assert plan.estimated_cost > plan.baseline_cost


def test_flat_prices_give_no_pointless_switching():
    prob = make_problem(np.full(192, 55.0), np.full(192, -5.0))
    dec = greedy.plan(prob)
    assert set(dec.modes) == {Mode.NORMAL}


def test_end_rule_plan_ends_no_colder_than_it_started():
    rng = np.random.default_rng(7)
    prices = rng.uniform(10, 300, 192)
    prices[-16:] = 600.0  # an expensive evening at the horizon's end tempts an OFF
    prob = make_problem(prices, np.full(192, -8.0), start_c=21.0)
    dec = greedy.plan(prob)
    traj = prob.model.simulate(prob.drive, prob.start_c, dec.modes)
    assert traj.end_c[-1] >= end_goal_c(prob) - 1e-6


def test_greedy_pre_charges_before_a_peak_and_coasts_through_it():
    prices = np.full(96, 60.0)
    prices[16:28] = 10.0   # cheap night
    prices[32:40] = 400.0  # morning peak
    prob = make_problem(prices, np.full(96, -5.0))
    dec = greedy.plan(prob)
    assert Mode.BOOST in dec.modes[16:32]
    assert Mode.OFF in dec.modes[32:40]
    assert any("pre-charging before the" in r for r in dec.reasons)
    plan = make_plan(prob, dec, "t", prob.grid.start)
    assert plan.estimated_cost < plan.baseline_cost


def test_infeasible_cold_says_so_and_heats_as_much_as_it_can():
    cfg = Config(heat_pump=HeatPumpConfig(rated_heat_kw=2.0, aux_heater_kw=0.0))
    prob = make_problem(np.full(96, 50.0), np.full(96, -28.0), cfg=cfg)
    dec = greedy.plan(prob)
    plan = make_plan(prob, dec, "t", prob.grid.start)
    assert not plan.comfort.feasible
    assert "too small" in plan.note
    assert all(m.rank >= Mode.NORMAL.rank for m in dec.modes)


def _dst_day_plan(day: date) -> int:
    cfg = Config()
    grid = local_day_grid(day, HELSINKI, 900)
    fc = Forecast(grid, {PRICE: np.linspace(20, 200, grid.n), TEMP: np.full(grid.n, -3.0)})
    prob = house.problem(cfg, fc, 21.0)
    return len(greedy.plan(prob).modes)


def test_dst_days_have_23_and_25_hours_of_slots():
    assert _dst_day_plan(date(2026, 3, 29)) == 23 * 4
    assert _dst_day_plan(date(2026, 10, 25)) == 25 * 4
    assert _dst_day_plan(date(2026, 1, 15)) == 24 * 4


def test_off_blocks_respect_the_supervisor_limits():
    prices = np.full(192, 50.0)
    prices[::2] = 500.0  # every other slot expensive: tempting many OFF blocks
    prob = make_problem(prices, np.full(192, 2.0))
    modes = greedy.plan(prob).modes
    rules = prob.rules
    run = 0
    for m in modes:
        run = run + 1 if m is Mode.OFF else 0
        assert run <= rules.max_off_slots
    days = prob.grid.local_dates(prob.tz)
    starts: dict[date, int] = {}
    for i, m in enumerate(modes):
        if m is Mode.OFF and (i == 0 or modes[i - 1] is not Mode.OFF):
            starts[days[i]] = starts.get(days[i], 0) + 1
    assert all(v <= rules.max_off_blocks_per_day for v in starts.values())


def test_plan_document_follows_the_design_shape():
    prob = make_problem(np.linspace(30, 120, 8), np.full(8, -4.0), start=datetime(2026, 1, 15, 12, tzinfo=UTC))
    plan = make_plan(prob, greedy.plan(prob), "house-1", datetime(2026, 1, 15, 12, tzinfo=UTC))
    doc = plan.as_json()
    assert doc["device_id"] == "house-1"
    assert doc["generated_at"] == "2026-01-15T12:00:00Z"
    slot = doc["schedule"][0]
    for key in ("start", "mode", "expected_indoor_temp", "outdoor_temp", "electricity_price", "spot_eur_per_mwh",
                "energy_kwh", "cost_eur", "reason"):
        assert key in slot
    assert slot["start"] == "2026-01-15T12:00:00Z"
    for key in ("estimated_cost", "baseline_cost", "estimated_savings", "total_energy_kwh"):
        assert isinstance(doc[key], float)
    assert doc["comfort"]["min_c"] == 20.0
    assert doc["comfort"]["max_c"] == 23.0
    assert abs(sum(s["cost_eur"] for s in doc["schedule"]) - doc["estimated_cost"]) < 0.01


def test_demand_response_window_changes_the_plan_and_keeps_the_floor():
    import dataclasses

    from atsd.core.flex import mode_bounds_for_event

    prices = np.full(96, 60.0)
    prob = make_problem(prices, np.full(96, -5.0))
    start, end = prob.grid.time(40), prob.grid.time(48)
    bounds = mode_bounds_for_event(prob.n, prob.grid.times(), start, end, "shed", prob.grid.step_s)
    shed = dataclasses.replace(prob, mode_bounds=bounds)
    modes = greedy.plan(shed).modes
    assert set(greedy.plan(prob).modes) == {Mode.NORMAL}
    assert all(m.rank <= Mode.ECO.rank for m in modes[40:43])  # shed while the stored heat lasts (greedy is myopic)
    traj = prob.model.simulate(prob.drive, prob.start_c, modes)
    assert np.all(traj.end_c >= prob.comfort.min_c - 1e-6)


def test_flexibility_envelope_is_bounded_by_the_off_block_and_comfort():
    from atsd.core.flex import envelope

    prob = make_problem(np.linspace(40, 90, 96), np.full(96, -10.0))
    plan = make_plan(prob, greedy.plan(prob), "t", prob.grid.start)
    env = envelope(prob, plan, hours=24)
    assert len(env) == 96
    assert all(f.shed_max_min <= prob.rules.max_off_slots * 15 for f in env)
    floor = float(prob.floor_c()[0])
    drawing = [f for f, s in zip(env, plan.slots, strict=False)
               if s.mode is Mode.NORMAL and s.energy_kwh > 0 and s.start_indoor_c > floor + 0.3]
    assert drawing and all(f.shed_kw > 0 and f.shed_max_min >= 15 for f in drawing)
    assert any(f.rebound_kwh > 0 for f in drawing)  # heat not bought during the shed is bought afterwards


def test_carbon_weight_shifts_heat_to_green_slots_and_the_plan_reports_co2():
    import dataclasses

    prices = np.full(96, 60.0)
    co2 = np.full(96, 120.0)
    co2[20:32] = 20.0  # a windy night
    co2[40:52] = 400.0  # a coal-fired morning
    prob = make_problem(prices, np.full(96, -5.0))
    green = dataclasses.replace(prob, co2_g_per_kwh=co2, co2_weight_eur_per_t=2000.0)
    plan = make_plan(green, greedy.plan(green), "t", prob.grid.start)
    assert Mode.BOOST in plan.modes[20:32] and Mode.OFF in plan.modes[40:52]
    assert plan.co2_kg is not None and plan.co2_kg < plan.baseline_co2_kg
    assert plan.as_json()["co2_kg"] == round(plan.co2_kg, 2)


def test_plan_reports_its_highest_hourly_power_for_power_fees():
    prices = np.full(96, 60.0)
    prices[16:28] = 10.0
    prices[32:40] = 400.0
    prob = make_problem(prices, np.full(96, -5.0))
    plan = make_plan(prob, greedy.plan(prob), "t", prob.grid.start)
    hourly = [sum(s.energy_kwh for s in plan.slots[i:i + 4]) for i in range(0, 96, 4)]
    assert plan.peak_hourly_kw == max(hourly)
    assert plan.peak_hourly_kw > plan.baseline_peak_hourly_kw  # pre-heating at full power raises the peak
