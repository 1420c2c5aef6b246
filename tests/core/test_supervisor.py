"""The supervisor's safety rules: examples for each rule, then hypothesis over random histories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atsd.config import ActuatorConfig, Config, SensorConfig, SupervisorConfig
from atsd.core.modes import ALL_MODES, Mode
from atsd.core.supervisor import (
    RULE_CLOCK,
    RULE_DWELL,
    RULE_FLOOR,
    RULE_NO_PLAN,
    RULE_NO_READING,
    RULE_OFF_BLOCK,
    RULE_OFF_GAP,
    RULE_OFF_PER_DAY,
    RULE_STALE,
    RULE_SWITCHES,
    RULE_UNSUPPORTED,
    Supervisor,
    SupervisorRules,
    SupervisorState,
    nearest_supported,
)

TZ = ZoneInfo("Europe/Helsinki")
T0 = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
RULES = SupervisorRules()


def sup(rules: SupervisorRules = RULES, **kw: object) -> Supervisor:
    return Supervisor(rules, TZ, **kw)  # type: ignore[arg-type]


def test_rules_from_config_take_actuator_overrides_and_comfort() -> None:
    cfg = Config(actuator=ActuatorConfig(kind="simulated", min_dwell_min=10, max_switches_per_hour=2),
                 supervisor=SupervisorConfig(max_off_block_min=90),
                 sensors=(SensorConfig(name="room", kind="simulated"),))
    r = SupervisorRules.from_config(cfg)
    assert (r.min_dwell_s, r.max_switches_per_hour, r.max_off_block_s) == (600, 2, 5400)
    assert r.comfort_min_c == cfg.comfort.min_c
    assert r.frost_c == cfg.comfort.frost_c
    assert r.indoor_sensor_configured
    assert not SupervisorRules.from_config(Config()).indoor_sensor_configured


def test_plan_is_followed_when_nothing_objects() -> None:
    v = sup().decide(T0, Mode.BOOST, 21.0, 10.0, "cheap hour")
    assert (v.mode, v.overridden, v.rule, v.reason) == (Mode.BOOST, False, None, "cheap hour")


def test_no_plan_means_normal() -> None:
    s = sup()
    s.decide(T0, Mode.BOOST, 21.0, 0)
    v = s.decide(T0 + MIN, None, 21.0, 0)
    assert (v.mode, v.rule, v.overridden) == (Mode.NORMAL, RULE_NO_PLAN, True)


def test_stale_or_missing_reading_means_normal_at_once() -> None:
    s = sup()
    assert s.decide(T0, Mode.OFF, 21.0, 0).mode is Mode.OFF
    v = s.decide(T0 + MIN, Mode.OFF, 21.0, 16 * 60)
    assert (v.mode, v.rule) == (Mode.NORMAL, RULE_STALE)
    s2 = sup()
    v = s2.decide(T0, Mode.ECO, None, None)
    assert (v.mode, v.rule) == (Mode.NORMAL, RULE_NO_READING)


def test_floor_forces_normal_then_boost_and_releases_with_hysteresis() -> None:
    s = sup()
    assert s.decide(T0, Mode.OFF, 19.85, 0).mode is Mode.OFF  # within 0.2 K: plan stands
    v = s.decide(T0 + 20 * MIN, Mode.OFF, 19.7, 0)
    assert (v.mode, v.rule) == (Mode.NORMAL, RULE_FLOOR)
    assert s.decide(T0 + 40 * MIN, Mode.OFF, 18.9, 0).mode is Mode.BOOST
    assert s.decide(T0 + 60 * MIN, Mode.OFF, 19.9, 0).mode is Mode.BOOST  # still below min
    assert s.decide(T0 + 80 * MIN, Mode.OFF, 20.1, 0).mode is Mode.NORMAL  # BOOST released at min
    assert s.decide(T0 + 100 * MIN, Mode.ECO, 20.2, 0).mode is Mode.NORMAL  # latched until min + 0.3
    assert s.decide(T0 + 120 * MIN, Mode.ECO, 20.35, 0).mode is Mode.ECO


def test_frost_protection_applies_when_comfort_min_is_low() -> None:
    s = sup(SupervisorRules(comfort_min_c=6.0, frost_c=8.0))
    v = s.decide(T0, Mode.OFF, 6.5, 0)
    assert v.mode is Mode.BOOST
    assert v.rule == "frost"


def test_a_setback_minimum_moves_the_floor_but_not_below_frost() -> None:
    s = sup()
    assert s.decide(T0, Mode.OFF, 18.5, 0, comfort_min_c=18.0).mode is Mode.OFF
    v = s.decide(T0 + MIN, Mode.OFF, 7.5, 0, comfort_min_c=5.0)
    assert (v.mode, v.rule) == (Mode.NORMAL, "frost")  # 0.5 K below frost: at least NORMAL, at once


def test_no_indoor_sensor_runs_on_model_with_short_off_blocks() -> None:
    s = sup(SupervisorRules(indoor_sensor_configured=False))
    assert s.decide(T0, Mode.OFF, None, None).mode is Mode.OFF
    assert s.decide(T0 + 59 * MIN, Mode.OFF, None, None).mode is Mode.OFF
    v = s.decide(T0 + 60 * MIN, Mode.OFF, None, None)
    assert (v.mode, v.rule) == (Mode.ECO, RULE_OFF_BLOCK)
    assert "model-only" in v.reason


def test_off_block_gap_and_blocks_per_day() -> None:
    s = sup(SupervisorRules(min_dwell_s=0, max_switches_per_hour=60))
    assert s.decide(T0, Mode.OFF, 21, 0).mode is Mode.OFF
    v = s.decide(T0 + 120 * MIN, Mode.OFF, 21, 0)
    assert (v.mode, v.rule) == (Mode.ECO, RULE_OFF_BLOCK)
    v = s.decide(T0 + 150 * MIN, Mode.OFF, 21, 0)
    assert (v.mode, v.rule) == (Mode.ECO, RULE_OFF_GAP)
    t = T0 + 180 * MIN  # 14:00 local; gap over
    assert s.decide(t, Mode.OFF, 21, 0).mode is Mode.OFF
    assert s.decide(t + 10 * MIN, Mode.NORMAL, 21, 0).mode is Mode.NORMAL
    assert s.decide(t + 80 * MIN, Mode.OFF, 21, 0).mode is Mode.OFF  # third block today
    assert s.decide(t + 90 * MIN, Mode.NORMAL, 21, 0).mode is Mode.NORMAL
    v = s.decide(t + 160 * MIN, Mode.OFF, 21, 0)
    assert (v.mode, v.rule) == (Mode.ECO, RULE_OFF_PER_DAY)
    # the count resets at LOCAL midnight (22:00 UTC in winter)
    assert s.decide(datetime(2026, 1, 15, 22, 1, tzinfo=UTC), Mode.OFF, 21, 0).mode is Mode.OFF


def test_dwell_and_switch_limits_hold_every_change_but_normal() -> None:
    s = sup(SupervisorRules(min_dwell_s=15 * 60, max_switches_per_hour=3))
    assert s.decide(T0, Mode.BOOST, 21, 0).mode is Mode.BOOST
    v = s.decide(T0 + 5 * MIN, Mode.ECO, 21, 0)
    assert (v.mode, v.rule) == (Mode.BOOST, RULE_DWELL)
    assert s.decide(T0 + 6 * MIN, Mode.NORMAL, 21, 0).mode is Mode.NORMAL  # always at once
    v = s.decide(T0 + 10 * MIN, Mode.BOOST, 21, 0)
    assert (v.mode, v.rule) == (Mode.NORMAL, RULE_DWELL)  # leaving NORMAL obeys the dwell too
    assert s.decide(T0 + 21 * MIN, Mode.ECO, 21, 0).mode is Mode.ECO  # third switch this hour
    v = s.decide(T0 + 40 * MIN, Mode.BOOST, 21, 0)
    assert (v.mode, v.rule) == (Mode.ECO, RULE_SWITCHES)
    assert s.decide(T0 + 61 * MIN, Mode.BOOST, 21, 0).mode is Mode.BOOST


def test_unsupported_modes_map_to_nearest_never_off() -> None:
    sg = (Mode.OFF, Mode.NORMAL, Mode.BOOST)
    assert nearest_supported(Mode.ECO, sg) is Mode.NORMAL
    assert nearest_supported(Mode.OFF, (Mode.ECO, Mode.NORMAL)) is Mode.ECO
    assert nearest_supported(Mode.BOOST, (Mode.OFF, Mode.NORMAL)) is Mode.NORMAL
    v = sup(supported=(Mode.NORMAL, Mode.BOOST)).decide(T0, Mode.OFF, 21, 0)
    assert (v.mode, v.rule) == (Mode.NORMAL, RULE_UNSUPPORTED)


def test_a_restored_mode_the_actuator_no_longer_offers_is_left_for_normal() -> None:
    s = sup()
    s.decide(T0, Mode.OFF, 21, 0)
    s2 = sup(state=SupervisorState.from_json(s.state.to_json()), supported=(Mode.NORMAL, Mode.BOOST))
    v = s2.decide(T0 + MIN, Mode.BOOST, 21, 0)  # BOOST refused by the dwell, OFF may not continue
    assert (v.mode, v.rule) == (Mode.NORMAL, RULE_DWELL)


def test_clock_going_backwards_ends_a_block() -> None:
    s = sup()
    s.decide(T0, Mode.OFF, 21, 0)
    v = s.decide(T0 - 30 * MIN, Mode.OFF, 21, 0)
    assert (v.mode, v.rule) == (Mode.NORMAL, RULE_CLOCK)


def test_state_round_trips_through_json() -> None:
    s = sup()
    s.decide(T0, Mode.OFF, 19.7, 0)
    s.decide(T0 + 20 * MIN, Mode.OFF, 21, 0)
    text = s.state.to_json()
    back = SupervisorState.from_json(text)
    assert back == s.state
    with pytest.raises(ValueError, match="JSON"):
        SupervisorState.from_json("{")
    with pytest.raises(ValueError, match="unknown mode"):
        SupervisorState.from_json('{"mode": "HOT"}')


def test_restored_state_keeps_the_dwell() -> None:
    s = sup()
    s.decide(T0, Mode.BOOST, 21, 0)
    s2 = sup(state=SupervisorState.from_json(s.state.to_json()))
    assert s2.decide(T0 + 5 * MIN, Mode.ECO, 21, 0).mode is Mode.BOOST


# -- properties --------------------------------------------------------------------------------

rules_st = st.builds(
    SupervisorRules,
    min_dwell_s=st.sampled_from([0.0, 600.0, 900.0, 1800.0]),
    max_switches_per_hour=st.integers(1, 8),
    max_off_block_s=st.sampled_from([0.0, 1800.0, 7200.0]),
    min_off_gap_s=st.sampled_from([0.0, 3600.0]),
    max_off_blocks_per_day=st.integers(0, 4),
    indoor_sensor_configured=st.booleans(),
)
step_st = st.tuples(
    st.integers(0, 90 * 60),  # seconds since the previous decision
    st.one_of(st.none(), st.sampled_from(ALL_MODES)),
    st.one_of(st.none(), st.floats(15.0, 25.0)),
    st.one_of(st.none(), st.floats(0, 3600)),
    st.one_of(st.none(), st.floats(5.0, 22.0)),  # the comfort minimum of a setback schedule
)
supported_st = st.sampled_from([ALL_MODES, (Mode.OFF, Mode.NORMAL, Mode.BOOST), (Mode.NORMAL, Mode.BOOST),
                                (Mode.ECO, Mode.NORMAL)])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules=rules_st, supported=supported_st, steps=st.lists(step_st, min_size=1, max_size=60),
       start_h=st.integers(0, 23))
def test_supervisor_invariants_hold_for_any_history(rules: SupervisorRules, supported: tuple[Mode, ...],
                                                    steps: list[tuple[int, Mode | None, float | None,
                                                                      float | None, float | None]],
                                                    start_h: int) -> None:
    s = Supervisor(rules, TZ, supported=supported)
    now = datetime(2026, 3, 29, start_h, tzinfo=UTC)  # spans the spring DST change in Helsinki
    changes: list[tuple[datetime, Mode]] = []  # (time, new mode) of every switch
    off_start: datetime | None = None
    off_blocks: list[datetime] = []
    last_off_end: datetime | None = None
    mode = Mode.NORMAL
    since: datetime | None = None
    for dt_s, req, indoor, age, min_c in steps:
        now += timedelta(seconds=dt_s)
        v = s.decide(now, req, indoor, age, comfort_min_c=min_c)
        floor_c = max(rules.comfort_min_c if min_c is None else min_c, rules.frost_c)
        assert v.mode in supported or v.mode is Mode.NORMAL
        fresh = indoor is not None and (age is None or age <= rules.stale_sensor_s)
        # unsure -> NORMAL: no plan, stale reading, missing reading with a sensor configured
        missing = rules.indoor_sensor_configured and indoor is None
        if req is None or (indoor is not None and not fresh) or missing:
            floor_boost = fresh and v.mode is Mode.BOOST and v.rule in (RULE_FLOOR, "frost")
            assert v.mode is Mode.NORMAL or floor_boost
        # the floor: never below NORMAL under min - force_normal_below_k
        if fresh and indoor is not None and indoor < floor_c - rules.force_normal_below_k:
            assert v.mode.rank >= Mode.NORMAL.rank
        if fresh and indoor is not None and indoor < floor_c - rules.force_boost_below_k:
            assert v.mode is (Mode.BOOST if Mode.BOOST in supported else Mode.NORMAL) or v.rule in (
                RULE_DWELL, RULE_SWITCHES)
        if v.mode is not mode:
            # dwell and switches per hour govern every change except to NORMAL
            if v.mode is not Mode.NORMAL:
                assert since is None or (now - since).total_seconds() >= rules.min_dwell_s
                recent = sum(1 for t, _ in changes if now - t < timedelta(hours=1))
                assert recent < rules.max_switches_per_hour
            if mode is Mode.OFF:
                last_off_end = now
            if v.mode is Mode.OFF:
                # a new block: gap respected, and at most N per local day
                assert last_off_end is None or (now - last_off_end).total_seconds() >= rules.min_off_gap_s
                off_blocks.append(now)
                day = now.astimezone(TZ).date()
                today = sum(1 for t in off_blocks if t.astimezone(TZ).date() == day)
                assert today <= rules.max_off_blocks_per_day
                off_start = now
            changes.append((now, v.mode))
            mode, since = v.mode, now
        if v.mode is Mode.OFF:
            assert off_start is not None
            assert (now - off_start).total_seconds() < rules.off_cap_s
        assert s.state.mode is v.mode


@settings(max_examples=200, deadline=None)
@given(steps=st.lists(st.tuples(st.integers(-7200, 7200), st.sampled_from(ALL_MODES), st.floats(15, 25)),
                      min_size=1, max_size=40))
def test_any_clock_never_leaves_the_floor_or_blocks_while_time_runs_backwards(
        steps: list[tuple[int, Mode, float]]) -> None:
    s = Supervisor(SupervisorRules(min_dwell_s=0, max_switches_per_hour=60), TZ)
    now = T0
    prev: datetime | None = None
    for dt_s, req, indoor in steps:
        now += timedelta(seconds=dt_s)
        before = s.state.mode
        v = s.decide(now, req, indoor, 0.0)
        if indoor < RULES.comfort_min_c - RULES.force_normal_below_k:
            assert v.mode.rank >= Mode.NORMAL.rank
        if prev is not None and now < prev and before.rank < Mode.NORMAL.rank:
            assert v.mode.rank >= Mode.NORMAL.rank  # a block never continues across a backwards jump
        prev = now
