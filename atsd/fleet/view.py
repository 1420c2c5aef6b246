"""The fleet's picture of its houses, built only from what they publish on the broker.

Pure and synchronous: every method takes ``now`` (aware UTC), so it is tested without a broker or a
clock. The service feeds it each MQTT message (:meth:`FleetView.ingest`); after a restart the
retained ``availability``, ``status``, ``plan``, ``flexibility`` and ``alerts`` rebuild it.

Last seen: a live message counts at the time it arrives; a retained one (replayed by the broker on
subscribe) counts at the ``ts`` it carries, so a house that died an hour ago does not look fresh
after the fleet service restarts. A house is unavailable when its availability is ``offline`` or
nothing was heard from it for ``offline_after_s``.

Measured shed: power history comes from ``status.power_kw`` stamped with the fleet's own receive
time (a house's clock may be skewed or, in demo mode, accelerated). Shed = mean power in the 30
minutes before the event start minus the mean power since the start (the start taken no earlier
than the dispatch).
"""

from __future__ import annotations

import json
import math
import statistics
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from atsd import messages
from atsd.core.timegrid import floor_time, iso_z, parse_utc

BEFORE_WINDOW = timedelta(minutes=30)
POWER_HISTORY = 64  # status reports kept per house: the 30 min before an event at a report every 30 s
SUSTAIN_MIN = (15, 30, 60, 120, 240)
MAX_DISPATCHES = 200
LEAVES = (messages.AVAILABILITY, messages.STATUS, messages.PLAN, messages.FLEXIBILITY, messages.ALERTS,
          messages.DR_ACK)


@dataclass(frozen=True)
class Group:
    """Houses chosen by tag or by an explicit list of ids (exactly one of the two)."""

    tag: str | None = None
    ids: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"tag": self.tag} if self.tag is not None else {"ids": list(self.ids)}


@dataclass
class House:
    device_id: str
    availability: str | None = None
    status: dict[str, Any] | None = None
    plan: dict[str, Any] | None = None
    flexibility: dict[str, Any] | None = None
    alerts: dict[str, Any] | None = None
    last_seen: datetime | None = None
    last_ack: dict[str, Any] | None = None
    bad_messages: int = 0
    power: deque[tuple[datetime, float]] = field(default_factory=lambda: deque(maxlen=POWER_HISTORY))

    @property
    def tags(self) -> tuple[str, ...]:
        tags = (self.status or {}).get("tags") or ()
        return tuple(t for t in tags if isinstance(t, str))


@dataclass
class Ack:
    status: str
    reason: str
    after_s: float | None
    shed_kw: float | None = None


@dataclass
class Mean:
    total: float = 0.0
    n: int = 0

    def add(self, x: float) -> None:
        self.total += x
        self.n += 1

    @property
    def value(self) -> float | None:
        return self.total / self.n if self.n else None


@dataclass
class Dispatch:
    event: messages.DemandResponseEvent
    group: Group
    targets: tuple[str, ...]
    dispatched_at: datetime
    ack_timeout_s: float
    unavailable: dict[str, str]  # device_id -> why, at dispatch time
    unknown: tuple[str, ...]  # listed ids never seen on the broker
    acks: dict[str, Ack] = field(default_factory=dict)
    # Power per target, accumulated as status reports arrive (the history holds only the last half hour).
    before: dict[str, Mean] = field(default_factory=dict)
    during: dict[str, Mean] = field(default_factory=dict)
    last_before: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.target_set = frozenset(self.targets)

    @property
    def t0(self) -> datetime:
        """A house cannot react before it hears of the event: "during" opens at the later of the start and
        the dispatch (a default start is the dispatch second, truncated by the contract)."""
        return max(self.event.start, self.dispatched_at)

    def record(self, device_id: str, t: datetime, power_kw: float) -> None:
        t0 = self.t0
        if t < t0:
            self.last_before[device_id] = power_kw
            if t >= t0 - BEFORE_WINDOW:
                self.before.setdefault(device_id, Mean()).add(power_kw)
        elif t <= self.event.end:
            self.during.setdefault(device_id, Mean()).add(power_kw)


def _time_or_none(doc: dict[str, Any], key: str) -> datetime | None:
    v = doc.get(key)
    if not isinstance(v, str):
        return None
    try:
        return parse_utc(v)
    except ValueError:
        return None


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        return None
    return float(x)


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None else round(x, nd)


