"""Spot price to the price actually paid per kWh: margin, transfer fee, electricity tax, VAT.

Spot prices arrive in EUR/MWh before any tax. A Finnish household pays, per kWh,
``(spot + seller margin + transfer fee + electricity tax) × (1 + VAT)``, where the transfer fee may
depend on the local time of day and season, and VAT on the date (10 % in winter 2022-23, 24 %, then
25.5 % from 2024-09-01). Households still billed hourly pay the hour's mean spot price for each
quarter of it. This module is the one place where these conversions live.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from atsd.config import TariffConfig
from atsd.core.timegrid import Grid

FloatArray = NDArray[np.float64]
MARKET_MIN_EUR_PER_MWH = -500.0
MARKET_MAX_EUR_PER_MWH = 4000.0
_WEEKDAYS_MON_SAT = frozenset(range(6))


def _hours(t: object) -> float:
    return t.hour + t.minute / 60.0  # type: ignore[attr-defined,no-any-return]


def _in_window(h: float, start: float, end: float) -> bool:
    """Local hour ``h`` inside [start, end), windows may wrap midnight."""
    return start <= h < end if start <= end else (h >= start or h < end)


@dataclass(frozen=True)
class Tariff:
    cfg: TariffConfig
    tz: ZoneInfo

    def vat_fraction(self, day: date) -> float:
        rate = self.cfg.vat[0].percent
        for v in self.cfg.vat:
            if v.since <= day:
                rate = v.percent
        return rate / 100.0

    def transfer_c_per_kwh(self, local_dt: object) -> float:
        c = self.cfg
        h = _hours(local_dt)
        if (c.transfer_winter_day_c_per_kwh is not None
                and local_dt.month in c.winter_months  # type: ignore[attr-defined]
                and local_dt.weekday() in _WEEKDAYS_MON_SAT  # type: ignore[attr-defined]
                and _in_window(h, _hours(c.winter_day_start), _hours(c.winter_day_end))):
            return c.transfer_winter_day_c_per_kwh
        if c.transfer_night_c_per_kwh is not None and _in_window(h, _hours(c.night_start), _hours(c.night_end)):
            return c.transfer_night_c_per_kwh
        return c.transfer_c_per_kwh

    def billed_spot(self, grid: Grid, spot_eur_per_mwh: FloatArray) -> FloatArray:
        """Spot price per slot as billed: each slot's own, or its hour's mean for hourly contracts."""
        spot = np.asarray(spot_eur_per_mwh, dtype=np.float64)
        bill_s = self.cfg.billing_minutes * 60
        if bill_s <= grid.step_s:
            return spot
        key = grid.epoch_s() // bill_s
        out = spot.copy()
        for k in np.unique(key):
            sel = key == k
            vals = spot[sel]
            if np.isfinite(vals).all():
                out[sel] = vals.mean()
        return out

    def adders_and_vat(self, grid: Grid) -> tuple[FloatArray, FloatArray]:
        """Per slot: the c/kWh added to spot before VAT, and the VAT fraction."""
        add = np.empty(grid.n)
        vat = np.empty(grid.n)
        for i, t in enumerate(grid.times()):
            lt = t.astimezone(self.tz)
            add[i] = self.cfg.margin_c_per_kwh + self.transfer_c_per_kwh(lt) + self.cfg.electricity_tax_c_per_kwh
            vat[i] = self.vat_fraction(lt.date())
        return add, vat

    def price_eur_per_kwh(self, grid: Grid, spot_eur_per_mwh: FloatArray) -> FloatArray:
        """Total EUR/kWh paid in each slot (NaN where the spot price is unknown)."""
        spot = self.billed_spot(grid, spot_eur_per_mwh)
        add_c, vat = self.adders_and_vat(grid)
        return np.asarray((spot / 1000.0 + add_c / 100.0) * (1.0 + vat), dtype=np.float64)
