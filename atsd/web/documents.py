"""The JSON documents of the API, built from a snapshot, a plan and a forecast (pure functions).

Every time leaves as UTC ISO-8601 with ``Z``, every mode as its name, every unknown number as
``null``. The handlers in ``api.py`` and ``legacy.py`` only parse requests and call these.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

import numpy as np

from atsd.config import Config
from atsd.core import house
from atsd.core.comfort import comfort_band
from atsd.core.forecast import CO2, PRICE, Forecast
from atsd.core.plan import Plan, Slot
from atsd.core.timegrid import floor_time, iso_z
from atsd.web.source import Snapshot

FORECAST_HOURS = 48


def plain(x: Any) -> Any:
    """``x`` as JSON-ready data: UTC times with Z, enum values, NaN and infinities as None."""
    if isinstance(x, datetime):
        return iso_z(x)
    if isinstance(x, Enum):
        return x.value
    if isinstance(x, bool) or x is None or isinstance(x, str | int):
        return x
    if isinstance(x, float | np.floating):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, Mapping):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [plain(v) for v in x]
    raise TypeError(f"cannot serialise {type(x).__name__} to JSON")


def dumps(doc: Any) -> str:
    return json.dumps(plain(doc), allow_nan=False, ensure_ascii=False, separators=(",", ":"))


def current_slot(plan: Plan | None, now: datetime) -> Slot | None:
    if plan is None:
        return None
    i = plan.grid.index_of(now)
    return plan.slots[i] if 0 <= i < len(plan.slots) else None


def next_changes(plan: Plan | None, now: datetime, limit: int = 8) -> list[dict[str, Any]]:
    """The planned mode changes after ``now``: start, mode and reason of each."""
    if plan is None:
        return []
    out: list[dict[str, Any]] = []
    cur = current_slot(plan, now)
    last = cur.mode if cur else None
    for s in plan.slots:
        if s.start <= now:
            continue
        if s.mode is not last:
            out.append({"start": s.start, "mode": s.mode, "reason": s.reason})
            last = s.mode
            if len(out) >= limit:
                break
    return out


def plan_summary(plan: Plan | None, now: datetime) -> dict[str, Any] | None:
    if plan is None:
        return None
    return {"planner": plan.planner, "generated_at": plan.generated_at, "start": plan.grid.start,
            "end": plan.grid.end, "slot_minutes": plan.grid.step_s // 60,
            "estimated_cost": round(plan.estimated_cost, 2), "baseline_cost": round(plan.baseline_cost, 2),
            "estimated_savings": round(plan.estimated_savings, 2), "total_energy_kwh": round(plan.total_energy_kwh, 2),
            "comfort_min_c": plan.min_c, "comfort_max_c": plan.max_c, "feasible": plan.comfort.feasible,
            "note": plan.note or plan.comfort.recommendation, "next_changes": next_changes(plan, now)}


def status_doc(cfg: Config, snap: Snapshot, plan: Plan | None) -> dict[str, Any]:
    """``GET /api/status``: the snapshot, the device, the plan's totals and both savings figures."""
    doc: dict[str, Any] = {
        "device": {"device_id": cfg.device.device_id, "name": cfg.device.name, "timezone": cfg.device.timezone,
                   "comfort": {"min_c": cfg.comfort.min_c, "target_c": cfg.comfort.target_c,
                               "max_c": cfg.comfort.max_c}},
        **snap,
        "plan": plan_summary(plan, snap["now"]),
        "savings": {
            "model": {"label": "model estimate against an always-NORMAL baseline on the same weather and prices",
                      "today_eur": snap["today"]["savings_eur"],
                      "plan_eur": round(plan.estimated_savings, 2) if plan else None},
            "measured": {"label": "predicted against measured temperature and energy",
                         **(snap["measured"] or {"days": 0.0, "days_needed": None,
                                                 "note": "this installation does not record history"})},
        },
    }
    return doc