class FleetView:
    def __init__(self, offline_after_s: float = 300.0) -> None:
        self.offline_after_s = offline_after_s
        self.houses: dict[str, House] = {}
        self.dispatches: OrderedDict[str, Dispatch] = OrderedDict()
        self._open: list[Dispatch] = []  # dispatches still measuring, oldest end first
        self.messages = 0

    # -- input --------------------------------------------------------------------------------------

    def ingest(self, device_id: str, leaf: str, payload: bytes, now: datetime, *, retained: bool = False) -> None:
        """One message from ``<prefix>/<device_id>/<leaf>``; malformed payloads are counted, never raised."""
        if leaf not in LEAVES:
            return
        self.messages += 1
        if not payload:  # an empty retained payload clears the topic (an admin removing a house)
            self._clear(device_id, leaf)
            return
        if leaf == messages.AVAILABILITY:
            text = payload.decode("utf-8", "replace").strip()
            if text not in (messages.ONLINE, messages.OFFLINE):
                self._house(device_id).bad_messages += 1
                return
            h = self._house(device_id)
            h.availability = text
            if not retained and text == messages.ONLINE:
                h.last_seen = now
            return
        try:
            doc = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            self._house(device_id).bad_messages += 1
            return
        if not isinstance(doc, dict) or doc.get("v", messages.VERSION) != messages.VERSION:
            self._house(device_id).bad_messages += 1
            return
        h = self._house(device_id)
        seen = now if not retained else min(_time_or_none(doc, "ts") or now, now)
        if leaf != messages.PLAN and (h.last_seen is None or seen > h.last_seen):
            h.last_seen = seen
        if leaf == messages.STATUS:
            h.status = doc
            p = _num(doc.get("power_kw"))
            if p is not None and (not h.power or seen >= h.power[-1][0]):
                h.power.append((seen, p))
                if not retained:
                    self._record_power(device_id, seen, p, now)
        elif leaf == messages.PLAN:
            h.plan = doc
        elif leaf == messages.FLEXIBILITY:
            h.flexibility = doc
        elif leaf == messages.ALERTS:
            h.alerts = doc
        elif leaf == messages.DR_ACK:
            self._ack(h, doc, now)

    def _clear(self, device_id: str, leaf: str) -> None:
        h = self.houses.get(device_id)
        if h is None or leaf == messages.DR_ACK:
            return
        setattr(h, leaf, None)
        if h.availability is None and h.status is None and h.plan is None and h.flexibility is None and h.alerts is None:
            del self.houses[device_id]  # every retained document cleared: the house left the fleet

    def _record_power(self, device_id: str, t: datetime, power_kw: float, now: datetime) -> None:
        if self._open and self._open[0].event.end < now - BEFORE_WINDOW:
            self._open = [d for d in self._open if d.event.end >= now - BEFORE_WINDOW]
        for d in self._open:
            if device_id in d.target_set:
                d.record(device_id, t, power_kw)

    def _house(self, device_id: str) -> House:
        h = self.houses.get(device_id)
        if h is None:
            h = self.houses[device_id] = House(device_id)
        return h

    def _ack(self, h: House, doc: dict[str, Any], now: datetime) -> None:
        h.last_ack = doc
        d = self.dispatches.get(str(doc.get("event_id")))
        status = doc.get("status")
        if d is None or h.device_id not in d.targets or status not in ("accepted", "partial", "refused"):
            return
        reason = doc.get("reason")
        d.acks[h.device_id] = Ack(status, reason if isinstance(reason, str) else "",
                                  round((now - d.dispatched_at).total_seconds(), 3), _num(doc.get("shed_kw")))

    # -- houses -------------------------------------------------------------------------------------

    def availability(self, h: House, now: datetime) -> tuple[bool, str]:
        """Whether the house is reachable now, and why not."""
        if h.availability == messages.OFFLINE:
            return False, "availability is offline (the house said goodbye or its connection died)"
        if h.last_seen is None:
            return False, "nothing heard from it yet"
        age = (now - h.last_seen).total_seconds()
        if age > self.offline_after_s:
            return False, f"last seen {age:.0f} s ago (more than {self.offline_after_s:g} s)"
        return True, "online"

    def house_doc(self, h: House, now: datetime) -> dict[str, Any]:
        ok, why = self.availability(h, now)
        s = h.status or {}
        plan = h.plan or {}
        alerts = (h.alerts or {}).get("alerts") or []
        return {"device_id": h.device_id, "available": ok, "availability": h.availability or "unknown",
                "unavailable_reason": None if ok else why,
                "last_seen": iso_z(h.last_seen) if h.last_seen else None,
                "last_seen_age_s": None if h.last_seen is None else round((now - h.last_seen).total_seconds(), 1),
                "tags": list(h.tags), "mode": s.get("mode"), "reason": s.get("reason"),
                "indoor_c": s.get("indoor_c"), "outdoor_c": s.get("outdoor_c"), "target_c": s.get("target_c"),
                "power_kw": s.get("power_kw"), "price_eur_per_kwh": s.get("price_eur_per_kwh"),
                "today_cost_eur": s.get("today_cost_eur"), "today_savings_eur": s.get("today_savings_eur"),
                "health": s.get("health"), "alerts": alerts,
                "plan": {"estimated_savings": plan.get("estimated_savings"), "next_changes": plan.get("changes", [])[:4]}
                if h.plan else None,
                "flexibility": h.flexibility is not None, "status_ts": s.get("ts"),
                "last_ack": h.last_ack, "bad_messages": h.bad_messages}

    def houses_doc(self, now: datetime, ids: list[str] | None = None) -> dict[str, Any]:
        chosen = sorted(self.houses) if ids is None else ids
        docs = [self.house_doc(self.houses[i], now) for i in chosen if i in self.houses]
        return {"ts": iso_z(now), "count": len(docs), "available": sum(1 for d in docs if d["available"]),
                "today_savings_eur": round(sum(d["today_savings_eur"] or 0.0 for d in docs), 2),
                "houses": docs}

    def tags(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for h in self.houses.values():
            for t in h.tags:
                out[t] = out.get(t, 0) + 1
        return dict(sorted(out.items()))

    def select(self, group: Group) -> list[str]:
        """The ids in a group: every known house with the tag, or the listed ids (known or not)."""
        if group.tag is not None:
            return sorted(i for i, h in self.houses.items() if group.tag in h.tags)
        return list(dict.fromkeys(group.ids))

    # -- flexibility --------------------------------------------------------------------------------

    def _flex_slots(self, h: House, now: datetime) -> list[tuple[datetime, datetime, float, float | None]] | None:
        """The house's flexibility envelope as (start, end, shed_kw, shed_max_min), or None when absent or expired."""
        doc = h.flexibility
        if doc is None:
            return None
        step = _num(doc.get("slot_minutes")) or 15.0
        out = []
        for s in doc.get("slots") or []:
            if not isinstance(s, dict):
                continue
            start = _time_or_none(s, "start")
            kw = _num(s.get("shed_kw"))
            if start is None or kw is None:
                continue
            out.append((start, start + timedelta(minutes=step), max(kw, 0.0), _num(s.get("shed_max_min"))))
        if not any(a <= now < b for a, b, _k, _m in out):
            return None  # expired: nothing covers now
        return out

    def flexibility(self, ids: list[str], now: datetime, hours: int = 6) -> dict[str, Any]:
        """What the group could shed now and in each of the next hours, and for how long.

        Houses that publish ``flexibility`` count from their envelope; the others are estimated as
        their present ``status.power_kw`` (all they draw could be stopped; how long is unknown) and
        reported apart as ``estimated_kw``. Unavailable houses count for nothing.
        """
        hour0 = floor_time(now, 3600)
        hour_flex = [0.0] * hours
        hour_est = [0.0] * hours
        now_flex = now_est = 0.0
        holds: list[tuple[float, float]] = []  # (shed_kw now, minutes it can hold) per house with an envelope
        per_house = []
        unavailable, unknown = [], []
        for i in ids:
            h = self.houses.get(i)
            if h is None:
                unknown.append(i)
                continue
            ok, why = self.availability(h, now)
            if not ok:
                unavailable.append({"device_id": i, "reason": why})
                continue
            slots = self._flex_slots(h, now)
            if slots is not None:
                cur = next((s for s in slots if s[0] <= now < s[1]), None)
                kw = cur[2] if cur else 0.0
                hold = cur[3] if cur else None
                now_flex += kw
                if hold is not None:
                    holds.append((kw, hold))
                for k in range(hours):
                    a, b = hour0 + timedelta(hours=k), hour0 + timedelta(hours=k + 1)
                    # energy-weighted mean over the hour: slots outside the envelope count as 0
                    kwh = sum(kw_s * (min(b, e) - max(a, s)).total_seconds() / 3600
                              for s, e, kw_s, _m in slots if s < b and e > a)
                    hour_flex[k] += kwh
                per_house.append({"device_id": i, "basis": "flexibility", "shed_kw": _r(kw), "hold_min": hold})
                continue
            p = _num((h.status or {}).get("power_kw"))
            if p is None:
                per_house.append({"device_id": i, "basis": "none", "shed_kw": None, "hold_min": None})
                continue
            p = max(p, 0.0)
            now_est += p
            for k in range(hours):
                hour_est[k] += p
            per_house.append({"device_id": i, "basis": "estimate", "shed_kw": _r(p), "hold_min": None})
        hold_values = [m for _k, m in holds]
        return {
            "ts": iso_z(now), "houses": len(ids), "available": len(per_house),
            "unavailable": unavailable, "unknown": unknown,
            "now": {"shed_kw": _r(now_flex + now_est), "from_flexibility_kw": _r(now_flex), "estimated_kw": _r(now_est),
                    "houses_flexibility": sum(1 for p in per_house if p["basis"] == "flexibility"),
                    "houses_estimated": sum(1 for p in per_house if p["basis"] == "estimate"),
                    "hold_min": {"min": min(hold_values), "median": statistics.median(hold_values),
                                 "max": max(hold_values)} if hold_values else None},
            "sustain": [{"minutes": m, "shed_kw": _r(sum(k for k, hold in holds if hold >= m))} for m in SUSTAIN_MIN],
            "hours": [{"start": iso_z(hour0 + timedelta(hours=k)), "shed_kw": _r(hour_flex[k] + hour_est[k]),
                       "from_flexibility_kw": _r(hour_flex[k]), "estimated_kw": _r(hour_est[k])} for k in range(hours)],
            "estimate_note": "estimated_kw: houses without a flexibility envelope, counted at their present "
                             "status.power_kw for as long as asked (an upper bound; how long they can hold is unknown)",
            "per_house": per_house,
        }

    # -- dispatch -----------------------------------------------------------------------------------

    def start_dispatch(self, event: messages.DemandResponseEvent, group: Group, targets: list[str], now: datetime,
                       ack_timeout_s: float) -> Dispatch:
        unavailable = {}
        unknown = []
        for i in targets:
            h = self.houses.get(i)
            if h is None:
                unknown.append(i)
                continue
            ok, why = self.availability(h, now)
            if not ok:
                unavailable[i] = why
        d = Dispatch(event, group, tuple(targets), now, ack_timeout_s, unavailable, tuple(unknown))
        for i in targets:
            h = self.houses.get(i)
            for t, p in h.power if h is not None else ():
                d.record(i, t, p)
        self.dispatches[event.event_id] = d
        self._open = sorted([*self._open, d], key=lambda x: x.event.end)
        while len(self.dispatches) > MAX_DISPATCHES:
            self.dispatches.popitem(last=False)
        return d

    def dispatch_doc(self, d: Dispatch, now: datetime) -> dict[str, Any]:
        ev = d.event
        waited = (now - d.dispatched_at).total_seconds()
        timed_out = waited >= d.ack_timeout_s
        rows = []
        counts = {"accepted": 0, "partial": 0, "refused": 0, "missing": 0, "pending": 0}
        reasons: dict[str, dict[str, int]] = {}
        promised = measured = 0.0
        n_measured = 0
        measuring = now > d.t0
        for i in d.targets:
            ack = d.acks.get(i)
            row: dict[str, Any] = {"device_id": i, "available_at_dispatch": i not in d.unavailable and i not in d.unknown}
            if ack is not None:
                status, reason = ack.status, ack.reason
                row["ack_after_s"] = ack.after_s
                row["shed_kw_promised"] = ack.shed_kw
                if ack.shed_kw is not None and status != "refused":
                    promised += ack.shed_kw
            elif i in d.unknown:
                status, reason = "missing", "unknown house: never seen on the broker"
            elif i in d.unavailable:
                status, reason = "missing", f"unavailable at dispatch: {d.unavailable[i]}"
            elif timed_out:
                status, reason = "missing", f"no acknowledgement within {d.ack_timeout_s:g} s"
            else:
                status, reason = "pending", "waiting for the acknowledgement"
            counts[status] += 1
            if status != "accepted":
                by = reasons.setdefault(status, {})
                by[reason] = by.get(reason, 0) + 1
            row["status"], row["reason"] = status, reason
            before = d.before[i].value if i in d.before else d.last_before.get(i)
            during = d.during[i].value if measuring and i in d.during else None
            row["power_before_kw"], row["power_during_kw"] = _r(before), _r(during)
            row["shed_kw_measured"] = _r(before - during) if before is not None and during is not None else None
            if row["shed_kw_measured"] is not None:
                measured += before - during  # type: ignore[operator]
                n_measured += 1
            rows.append(row)
        ack_times = [a.after_s for a in d.acks.values() if a.after_s is not None]
        complete = counts["pending"] == 0
        return {"event": ev.as_json(), "group": d.group.as_json(), "dispatched_at": iso_z(d.dispatched_at),
                "ack_timeout_s": d.ack_timeout_s, "targets": len(d.targets), "summary": counts, "complete": complete,
                "acks": len(d.acks),
                "last_ack_after_s": max(ack_times) if ack_times else None,
                "reasons": reasons,
                "shed": {"promised_kw": _r(promised), "measured_kw": _r(measured) if n_measured else None,
                         "houses_measured": n_measured,
                         "basis": "status.power_kw: mean in the 30 min before the start minus the mean since the "
                                  "start (fleet receive times)",
                         "window": {"start": iso_z(ev.start), "end": iso_z(ev.end)}},
                "houses": rows}
