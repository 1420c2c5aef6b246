from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atsd.core.modes import Mode
from atsd.messages import DemandResponseEvent, MessageError, ModeCommand, plan_summary_message, split_topic, topic

T = datetime(2026, 1, 15, 12, tzinfo=UTC)


def test_dr_event_round_trips():
    ev = DemandResponseEvent("e1", T, 90, "shed", 2.5)
    assert DemandResponseEvent.parse(ev.as_json()) == ev
    assert ev.end == datetime(2026, 1, 15, 13, 30, tzinfo=UTC)


@pytest.mark.parametrize(("doc", "msg"), [
    ({"event_id": "e", "start": "2026-01-15T12:00:00", "duration_min": 30, "kind": "shed"}, "no time zone"),
    ({"event_id": "e", "start": "2026-01-15T12:00:00Z", "duration_min": 0, "kind": "shed"}, "duration_min"),
    ({"event_id": "e", "start": "2026-01-15T12:00:00Z", "duration_min": 30, "kind": "heat"}, "kind must be"),
    ({"start": "2026-01-15T12:00:00Z", "duration_min": 30, "kind": "shed"}, "event_id"),
    ({"v": 2, "event_id": "e", "start": "2026-01-15T12:00:00Z", "duration_min": 30, "kind": "shed"}, "version"),
])
def test_bad_dr_events_say_what_is_wrong(doc, msg):
    with pytest.raises(MessageError, match=msg):
        DemandResponseEvent.parse(doc)


@given(st.binary(max_size=200))
def test_random_bytes_never_crash_the_parsers(raw):
    for parse in (DemandResponseEvent.parse, ModeCommand.parse):
        with contextlib.suppress(MessageError):
            parse(raw)


def test_mode_command_accepts_bare_option_and_json():
    assert ModeCommand.parse(b"boost").mode is Mode.BOOST
    cmd = ModeCommand.parse(b'{"mode": "OFF", "until": "2026-01-15T13:00:00Z"}')
    assert cmd.mode is Mode.OFF and cmd.until == datetime(2026, 1, 15, 13, tzinfo=UTC)


def test_topics_split_back():
    assert split_topic("atsd", topic("atsd", "h1", "dr/set")) == ("h1", "dr/set")
    assert split_topic("atsd", "other/h1/status") is None


def test_plan_summary_lists_mode_changes():
    doc = {"device_id": "h", "schedule": [{"start": f"t{i}", "mode": m} for i, m in
                                          enumerate(["NORMAL", "NORMAL", "BOOST", "OFF", "OFF", "NORMAL"])]}
    s = plan_summary_message(doc)
    assert [c["mode"] for c in s["changes"]] == ["NORMAL", "BOOST", "OFF", "NORMAL"]