def current_action_doc(cfg: Config, snap: Snapshot, plan: Plan | None) -> dict[str, Any]:
    """``GET /api/current-action``: what the heat pump does now, why, and what comes next."""
    now = snap["now"]
    slot = current_slot(plan, now)
    changes = next_changes(plan, now, limit=1)
    return {"device_id": cfg.device.device_id, "time": now, "mode": snap["mode"], "reason": snap["reason"],
            "by": snap["by"], "since": snap["mode_since"], "planned_mode": slot.mode if slot else None,
            "until": changes[0]["start"] if changes else (plan.grid.end if plan else None),
            "next": changes[0] if changes else None,
            "electricity_price": round(slot.price_eur_per_kwh, 4) if slot else None,
            "spot_eur_per_mwh": round(slot.spot_eur_per_mwh, 2) if slot else None,
            "outdoor_temp": snap["outdoor_c"], "indoor_temp": snap["indoor_c"],
            "override": snap.get("override"), "demand_response": snap.get("demand_response")}


# -- forecast and cheap-and-green windows ----------------------------------------------------------


@dataclass(frozen=True)
class Windows:
    kind: str  # "cheap-and-green" or "cheap-only"
    note: str
    cheap_max_eur_per_kwh: float | None
    green_max_g_per_kwh: float | None
    flags_cheap: list[bool]
    flags_green: list[bool | None]
    items: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "note": self.note, "cheap_max_eur_per_kwh": self.cheap_max_eur_per_kwh,
                "green_max_g_per_kwh": self.green_max_g_per_kwh, "items": self.items}


