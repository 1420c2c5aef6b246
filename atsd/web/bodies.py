"""Request bodies and query strings to typed values, or :class:`InputError` saying what is wrong.

Every check that can fail on client input lives here, so that no bad input reaches the daemon and
none can turn into a 5xx: messages name the field, what is expected and what came.
"""

from __future__ import annotations

import difflib
import itertools
import json
import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from atsd.config import Config
from atsd.core.modes import Mode
from atsd.core.plan import Plan
from atsd.core.timegrid import iso_z, parse_utc
from atsd.messages import DemandResponseEvent, MessageError
from atsd.web.source import ProposedSchedule

MAX_SCHEDULE_ENTRIES = 2000
MAX_OVERRIDE_H = 48
MAX_HISTORY_DAYS = 31
DR_START_WINDOW = timedelta(hours=48)  # how far ahead an event may be announced


class InputError(Exception):
    """Client input that cannot be used; ``status`` is 400 unless a more specific 4xx fits."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


def _forbid_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


async def read_json(request: web.Request, max_bytes: int) -> dict[str, Any]:
    """The body as a JSON object; 413 when larger than ``max_bytes``, 400 when not a JSON object."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise InputError(f"request body is {request.content_length} bytes; the limit is {max_bytes}", 413)
    raw = await request.read()  # aiohttp enforces client_max_size while reading (413)
    if len(raw) > max_bytes:
        raise InputError(f"request body is {len(raw)} bytes; the limit is {max_bytes}", 413)
    if not raw.strip():
        raise InputError("request body is empty; send a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"request body is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        doc = json.loads(text, parse_constant=_forbid_constant)
    except RecursionError:
        raise InputError("request body is nested too deeply") from None
    except ValueError as exc:
        raise InputError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InputError(f"request body must be a JSON object (got {type(doc).__name__})")
    return doc


def _show(v: Any) -> str:
    text = json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def reject_unknown(doc: Mapping[str, Any], known: tuple[str, ...]) -> None:
    for key in doc:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known fields: {', '.join(known)}"
            raise InputError(f"unknown field {_show(key)}{hint}")


def get_str(doc: Mapping[str, Any], key: str, *, default: str | None = None, max_len: int = 200) -> str | None:
    v = doc.get(key)
    if v is None:
        return default
    if not isinstance(v, str):
        raise InputError(f"{key} must be a string (got {_show(v)})")
    if len(v) > max_len:
        raise InputError(f"{key} must be at most {max_len} characters (got {len(v)})")
    return v


def get_number(doc: Mapping[str, Any], key: str, lo: float, hi: float, *, required: bool = True) -> float | None:
    v = doc.get(key)
    if v is None:
        if required:
            raise InputError(f"{key} is required: a number within {lo:g}..{hi:g}")
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise InputError(f"{key} must be a number within {lo:g}..{hi:g} (got {_show(v)})")
    if not lo <= v <= hi:
        raise InputError(f"{key} must be within {lo:g}..{hi:g} (got {v:g})")
    return float(v)


def parse_time(v: Any, key: str) -> datetime:
    """An ISO-8601 time with Z or an offset (a bare date means its UTC midnight)."""
    if not isinstance(v, str) or len(v) > 40:
        raise InputError(f"{key} must be an ISO-8601 time with Z or an offset, like 2026-01-15T12:00:00Z "
                         f"(got {_show(v)})")
    try:
        t = parse_utc(v)
        iso_z(t + timedelta(days=400))  # far-future and far-past years overflow later: refuse them now
        iso_z(t - timedelta(days=400))
    except (ValueError, OverflowError) as exc:
        raise InputError(f"{key}: {v!r} is not a usable time ({exc}); write e.g. 2026-01-15T12:00:00Z") from None
    return t


def parse_mode(v: Any, key: str = "mode", *, auto: bool = False) -> Mode | None:
    names = "OFF, ECO, NORMAL, BOOST" + (" or AUTO" if auto else "")
    if not isinstance(v, str):
        raise InputError(f"{key} must be one of {names} (got {_show(v)})")
    if auto and v.strip().upper() == "AUTO":
        return None
    try:
        return Mode.parse(v)
    except ValueError:
        raise InputError(f"{key} must be one of {names} (got {_show(v)})") from None


# -- commands ----------------------------------------------------------------------------------


def parse_override(doc: Mapping[str, Any], now: datetime) -> tuple[Mode | None, datetime, str]:
    """``{"mode": "BOOST", "until": "...Z" | "minutes": 90, "reason": "..."}``; mode AUTO cancels."""
    reject_unknown(doc, ("mode", "until", "minutes", "reason"))
    if "mode" not in doc:
        raise InputError("mode is required: one of OFF, ECO, NORMAL, BOOST or AUTO (back to the plan)")
    mode = parse_mode(doc["mode"], auto=True)
    reason = get_str(doc, "reason", default="manual override") or "manual override"
    until_raw, minutes = doc.get("until"), get_number(doc, "minutes", 1, MAX_OVERRIDE_H * 60, required=False)
    if until_raw is not None and minutes is not None:
        raise InputError("give either until or minutes, not both")
    if mode is None:
        return None, now, reason
    if until_raw is None and minutes is None:
        raise InputError("until (an ISO-8601 time) or minutes is required with a mode")
    until = parse_time(until_raw, "until") if until_raw is not None else now + timedelta(minutes=minutes or 0)
    if until <= now:
        raise InputError(f"until must be in the future (now {iso_z(now)}, got {iso_z(until)})")
    if until - now > timedelta(hours=MAX_OVERRIDE_H):
        raise InputError(f"until must be within {MAX_OVERRIDE_H} h of now ({iso_z(now)}; got {iso_z(until)})")
    return mode, until, reason


def parse_demand_response(doc: Mapping[str, Any], now: datetime, cfg: Config) -> DemandResponseEvent:
    """The MQTT contract's event (``atsd.messages``) with ``start`` defaulting to now and an id made up."""
    reject_unknown(doc, ("v", "event_id", "start", "duration_min", "kind", "power_limit_kw"))
    filled = dict(doc)
    start = parse_time(doc["start"], "start") if doc.get("start") is not None else now
    if start < now - timedelta(minutes=cfg.planner.slot_minutes) or start > now + DR_START_WINDOW:
        raise InputError(f"start must be within now..now+{DR_START_WINDOW.total_seconds() / 3600:g} h "
                         f"(now {iso_z(now)}; got {iso_z(start)})")
    filled["start"] = iso_z(start)
    if filled.get("event_id") is None:
        filled["event_id"] = f"http-{start:%Y%m%dT%H%M%SZ}"
    try:
        return DemandResponseEvent.parse(filled, source="http", max_duration_h=cfg.grid.dr_max_duration_h)
    except (MessageError, ValueError, OverflowError) as exc:
        raise InputError(str(exc)) from None


def parse_schedule(doc: Mapping[str, Any], plan: Plan) -> ProposedSchedule:
    """``{"schedule": [{"start": "...Z", "mode": "ECO"}, ...], "end": "...Z"?}``.

    Entry ``i`` holds until entry ``i+1`` starts; the last holds until ``end``, by default one plan
    slot, so that the schedule of ``GET /api/plan`` posted back evaluates exactly that plan.
    """
    items = doc.get("schedule")
    if not isinstance(items, list) or not items:
        raise InputError("schedule must be a non-empty list of {\"start\": time, \"mode\": mode}")
    if len(items) > MAX_SCHEDULE_ENTRIES:
        raise InputError(f"schedule may have at most {MAX_SCHEDULE_ENTRIES} entries (got {len(items)})")
    entries: list[tuple[datetime, Mode]] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise InputError(f"schedule[{i}] must be an object with start and mode (got {_show(item)})")
        if "start" not in item or "mode" not in item:
            raise InputError(f"schedule[{i}] needs start and mode")
        t = parse_time(item["start"], f"schedule[{i}].start")
        m = parse_mode(item["mode"], f"schedule[{i}].mode")
        assert m is not None
        if entries and t <= entries[-1][0]:
            raise InputError(f"schedule[{i}].start must be after schedule[{i - 1}].start ({iso_z(t)})")
        entries.append((t, m))
    step = timedelta(seconds=plan.grid.step_s)
    end = parse_time(doc["end"], "end") if doc.get("end") is not None else entries[-1][0] + step
    if end <= entries[-1][0]:
        raise InputError(f"end must be after the last entry's start ({iso_z(entries[-1][0])}; got {iso_z(end)})")
    return ProposedSchedule(tuple(entries), end)


def parse_legacy_schedule(items: Any, plan: Plan) -> ProposedSchedule:
    """The original product's ``proposed_schedule``: ``[{"hour": h, "mode": m}]`` hour by hour from the
    plan's start, or entries with a ``timestamp`` (as its daily plan returns them)."""
    if not isinstance(items, list) or not items:
        raise InputError("proposed_schedule must be a non-empty list of {\"hour\": n, \"mode\": mode}")
    if len(items) > MAX_SCHEDULE_ENTRIES:
        raise InputError(f"proposed_schedule may have at most {MAX_SCHEDULE_ENTRIES} entries (got {len(items)})")
    for i, item in enumerate(items):
        if not isinstance(item, dict) or "mode" not in item:
            raise InputError(f"proposed_schedule[{i}] must be an object with a mode (got {_show(item)})")
    timed = all(item.get("timestamp") is not None or item.get("start") is not None for item in items)
    hour = timedelta(hours=1)
    if timed:
        sched = [{"start": item.get("timestamp", item.get("start")), "mode": item["mode"]} for item in items]
        doc = {"schedule": sched}
        try:
            out = parse_schedule(doc, plan)
        except InputError as exc:
            raise InputError(exc.message.replace("schedule[", "proposed_schedule[")) from None
        times = [t for t, _ in out.entries]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        return ProposedSchedule(out.entries, times[-1] + (min(gaps) if gaps else hour))
    entries = []
    for i, item in enumerate(items):
        m = parse_mode(item["mode"], f"proposed_schedule[{i}].mode")
        assert m is not None
        entries.append((plan.grid.start + i * hour, m))
    return ProposedSchedule(tuple(entries), entries[-1][0] + hour)


def parse_range(query: Mapping[str, str], now: datetime) -> tuple[datetime, datetime]:
    """``?from=&to=`` (default: the last 24 hours), at most ``MAX_HISTORY_DAYS`` apart."""
    for key in query:
        if key not in ("from", "to"):
            raise InputError(f"unknown query parameter {key!r}; use from and to (ISO-8601 times)")
    end = parse_time(query["to"], "to") if "to" in query else now
    start = parse_time(query["from"], "from") if "from" in query else end - timedelta(hours=24)
    if start >= end:
        raise InputError(f"from must be before to (got {iso_z(start)} .. {iso_z(end)})")
    if end - start > timedelta(days=MAX_HISTORY_DAYS):
        raise InputError(f"from..to may span at most {MAX_HISTORY_DAYS} days")
    return start, end
