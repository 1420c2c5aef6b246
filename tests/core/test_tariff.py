from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import numpy as np

from atsd.config import TariffConfig
from atsd.core.tariff import Tariff
from atsd.core.timegrid import Grid

HEL = ZoneInfo("Europe/Helsinki")


def test_design_example_total_price_with_finnish_defaults():
    t = Tariff(TariffConfig(), HEL)
    g = Grid(datetime(2026, 1, 15, 12, tzinfo=UTC), 900, 1)
    assert round(float(t.price_eur_per_kwh(g, np.array([41.2]))[0]), 4) == 0.1351


def test_vat_changes_at_finnish_midnight_not_utc():
    t = Tariff(TariffConfig(), HEL)
    # 2024-09-01 00:00 Finnish time is 2024-08-31T21:00Z
    g = Grid(datetime(2024, 8, 31, 20, 45, tzinfo=UTC), 900, 2)
    _, vat = t.adders_and_vat(g)
    assert vat.tolist() == [0.24, 0.255]


def test_hourly_billing_averages_the_quarter_hours():
    t = Tariff(TariffConfig(billing_minutes=60), HEL)
    g = Grid(datetime(2026, 1, 15, 12, tzinfo=UTC), 900, 8)
    spot = np.array([10, 20, 30, 40, 100, 100, 100, 100], dtype=float)
    billed = t.billed_spot(g, spot)
    assert billed.tolist() == [25.0] * 4 + [100.0] * 4


def test_night_transfer_applies_in_local_hours():
    cfg = TariffConfig(transfer_c_per_kwh=5.0, transfer_night_c_per_kwh=2.0, night_start=time(22), night_end=time(7))
    t = Tariff(cfg, HEL)
    g = Grid(datetime(2026, 1, 15, 19, 45, tzinfo=UTC), 900, 2)  # 21:45 and 22:00 local
    add, _ = t.adders_and_vat(g)
    assert round(add[0] - add[1], 6) == 3.0


def test_winter_weekday_daytime_transfer():
    cfg = TariffConfig(transfer_c_per_kwh=2.0, transfer_winter_day_c_per_kwh=6.0)
    t = Tariff(cfg, HEL)
    wed = Grid(datetime(2026, 1, 14, 10, tzinfo=UTC), 900, 1)  # Wednesday 12:00 local
    sun = Grid(datetime(2026, 1, 18, 10, tzinfo=UTC), 900, 1)  # Sunday
    assert t.adders_and_vat(wed)[0][0] - t.adders_and_vat(sun)[0][0] == 4.0