def horizon(forecast: Forecast, now: datetime, hours: int = FORECAST_HOURS) -> Forecast:
    """The forecast from the slot containing ``now`` for ``hours``."""
    g = forecast.grid
    i0 = max(0, g.index_of(now))
    return forecast.window(i0, i0 + int(hours * 3600 // g.step_s))


def cheap_green_windows(cfg: Config, forecast: Forecast) -> Windows:
    """Runs of slots that are cheap (paid price in the lowest ``cheap_quantile`` of the horizon) and
    green (CO2 intensity in the lowest ``cheap_quantile``). Without CO2 data: cheap runs only, labelled."""
    g = forecast.grid
    q = cfg.planner.cheap_quantile
    spot = forecast.get(PRICE)
    price = house.tariff(cfg).price_eur_per_kwh(g, np.nan_to_num(spot, nan=0.0)) if g.n else np.zeros(0)
    price = np.where(np.isfinite(spot), price, np.nan)
    known = np.isfinite(price)
    cheap = np.zeros(g.n, dtype=bool)
    cheap_max: float | None = None
    if known.any():
        cheap_max = float(np.quantile(price[known], q))
        cheap = known & (price <= cheap_max)
    co2 = forecast.series.get(CO2)
    co2_known = np.isfinite(co2) if co2 is not None else np.zeros(g.n, dtype=bool)
    green_max: float | None = None
    if co2 is not None and co2_known.any():
        green_max_g = float(np.quantile(co2[co2_known], q))
        green_max = green_max_g
        green = co2_known & (co2 <= green_max_g)
        both = cheap & green
        kind = "cheap-and-green"
        note = (f"slots whose paid price and CO2 intensity are both in the lowest {q:.0%} of the horizon")
        flags_green: list[bool | None] = [bool(green[i]) if co2_known[i] else None for i in range(g.n)]
    else:
        both = cheap
        kind = "cheap-only"
        note = (f"no CO2 intensity is available: slots whose paid price is in the lowest {q:.0%} of the "
                "horizon, not checked for CO2")
        flags_green = [None] * g.n
    items: list[dict[str, Any]] = []
    i = 0
    while i < g.n:
        if not both[i]:
            i += 1
            continue
        j = i
        while j < g.n and both[j]:
            j += 1
        item: dict[str, Any] = {"start": g.time(i), "end": g.time(j), "minutes": (j - i) * g.step_s // 60,
                                "mean_price_eur_per_kwh": round(float(np.mean(price[i:j])), 4)}
        if co2 is not None and green_max is not None:
            item["mean_co2_g_per_kwh"] = round(float(np.mean(co2[i:j])), 1)
        items.append(item)
        i = j
    return Windows(kind, note, None if cheap_max is None else round(cheap_max, 4),
                   None if green_max is None else round(green_max, 1), [bool(c) for c in cheap], flags_green, items)


def forecast_doc(cfg: Config, forecast: Forecast, now: datetime) -> dict[str, Any]:
    """``GET /api/forecast``: the ``atsd forecast --json`` document for 48 h plus the windows."""
    fc = horizon(forecast, now)
    doc: dict[str, Any] = {"device_id": cfg.device.device_id, "generated_at": now, **fc.as_json()}
    doc["windows"] = cheap_green_windows(cfg, fc).as_json()
    return doc


def price_carbon_doc(cfg: Config, forecast: Forecast, snap: Snapshot) -> dict[str, Any]:
    """The original product's ``GET /forecasts/price-carbon``, from the same data."""
    fc = horizon(forecast, snap["now"])
    w = cheap_green_windows(cfg, fc)
    spot = fc.get(PRICE)
    co2 = fc.series.get(CO2)
    rows = []
    for i, t in enumerate(fc.grid.times()):
        rows.append({"timestamp": t, "price_eur_mwh": float(spot[i]), "wind_percentage": None,
                     "co2_g_per_kwh": float(co2[i]) if co2 is not None else None,
                     "is_green": w.flags_green[i], "is_cheap": w.flags_cheap[i]})
    return {"forecast": rows, "current_wind_percentage": None,
            "grid_stress_level": snap.get("grid_stress") or "unknown", "windows": w.as_json()}


def slot_history(rows: list[Mapping[str, Any]], step_s: int) -> list[dict[str, Any]]:
    """History on the slot grid, however often the daemon recorded: means of the temperatures and
    prices in each slot and the last mode, so the page draws one bar per slot."""
    buckets: dict[datetime, list[Mapping[str, Any]]] = {}
    for r in rows:
        buckets.setdefault(floor_time(r["time"], step_s), []).append(r)

    def mean(items: list[Mapping[str, Any]], key: str, nd: int) -> float | None:
        vals = [float(x[key]) for x in items if x.get(key) is not None and math.isfinite(float(x[key]))]
        return round(sum(vals) / len(vals), nd) if vals else None

    out = []
    for t in sorted(buckets):
        items = buckets[t]
        modes = [x["mode"] for x in items if x.get("mode") is not None]
        out.append({"t": t, "mode": modes[-1] if modes else None, "price": mean(items, "price_eur_per_kwh", 4),
                    "temp": mean(items, "indoor_c", 2), "out": mean(items, "outdoor_c", 1)})
    return out


def chart_doc(plan: Plan | None, history: list[Mapping[str, Any]], snap: Snapshot,
              cfg: Config, past_hours: int) -> dict[str, Any]:
    """``GET /api/chart``, what the page draws: measured slots from history up to now, the plan's
    slots (its predicted temperature also over the past hours, to compare with the measured)."""
    now = snap["now"]
    start = now - timedelta(hours=past_hours)
    step_s = plan.grid.step_s if plan else cfg.planner.slot_minutes * 60
    future = []
    if plan is not None:
        band = comfort_band(plan.grid, cfg.comfort, cfg.device.tz)
        for i, s in enumerate(plan.slots):
            if s.start + timedelta(seconds=step_s) <= start:
                continue
            future.append({"t": s.start, "mode": s.mode, "price": round(s.price_eur_per_kwh, 4),
                           "temp": round(s.expected_indoor_c, 2), "start_temp": round(s.start_indoor_c, 2),
                           "out": round(s.outdoor_c, 1), "est": s.price_estimated,
                           "min": float(band.min_c[i]), "max": float(band.max_c[i])})
    return {"now": now, "from": start,
            "to": plan.grid.end if plan else now + timedelta(hours=FORECAST_HOURS - past_hours),
            "slot_minutes": step_s // 60,
            "comfort": {"min_c": plan.min_c if plan else cfg.comfort.min_c,
                        "target_c": cfg.comfort.target_c,
                        "max_c": plan.max_c if plan else cfg.comfort.max_c},
            "past": slot_history([r for r in history if start <= r["time"] < now], step_s), "future": future}
