"""The pure fleet view: availability, retained replay, flexibility aggregation, dispatch summaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from atsd import messages
from atsd.core.modes import Mode
from atsd.fleet.view import FleetView, Group

T = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def status(device_id: str, ts: datetime, power_kw: float | None = 2.0, tags: tuple[str, ...] = ("a",)) -> bytes:
    return messages.dumps(messages.status_message(
        device_id=device_id, ts=ts, mode=Mode.NORMAL, reason="r", indoor_c=21.0, outdoor_c=-3.0, target_c=21.0,
        price_eur_per_kwh=0.1, today_cost_eur=1.0, today_savings_eur=0.5, health={}, tags=tags, power_kw=power_kw))


def flex(device_id: str, ts: datetime, kws: list[float], hold_min: float = 90.0) -> bytes:
    slots = [messages.FlexSlot(ts + timedelta(minutes=15 * k), kw, hold_min, 0.2) for k, kw in enumerate(kws)]
    return messages.dumps(messages.flexibility_message(device_id, ts, 15, slots))


def test_replayed_retained_status_counts_at_its_own_time_not_at_arrival():
    v = FleetView(offline_after_s=300)
    v.ingest("h1", "availability", b"online", T, retained=True)
    v.ingest("h1", "status", status("h1", T - timedelta(hours=1)), T, retained=True)
    ok, why = v.availability(v.houses["h1"], T)
    assert not ok and "last seen 3600 s ago" in why
    v.ingest("h1", "status", status("h1", T - timedelta(hours=1)), T)  # live: counts now, whatever ts says
    assert v.availability(v.houses["h1"], T)[0]


def test_offline_availability_wins_over_fresh_status():
    v = FleetView()
    v.ingest("h1", "status", status("h1", T), T)
    v.ingest("h1", "availability", b"offline", T)
    ok, why = v.availability(v.houses["h1"], T)
    assert not ok and why.startswith("availability is offline")


def test_malformed_and_foreign_version_payloads_are_counted_not_raised():
    v = FleetView()
    v.ingest("h1", "status", b"{not json", T)
    v.ingest("h1", "status", b'{"v": 2}', T)
    v.ingest("h1", "availability", b"maybe", T)
    v.ingest("h1", "dr/set", b"{}", T)  # commands are not the view's business
    assert v.houses["h1"].bad_messages == 3 and v.houses["h1"].status is None


def test_flexibility_sums_envelopes_and_labels_power_estimates():
    v = FleetView()
    for i in ("h1", "h2", "h3"):
        v.ingest(i, "status", status(i, T, power_kw=3.0), T)
    v.ingest("h1", "flexibility", flex("h1", T, [2.0] * 8, hold_min=90), T)  # two hours of 2 kW
    v.ingest("h2", "flexibility", flex("h2", T, [1.0] * 4, hold_min=30), T)  # one hour of 1 kW
    doc = v.flexibility(["h1", "h2", "h3", "nobody"], T, hours=3)
    assert doc["now"]["from_flexibility_kw"] == 3.0 and doc["now"]["estimated_kw"] == 3.0
    assert doc["now"]["shed_kw"] == 6.0
    assert doc["now"]["hold_min"] == {"min": 30.0, "median": 60.0, "max": 90.0}
    assert [h["from_flexibility_kw"] for h in doc["hours"]] == [3.0, 2.0, 0.0]
    assert [h["estimated_kw"] for h in doc["hours"]] == [3.0, 3.0, 3.0]
    assert {s["minutes"]: s["shed_kw"] for s in doc["sustain"]} == {15: 3.0, 30: 3.0, 60: 2.0, 120: 0.0, 240: 0.0}
    assert doc["unknown"] == ["nobody"]
    assert {p["device_id"]: p["basis"] for p in doc["per_house"]} == {"h1": "flexibility", "h2": "flexibility",
                                                                     "h3": "estimate"}


def test_an_expired_envelope_falls_back_to_the_estimate():
    v = FleetView(offline_after_s=1e9)
    v.ingest("h1", "status", status("h1", T, power_kw=1.5), T)
    v.ingest("h1", "flexibility", flex("h1", T - timedelta(hours=5), [2.0] * 4), T)
    doc = v.flexibility(["h1"], T)
    assert doc["per_house"][0]["basis"] == "estimate" and doc["now"]["estimated_kw"] == 1.5


def test_dispatch_waits_then_reports_missing_acks_and_measures_shed():
    v = FleetView()
    for i, tag in (("h1", "g"), ("h2", "g"), ("h3", "other")):
        for k in range(6):  # 2 kW for the half hour before
            t = T - timedelta(minutes=30 - 5 * k)
            v.ingest(i, "status", status(i, t, tags=(tag,)), t)
    assert v.select(Group(tag="g")) == ["h1", "h2"]
    ev = messages.DemandResponseEvent("e1", T, 60, "shed")
    d = v.start_dispatch(ev, Group(tag="g"), ["h1", "h2"], T, ack_timeout_s=30)
    v.ingest("h1", "dr/ack", messages.dumps(messages.dr_ack_message("h1", "e1", "partial", "OFF block limit",
                                                                    T + timedelta(seconds=2), 1.8)),
             T + timedelta(seconds=2))
    doc = v.dispatch_doc(d, T + timedelta(seconds=10))
    assert doc["summary"]["partial"] == 1 and doc["summary"]["pending"] == 1 and not doc["complete"]
    for k in range(1, 4):  # h1 drops to 0.5 kW, h2 keeps drawing 2 kW
        t = T + timedelta(minutes=5 * k)
        v.ingest("h1", "status", status("h1", t, power_kw=0.5, tags=("g",)), t)
        v.ingest("h2", "status", status("h2", t, tags=("g",)), t)
    doc = v.dispatch_doc(d, T + timedelta(minutes=16))
    rows = {r["device_id"]: r for r in doc["houses"]}
    assert doc["complete"] and doc["summary"]["missing"] == 1
    assert rows["h2"]["reason"] == "no acknowledgement within 30 s"
    assert rows["h1"]["ack_after_s"] == 2.0 and rows["h1"]["shed_kw_measured"] == 1.5
    assert rows["h2"]["shed_kw_measured"] == 0.0
    assert doc["shed"]["measured_kw"] == 1.5 and doc["shed"]["promised_kw"] == 1.8
    assert doc["reasons"] == {"partial": {"OFF block limit": 1}, "missing": {"no acknowledgement within 30 s": 1}}


def test_acks_from_houses_outside_the_dispatch_are_kept_but_not_counted():
    v = FleetView()
    v.ingest("h9", "status", status("h9", T), T)
    d = v.start_dispatch(messages.DemandResponseEvent("e1", T, 30, "shed"), Group(ids=("h1",)), ["h1"], T, 5)
    v.ingest("h9", "dr/ack", messages.dumps(messages.dr_ack_message("h9", "e1", "accepted", "", T)), T)
    assert d.acks == {} and v.houses["h9"].last_ack is not None
    assert v.dispatch_doc(d, T)["houses"][0]["reason"] == "unknown house: never seen on the broker"


def test_clearing_every_retained_document_removes_the_house():
    v = FleetView()
    v.ingest("h1", "availability", b"online", T)
    v.ingest("h1", "status", status("h1", T), T)
    v.ingest("h1", "status", b"", T, retained=True)
    assert v.houses["h1"].status is None
    v.ingest("h1", "availability", b"", T)
    assert "h1" not in v.houses
