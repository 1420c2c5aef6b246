"""The MQTT contract between a house and anyone watching it (Home Assistant aside): version 1.

Every topic lives under ``<prefix>/<device_id>/`` (prefix ``atsd`` by default):

| topic | retained | direction | payload |
| --- | --- | --- | --- |
| ``availability`` | yes | house | ``online`` / ``offline`` (the last will) |
| ``status`` | yes | house | :func:`status_message` |
| ``plan`` | yes | house | :func:`plan_summary_message` |
| ``flexibility`` | yes | house | :func:`flexibility_message` |
| ``alerts`` | yes | house | :func:`alerts_message` |
| ``dr/set`` | no | fleet -> house | :class:`DemandResponseEvent` |
| ``dr/ack`` | no | house -> fleet | :func:`dr_ack_message` |
| ``mode/set`` | no | fleet -> house | :class:`ModeCommand` |

Every JSON payload carries ``"v": 1``. A house only publishes under its own id and only reads its
own ``dr/set`` and ``mode/set`` (see ``deploy/mosquitto/acl``; the contract and its versioning rules
are documented in ``docs/fleet.md``). This module is pure: it builds and
validates payloads; the daemon and the fleet service do the I/O.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from atsd.core.flex import FlexSlot as FlexSlot  # re-exported: the contract's flexibility rows
from atsd.core.modes import Mode
from atsd.core.timegrid import iso_z, parse_utc

VERSION = 1
STATUS, PLAN, FLEXIBILITY, ALERTS, AVAILABILITY = "status", "plan", "flexibility", "alerts", "availability"
DR_SET, DR_ACK, MODE_SET = "dr/set", "dr/ack", "mode/set"
ONLINE, OFFLINE = "online", "offline"


class MessageError(ValueError):
    """A payload that does not follow the contract; the message says which field and why."""


def topic(prefix: str, device_id: str, leaf: str) -> str:
    return f"{prefix}/{device_id}/{leaf}"


def split_topic(prefix: str, t: str) -> tuple[str, str] | None:
    """``atsd/house-1/dr/set`` -> ``("house-1", "dr/set")``; None for foreign topics."""
    parts = t.split("/")
    if len(parts) < 3 or parts[0] != prefix:
        return None
    return parts[1], "/".join(parts[2:])


def _num(x: float | None, nd: int = 2) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), nd)


def dumps(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()


def status_message(*, device_id: str, ts: datetime, mode: Mode, reason: str, indoor_c: float | None,
                   outdoor_c: float | None, target_c: float, price_eur_per_kwh: float | None,
                   today_cost_eur: float, today_savings_eur: float, health: dict[str, Any],
                   tags: tuple[str, ...] = (), power_kw: float | None = None) -> dict[str, Any]:
    return {"v": VERSION, "device_id": device_id, "ts": iso_z(ts), "mode": mode.value, "reason": reason,
            "indoor_c": _num(indoor_c), "outdoor_c": _num(outdoor_c), "target_c": _num(target_c),
            "price_eur_per_kwh": _num(price_eur_per_kwh, 4), "power_kw": _num(power_kw, 3),
            "today_cost_eur": _num(today_cost_eur), "today_savings_eur": _num(today_savings_eur),
            "health": health, "tags": list(tags)}


def plan_summary_message(plan_doc: dict[str, Any], max_changes: int = 12) -> dict[str, Any]:
    """The plan document reduced to what a fleet needs: the next mode changes and the totals."""
    changes = []
    last = None
    for s in plan_doc.get("schedule", []):
        if s["mode"] != last:
            changes.append({"start": s["start"], "mode": s["mode"]})
            last = s["mode"]
        if len(changes) >= max_changes:
            break
    sched = plan_doc.get("schedule", [])
    return {"v": VERSION, "device_id": plan_doc.get("device_id"), "generated_at": plan_doc.get("generated_at"),
            "planner": plan_doc.get("planner"), "changes": changes,
            "horizon_end": sched[-1]["start"] if sched else None,
            "estimated_cost": plan_doc.get("estimated_cost"), "estimated_savings": plan_doc.get("estimated_savings")}


def flexibility_message(device_id: str, ts: datetime, slot_minutes: int, slots: list[FlexSlot]) -> dict[str, Any]:
    return {"v": VERSION, "device_id": device_id, "ts": iso_z(ts), "slot_minutes": slot_minutes,
            "slots": [{"start": iso_z(s.start), "shed_kw": _num(s.shed_kw, 3), "shed_max_min": _num(s.shed_max_min, 0),
                       "rebound_kwh": _num(s.rebound_kwh, 3)} for s in slots]}


def alerts_message(device_id: str, ts: datetime, alerts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"v": VERSION, "device_id": device_id, "ts": iso_z(ts), "alerts": alerts}


def _obj(payload: bytes | str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(payload, dict):
        return payload
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MessageError(f"payload is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise MessageError("payload must be a JSON object")
    return doc


def _time(doc: dict[str, Any], key: str) -> datetime:
    v = doc.get(key)
    if not isinstance(v, str):
        raise MessageError(f"{key} must be an ISO-8601 time with Z or an offset")
    try:
        return parse_utc(v)
    except ValueError as exc:
        raise MessageError(f"{key}: {exc}") from None


@dataclass(frozen=True)
class DemandResponseEvent:
    event_id: str
    start: datetime
    duration_min: float
    kind: str  # "shed" or "boost"
    power_limit_kw: float | None = None
    source: str = "mqtt"

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.duration_min)

    @classmethod
    def parse(cls, payload: bytes | str | dict[str, Any], source: str = "mqtt",
              max_duration_h: float = 24.0) -> DemandResponseEvent:
        doc = _obj(payload)
        if doc.get("v", VERSION) != VERSION:
            raise MessageError(f"unsupported contract version {doc.get('v')!r} (this house speaks {VERSION})")
        eid = doc.get("event_id")
        if not isinstance(eid, str) or not 0 < len(eid) <= 64:
            raise MessageError("event_id must be a string of 1..64 characters")
        start = _time(doc, "start")
        dur = doc.get("duration_min")
        if isinstance(dur, bool) or not isinstance(dur, int | float) or not 0 < dur <= max_duration_h * 60:
            raise MessageError(f"duration_min must be a number within 0..{max_duration_h * 60:g} (got {dur!r})")
        kind = doc.get("kind")
        if kind not in ("shed", "boost"):
            raise MessageError(f"kind must be 'shed' or 'boost' (got {kind!r})")
        lim = doc.get("power_limit_kw")
        if lim is not None and (isinstance(lim, bool) or not isinstance(lim, int | float) or lim < 0 or lim > 100):
            raise MessageError(f"power_limit_kw must be a number within 0..100 (got {lim!r})")
        return cls(eid, start, float(dur), kind, None if lim is None else float(lim), source)

    def as_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"v": VERSION, "event_id": self.event_id, "start": iso_z(self.start),
                             "duration_min": self.duration_min, "kind": self.kind}
        if self.power_limit_kw is not None:
            d["power_limit_kw"] = self.power_limit_kw
        return d


def dr_ack_message(device_id: str, event_id: str, status: str, reason: str, ts: datetime,
                   shed_kw: float | None = None, window: tuple[datetime, datetime] | None = None) -> dict[str, Any]:
    if status not in ("accepted", "partial", "refused"):
        raise ValueError(f"status must be accepted, partial or refused (got {status!r})")
    doc: dict[str, Any] = {"v": VERSION, "device_id": device_id, "event_id": event_id, "status": status,
                           "reason": reason, "ts": iso_z(ts), "shed_kw": _num(shed_kw, 3)}
    if window:
        doc["start"], doc["end"] = iso_z(window[0]), iso_z(window[1])
    return doc


@dataclass(frozen=True)
class ModeCommand:
    """A mode to hold (``until`` a time, or the receiver's default), or ``None`` (AUTO): back to the plan."""

    mode: Mode | None
    until: datetime | None
    reason: str = "remote command"

    @classmethod
    def parse(cls, payload: bytes | str | dict[str, Any]) -> ModeCommand:
        try:
            raw = payload.decode() if isinstance(payload, bytes) else payload
        except UnicodeDecodeError:
            raise MessageError("payload is not UTF-8 text") from None
        if isinstance(raw, str) and raw.strip().upper() == "AUTO":
            return cls(None, None)
        if isinstance(raw, str) and raw.strip().upper() in {m.value for m in Mode}:
            return cls(Mode.parse(raw), None)  # Home Assistant's select sends the bare option
        doc = _obj(raw)
        m = doc.get("mode")
        if not isinstance(m, str):
            raise MessageError("mode must be one of AUTO, OFF, ECO, NORMAL, BOOST")
        if m.strip().upper() == "AUTO":
            return cls(None, None)
        try:
            mode = Mode.parse(m)
        except ValueError as exc:
            raise MessageError(str(exc)) from None
        until = _time(doc, "until") if doc.get("until") is not None else None
        reason = doc.get("reason", "remote command")
        return cls(mode, until, reason if isinstance(reason, str) else "remote command")
