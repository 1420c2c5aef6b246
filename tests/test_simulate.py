"""``atsd simulate``: accounting, the information cut-off, the supervisor in the loop, the CLI's JSON."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from atsd.cli import main
from atsd.config import Config
from atsd.core.modes import Mode
from atsd.core.timegrid import parse_utc, to_epoch_s
from atsd.csvdata import Series, demo_series
from atsd.simulate import MARKET_TZ, Plant, SimSettings, Simulation, estimate_prices, sim_inputs, summary

# The supervisor sits in the loop as in the daemon; it arrives with the devices branch.

START = parse_utc("2026-01-20T00:00:00Z")
END = parse_utc("2026-01-22T00:00:00Z")
TRAP_DAY = "2026-01-21"  # market day whose prices are published 2026-01-20 13:00 CET (12:00Z)
JSON_KEYS = {
    "planner",
    "cost_eur",
    "energy_kwh",
    "savings_pct",
    "savings_shift_pct",
    "mean_indoor_c",
    "comfort_violation_kh",
    "max_shortfall_c",
    "switches",
    "overrides",
    "plan_ms_median",
    "plan_ms_p95",
}


def with_trap(prices: Series, eur_per_mwh: float) -> Series:
    """The same prices, except every slot of the trap market day."""
    vals = prices.values["price_eur_per_mwh"].copy()
    for i, e in enumerate(prices.epoch_s):
        if datetime.fromtimestamp(int(e), tz=MARKET_TZ).date().isoformat() == TRAP_DAY:
            vals[i] = eur_per_mwh
    return Series(prices.epoch_s, {"price_eur_per_mwh": vals}, prices.step_s, prices.name)


def simulation(prices: Series | None = None, **kw: object) -> Simulation:
    p, w = demo_series()
    inp = sim_inputs(Config(), prices or p, w, START, END)
    return Simulation(Config(), inp, SimSettings(**kw))  # type: ignore[arg-type]


def test_accounting_closes() -> None:
    sim = simulation()
    runs = sim.compare(["thermostat", "cheapest-hours", "greedy", "optimal"])
    for r in runs:
        np.testing.assert_allclose(r.cost_eur, r.elec_kwh * sim.price, rtol=0, atol=1e-12)
        assert r.total_cost_eur == pytest.approx(float(np.sum(r.elec_kwh * sim.price)), abs=1e-9)
        assert len(r.elec_kwh) == sim.inp.grid.n
    thermo = runs[0]
    assert thermo.savings_pct == pytest.approx(0.0, abs=1e-9)


def test_no_planner_beats_the_bound_in_simulation() -> None:
    sim = simulation()
    runs = sim.compare(["thermostat", "cheapest-hours", "greedy", "optimal"])
    b = runs[-1]
    assert b.planner == "bound"
    for r in runs[:-1]:
        if sim.comfort(r)[0] == 0.0:
            assert b.adjusted_cost_eur <= r.adjusted_cost_eur + 1e-9, r.planner
            assert b.savings_pct >= r.savings_pct - 1e-9, r.planner


@pytest.mark.parametrize("planner", ["optimal", "greedy", "cheapest-hours"])
def test_tomorrows_prices_are_not_seen_before_publication(planner: str) -> None:
    """Tomorrow's prices are a trap (a 3000 EUR/MWh day, or a free one): a planner that saw them before
    their publication would pre-heat (or wait) differently; before 12:00Z of the day before, every
    decision must be the same as with the real prices."""
    p, _w = demo_series()
    base = simulation().run(planner)
    published = to_epoch_s(parse_utc("2026-01-20T12:00:00Z"))
    before = int((published - to_epoch_s(START)) // 900)
    for trap in (3000.0, -200.0):
        run = simulation(with_trap(p, trap)).run(planner)
        assert run.modes[:before] == base.modes[:before]
        np.testing.assert_array_equal(run.end_c[:before], base.end_c[:before])


def test_the_trap_catches_a_planner_that_sees_prices_early() -> None:
    """The same trap with every price visible from the start: greedy's early decisions change, so the
    test above would catch a leak of unpublished prices into the planner's view."""
    p, _w = demo_series()
    published = to_epoch_s(parse_utc("2026-01-20T12:00:00Z"))
    before = int((published - to_epoch_s(START)) // 900)

    def cheat(prices: Series | None) -> Simulation:
        sim = simulation(prices)
        sim.inp = dataclasses.replace(sim.inp, published_s=np.zeros_like(sim.inp.published_s))
        return sim

    honest = cheat(None).run("greedy").modes[:before]
    assert cheat(with_trap(p, 3000.0)).run("greedy").modes[:before] != honest


def test_unpublished_prices_are_an_estimate_in_the_problem() -> None:
    p, _w = demo_series()
    sim_a = simulation()
    sim_b = simulation(with_trap(p, 3000.0))
    i = int((to_epoch_s(parse_utc("2026-01-20T11:45:00Z")) - to_epoch_s(START)) // 900)
    pa = sim_a.problem(i, 21.0, Mode.NORMAL, 10**6, 0, 10**6)[0]
    pb = sim_b.problem(i, 21.0, Mode.NORMAL, 10**6, 0, 10**6)[0]
    np.testing.assert_array_equal(pa.spot_eur_per_mwh, pb.spot_eur_per_mwh)
    assert pa.price_estimated is not None
    assert pa.price_estimated.any()
    assert not pa.price_estimated[0]


def test_estimate_repeats_the_recent_daily_profile() -> None:
    sim = simulation()
    ext = sim.inp.ext
    known = np.zeros(ext.n, dtype=bool)
    known[: 96 * 3] = True
    est = estimate_prices(sim.inp.spot, known, ext, days=3)
    day = sim.inp.spot[: 96 * 3].reshape(3, 96).mean(axis=0)
    np.testing.assert_allclose(est[96 * 3 : 96 * 4], day)


@dataclass
class _Verdict:
    mode: Mode
    reason: str
    overridden: bool
    rule: str | None


class _AlwaysNormal:
    """A supervisor that vetoes everything but NORMAL."""

    def decide(
        self,
        now: datetime,
        requested: Mode | None,
        indoor_c: float | None,
        indoor_age_s: float | None,
        reason: str = "",
    ) -> _Verdict:
        return _Verdict(
            Mode.NORMAL,
            "test",
            requested is not Mode.NORMAL,
            "test" if requested is not Mode.NORMAL else None,
        )


def test_supervisor_overrides_are_applied_and_counted() -> None:
    p, w = demo_series()
    inp = sim_inputs(Config(), p, w, START, END)
    sim = Simulation(Config(), inp, SimSettings(), supervisor=_AlwaysNormal)
    run = sim.run("cheapest-hours")
    assert run.overrides > 0
    assert set(run.modes) == {Mode.NORMAL}
    assert run.total_cost_eur == pytest.approx(sim.run("thermostat").total_cost_eur)


def test_a_mismatched_plant_makes_the_planner_replan() -> None:
    same = simulation().run("optimal")
    other = simulation(plant=Plant(1.2, 0.8)).run("optimal")
    assert len(other.plan_ms) > len(same.plan_ms)


def test_plant_parse() -> None:
    assert Plant.parse("ua=1.2,c=0.8") == Plant(1.2, 0.8)
    assert Plant.parse(None) == Plant()
    with pytest.raises(ValueError, match="ua=FACTOR"):
        Plant.parse("u=3")


def test_json_has_exactly_the_issue_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p, w = demo_series()
    pf, wf = tmp_path / "p.csv", tmp_path / "w.csv"
    for path, s, col in ((pf, p, "price_eur_per_mwh"), (wf, w, "temp_c")):
        rows = [f"time_utc,{col}"] + [
            f"{datetime.fromtimestamp(int(e), tz=MARKET_TZ).astimezone(START.tzinfo):%Y-%m-%dT%H:%M:%SZ},{v}"
            for e, v in zip(s.epoch_s, s.values[col], strict=True)
        ]
        path.write_text("\n".join(rows) + "\n")
    svg = tmp_path / "out.svg"
    code = main(
        [
            "simulate",
            "--prices",
            str(pf),
            "--weather",
            str(wf),
            "--start",
            "2026-01-20",
            "--end",
            "2026-01-21",
            "--planner",
            "all",
            "--json",
            "--plot",
            str(svg),
        ]
    )
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"default", "planners"}
    assert doc["default"] == "optimal"
    assert [r["planner"] for r in doc["planners"]] == [
        "thermostat",
        "cheapest-hours",
        "greedy",
        "optimal",
        "bound",
    ]
    for r in doc["planners"]:
        assert set(r) == JSON_KEYS
    assert svg.read_text().startswith("<svg")


def test_summary_of_a_run_has_no_comfort_violation_when_plant_is_model() -> None:
    sim = simulation()
    runs = sim.compare(["optimal"], with_bound=False)
    doc = summary(sim, runs)
    rows = doc["planners"]
    assert isinstance(rows, list)
    assert rows[0]["comfort_violation_kh"] == 0.0


def test_receding_plans_spend_heat_stored_earlier(monkeypatch: pytest.MonkeyPatch) -> None:
    """Started warm, a receding horizon under the hard end rule keeps re-planning to end as warm as
    the house is (it ratchets); valuing the heat left at the end lets it spend the stored heat."""
    from atsd.core import house

    sim = simulation(start_c=22.0)
    value = sim.run("optimal")
    real_problem = house.problem

    def hard(*a: object, **kw: object):  # type: ignore[no-untyped-def]
        kw["receding"] = False
        return real_problem(*a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(house, "problem", hard)
    ratchet = sim.run("optimal")
    ratchet.planner = "optimal-hard-end"
    runs = sim.compare_runs([sim.run("thermostat"), value, ratchet], with_bound=False)
    assert runs[1].mean_indoor_c < runs[2].mean_indoor_c
    assert runs[1].adjusted_cost_eur < runs[2].adjusted_cost_eur
    for r in runs:
        assert sim.comfort(r)[0] == 0.0


def test_perfect_foresight_is_the_modes_ceiling(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``optimal-pf`` plans once with every price known; the bound (continuous power) stays below it."""
    sim = simulation()
    runs = sim.compare(["thermostat", "optimal", "optimal-pf"])
    pf = next(r for r in runs if r.planner == "optimal-pf")
    b = runs[-1]
    assert len(pf.plan_ms) == 1 and len(pf.modes) == sim.inp.grid.n
    assert sim.comfort(pf)[0] == 0.0
    assert b.adjusted_cost_eur <= pf.adjusted_cost_eur + 1e-9
    np.testing.assert_allclose(pf.cost_eur, pf.elec_kwh * sim.price, rtol=0, atol=1e-12)
    missing = str(tmp_path / "none.csv")  # the planner names are checked first
    assert main(["simulate", "--prices", missing, "--weather", missing, "--planner", "nope"]) != 0
    assert "optimal-pf" in capsys.readouterr().err
