"""The perfect-foresight bound: a true relaxation that no comfortable plan beats."""

from __future__ import annotations

import numpy as np
import pytest

from atsd.core.modes import ALL_MODES, Mode
from atsd.core.plan import make_plan
from atsd.core.planner import get
from atsd.core.planner.bound import bound, electricity_cuts
from atsd.core.thermal import J_PER_KWH

PLANNERS = ("thermostat", "cheapest-hours", "greedy", "optimal")


@pytest.mark.parametrize("offset", [0, 150, 300, 380])
@pytest.mark.parametrize("start_c", [20.6, 21.0, 22.0])
def test_no_planner_beats_the_bound(make_problem, offset: int, start_c: float) -> None:  # type: ignore[no-untyped-def]
    p = make_problem(offset, 192, start_c)
    b = bound(p)
    assert b.status == "Optimal"
    assert b.temps_c[-1] >= start_c - 1e-6 or b.temps_c[-1] >= 22.3 - 1e-6
    base = make_plan(p, get("thermostat")(p), "t", p.grid.start)
    for name in PLANNERS:
        plan = make_plan(p, get(name)(p), "t", p.grid.start)
        if plan.comfort.degree_hours_below_min > 0:
            continue
        assert b.cost_eur <= plan.estimated_cost + 1e-9, name
        assert base.baseline_cost - b.cost_eur >= plan.raw_savings - 1e-9, name


def test_flat_cop_bound_is_valid_but_looser(make_problem) -> None:  # type: ignore[no-untyped-def]
    p = make_problem(0, 192, 21.0)
    assert bound(p, flat_cop=True).cost_eur < bound(p).cost_eur


def test_cuts_lie_under_every_slot_the_model_can_produce(make_problem) -> None:  # type: ignore[no-untyped-def]
    """Any (slot, start temperature at or above comfort min, mode) step uses at least the cut electricity."""
    p = make_problem(0, 192, 21.0)
    d = p.drive
    qmax = np.max(d.comp_cap_w, axis=0) * p.grid.step_h / 1000.0
    icpt, slope = electricity_cuts(p, qmax)
    rng = np.random.default_rng(3)
    k = rng.integers(0, p.n, 4000)
    t = rng.uniform(20.0, 23.5, 4000)
    r = rng.choice([m.rank for m in ALL_MODES], 4000)
    res = p.model.step(d, k, t, r)
    ok = res.mean_c >= p.comfort.min_c[k]
    q = res.heat_comp_j / J_PER_KWH
    elec_comp = res.elec_kwh - res.heat_aux_j / J_PER_KWH
    cut = np.max(icpt[k] + slope[k] * q[:, None], axis=1)
    assert np.all(elec_comp[ok] >= cut[ok] - 1e-9)


def test_bound_is_infeasible_only_when_comfort_is(make_problem) -> None:  # type: ignore[no-untyped-def]
    p = make_problem(0, 96, 21.0, modes=(Mode.NORMAL,))
    assert bound(p).status == "Optimal"
