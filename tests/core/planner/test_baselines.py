"""The reference planners: the thermostat and the cheapest-hours relay controller."""

from __future__ import annotations

import dataclasses

import numpy as np

from atsd.config import Config
from atsd.core.modes import Mode
from atsd.core.plan import end_goal_c
from atsd.core.planner import baselines, get


def test_thermostat_is_always_normal(make_problem) -> None:  # type: ignore[no-untyped-def]
    p = make_problem(0, 96, 21.0)
    dec = get("thermostat")(p)
    assert dec.modes == [Mode.NORMAL] * 96
    assert dec.planner == "thermostat"


def test_hours_needed_grow_with_the_cold(make_problem) -> None:  # type: ignore[no-untyped-def]
    p = make_problem(0, 96 * 3, 21.0)
    need = baselines.hours_needed(p)
    cold = dataclasses.replace(p, drive=dataclasses.replace(p.drive, outdoor_c=p.drive.outdoor_c - 10.0))
    colder = baselines.hours_needed(cold)
    assert all(colder[d] > need[d] for d in need if need[d] > baselines.SPARE_HOURS)


def test_cheapest_hours_runs_in_the_cheapest_slots_and_keeps_the_floor(make_problem, rule_breaks) -> None:  # type: ignore[no-untyped-def]
    p = make_problem(96, 96 * 2, 21.0, modes=(Mode.OFF, Mode.NORMAL, Mode.BOOST))
    dec = get("cheapest-hours")(p)
    assert not rule_breaks(p, dec.modes)
    traj = p.model.simulate(p.drive, p.start_c, dec.modes)
    assert np.all(traj.end_c >= p.floor_c() - 1e-9)
    assert traj.end_c[-1] >= end_goal_c(p) - 1e-6
    boost = np.array([m is Mode.BOOST for m in dec.modes])
    price = p.price_eur_per_kwh
    assert price[boost].mean() < price[~boost].mean()


def test_cheapest_hours_blocks_with_eco_when_off_is_spent(make_problem) -> None:  # type: ignore[no-untyped-def]
    cfg = Config()
    p = make_problem(0, 96, 21.0, cfg=cfg)
    dec = get("cheapest-hours")(p)
    assert Mode.ECO in dec.modes  # OFF blocks are limited to 3 × 2 h a day, the rest of the block is ECO
