"""Planning problems on the bundled demo week (real FI prices, real Helsinki-Vantaa temperatures)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from atsd.config import Config
from atsd.core import house
from atsd.core.forecast import Forecast
from atsd.core.modes import Mode
from atsd.core.plan import PlanProblem, PlanRules
from atsd.csvdata import demo_forecast

MakeProblem = Callable[..., PlanProblem]
RuleCheck = Callable[[PlanProblem, list[Mode]], list[str]]


@pytest.fixture(scope="session")
def demo_week() -> Forecast:
    return demo_forecast(None, 24 * 6, 900)


@pytest.fixture
def make_problem(demo_week: Forecast) -> MakeProblem:
    """``make_problem(offset_slots, n_slots, start_c, modes=..., rules=..., cfg=...)``."""

    def make(
        offset: int = 0,
        n: int = 192,
        start_c: float = 21.0,
        *,
        modes: tuple[Mode, ...] | None = None,
        rules: PlanRules | None = None,
        cfg: Config | None = None,
    ) -> PlanProblem:
        c = cfg or Config()
        fc = demo_week.window(offset, offset + n)
        p = house.problem(c, fc, start_c, modes=modes)
        if rules is not None:
            p = dataclasses.replace(p, rules=rules)
        return p

    return make


@pytest.fixture
def rule_breaks() -> RuleCheck:
    """An independent checker of the switching rules, written from the supervisor's wording."""
    return _rule_breaks


def _rule_breaks(problem: PlanProblem, modes: list[Mode]) -> list[str]:
    r = problem.rules
    days = problem.grid.local_dates(problem.tz)
    out: list[str] = []
    cur, held = problem.current_mode, problem.current_mode_slots
    off_run = held if cur is Mode.OFF else 0
    since_off = 10**9 if cur is not Mode.OFF else 0
    blocks: dict[object, int] = {}
    for i, m in enumerate(modes):
        if m not in problem.modes and m is not Mode.NORMAL:
            out.append(f"slot {i}: {m} not supported")
        if m is not cur and m is not Mode.NORMAL and held < r.min_dwell_slots:
            out.append(f"slot {i}: left {cur} after {held} slots (dwell {r.min_dwell_slots})")
        if m is Mode.OFF:
            if cur is Mode.OFF:
                if off_run >= r.max_off_slots:
                    out.append(f"slot {i}: OFF block longer than {r.max_off_slots} slots")
            else:
                if since_off < r.min_off_gap_slots:
                    out.append(
                        f"slot {i}: OFF block {since_off} slots after the last (gap {r.min_off_gap_slots})"
                    )
                blocks[days[i]] = blocks.get(days[i], 0) + 1
                if blocks[days[i]] > r.max_off_blocks_per_day:
                    out.append(f"slot {i}: OFF block number {blocks[days[i]]} on {days[i]}")
        held = held + 1 if m is cur else 1
        off_run = off_run + 1 if m is Mode.OFF else 0
        since_off = 0 if m is Mode.OFF else since_off + 1
        cur = m
    return out
