"""The pure document builders: JSON conversion and the cheap-and-green windows."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import numpy as np

from atsd.config import Config
from atsd.core.forecast import CO2, PRICE, TEMP, Forecast
from atsd.core.modes import Mode
from atsd.core.timegrid import Grid
from atsd.web import DemoStatusSource
from atsd.web.documents import chart_doc, cheap_green_windows, dumps, plain, slot_history

T0 = datetime(2026, 1, 20, 0, 0, tzinfo=UTC)


def test_plain_writes_utc_z_mode_names_and_null_for_unknown_numbers() -> None:
    helsinki = timezone(timedelta(hours=2))
    doc = {"t": datetime(2026, 1, 20, 14, 0, tzinfo=helsinki), "m": Mode.BOOST, "x": math.nan, "y": np.float64(1.5),
           "z": [math.inf, np.int64(3)], "ok": True}
    assert plain(doc) == {"t": "2026-01-20T12:00:00Z", "m": "BOOST", "x": None, "y": 1.5, "z": [None, 3], "ok": True}
    assert "NaN" not in dumps({"a": math.nan})


def forecast(prices: list[float], co2: list[float] | None) -> Forecast:
    g = Grid(T0, 3600, len(prices))
    series = {PRICE: np.array(prices, float), TEMP: np.zeros(len(prices))}
    if co2 is not None:
        series[CO2] = np.array(co2, float)
    return Forecast(g, series)


def test_windows_are_runs_that_are_both_cheap_and_green() -> None:
    prices = [10, 10, 10, 200, 200, 200, 10, 10, 200]
    co2 = [50, 50, 300, 50, 50, 300, 300, 50, 300]
    w = cheap_green_windows(Config(), forecast(prices, co2))
    assert w.kind == "cheap-and-green"
    assert [(i["start"], i["end"]) for i in w.items] == [(T0, T0 + timedelta(hours=2)),
                                                          (T0 + timedelta(hours=7), T0 + timedelta(hours=8))]
    assert w.items[0]["mean_co2_g_per_kwh"] == 50.0
    assert w.flags_green[2] is False and w.flags_cheap[2] is True


def test_without_co2_the_windows_are_cheap_only_and_say_so() -> None:
    w = cheap_green_windows(Config(), forecast([10, 10, 200, 200, 10, 200], None))
    assert w.kind == "cheap-only" and "no CO2" in w.note
    assert [i["minutes"] for i in w.items] == [120, 60]
    assert w.flags_green == [None] * 6
    assert w.as_json()["green_max_g_per_kwh"] is None


def test_unknown_prices_are_never_cheap() -> None:
    w = cheap_green_windows(Config(), forecast([10, math.nan, 10, 200, 200, 200], None))
    assert w.flags_cheap[1] is False
    assert len(w.items) == 2


def test_history_recorded_every_tick_is_drawn_one_slot_at_a_time() -> None:
    rows = [{"time": T0 + timedelta(seconds=30 * i), "mode": Mode.ECO if i < 40 else Mode.OFF,
             "indoor_c": 21.0 + (i % 2) * 0.2, "price_eur_per_kwh": 0.1} for i in range(60)]  # 30 min of ticks
    slots = slot_history(rows, 900)
    assert [s["t"] for s in slots] == [T0, T0 + timedelta(minutes=15)]
    assert slots[0]["temp"] == 21.1 and slots[0]["mode"] is Mode.ECO and slots[1]["mode"] is Mode.OFF
    assert slots[1]["price"] == 0.1 and slots[1]["out"] is None


def test_chart_of_a_plan_made_hours_ago_keeps_its_prediction_for_the_past() -> None:
    cfg = Config()
    src = DemoStatusSource(cfg, T0)
    plan = src.plan()
    assert plan is not None
    later = T0 + timedelta(hours=3)
    snap = {**src.snapshot(), "now": later}
    hist = [{"time": T0 + timedelta(minutes=15 * i), "indoor_c": 21.0} for i in range(12)]
    doc = chart_doc(plan, hist, snap, cfg, 12)  # type: ignore[arg-type]
    assert doc["future"][0]["t"] == T0 and len(doc["future"]) == len(plan.slots)
    assert len(doc["past"]) == 12 and all(p["t"] < later for p in doc["past"])
