"""Labelled estimates, the last link of each fallback chain: never published data, always flagged.

Pure functions (numpy, no I/O, no clock). Each returns the filled series and a mask of the slots it
filled, which ``forecasts.py`` turns into ``Forecast.estimated`` flags and an ``estimate`` provenance.

- prices: the mean of the same local time of day over the last known days (up to a week); with no
  history at all a flat placeholder, which makes the planner shift nothing rather than chase a guess.
- weather: persistence of the last known value blended, with a 12-hour e-folding time, into the recent
  daily mean plus its diurnal profile; with no history, a southern-Finland monthly normal.
- CO2: a least-squares fit of the emission factor on wind power over recent days (more wind, less CO2),
  plus the residual profile by local hour, driven by Fingrid's wind forecast; without a wind forecast,
  the profile by local hour alone.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from atsd.core.timegrid import Grid

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
FLAT_PRICE_EUR_PER_MWH = 60.0
PERSISTENCE_TAU_H = 12.0
# Monthly mean air temperature, Helsinki-Vantaa 1991-2020 (°C), January first.
MONTHLY_NORMAL_C = (-4.6, -5.3, -1.9, 4.2, 10.5, 14.9, 17.8, 16.0, 11.0, 5.6, 1.0, -2.4)


def _minute_of_day(grid: Grid, tz: ZoneInfo) -> NDArray[np.int64]:
    return np.array(
        [(lt.hour * 60 + lt.minute) for lt in (t.astimezone(tz) for t in grid.times())], dtype=np.int64
    )


def _profile(
    hist: Grid, hist_v: FloatArray, tz: ZoneInfo, keys_for: NDArray[np.int64], key_step_min: int
) -> FloatArray:
    """Mean of the history by local time of day (bins of ``key_step_min``) at each requested key."""
    hk = _minute_of_day(hist, tz) // key_step_min
    ok = np.isfinite(hist_v)
    out = np.full(len(keys_for), np.nan)
    if not ok.any():
        return out
    overall = float(hist_v[ok].mean())
    for i, k in enumerate(keys_for // key_step_min):
        sel = ok & (hk == k)
        out[i] = float(hist_v[sel].mean()) if sel.any() else overall
    return out


def fill_prices(
    grid: Grid, values: FloatArray, tz: ZoneInfo, hist: Grid, hist_v: FloatArray
) -> tuple[FloatArray, BoolArray, str]:
    """Fill NaN prices from the daily profile of ``hist_v`` (known prices on ``hist``)."""
    missing = ~np.isfinite(values)
    out = values.copy()
    if not missing.any():
        return out, missing, ""
    if np.isfinite(hist_v).sum() >= 4:
        days = max(1, int(np.isfinite(hist_v).sum() * hist.step_s // 86400))
        prof = _profile(hist, hist_v, tz, _minute_of_day(grid, tz), grid.step_s // 60)
        out[missing] = prof[missing]
        note = f"price estimate: profile of the last {days} known day(s) by local time"
    else:
        out[missing] = FLAT_PRICE_EUR_PER_MWH
        note = f"price estimate: no price history, flat {FLAT_PRICE_EUR_PER_MWH:g} EUR/MWh placeholder"
    return out, missing, note


def fill_weather(
    grid: Grid,
    values: FloatArray,
    tz: ZoneInfo,
    hist: Grid,
    hist_v: FloatArray,
    anchor: tuple[int, float] | None = None,
    normal: bool = True,
) -> tuple[FloatArray, BoolArray, str]:
    """Fill NaN slots: persistence of the last value before each gap blended into the diurnal profile.

    ``hist`` holds the known values before (and including) the window; ``anchor`` (epoch s, value) is an
    extra last-known observation, such as the outdoor sensor. With ``normal`` false and no history the
    slots stay NaN (radiation, wind: optional series).
    """
    missing = ~np.isfinite(values)
    out = values.copy()
    if not missing.any():
        return out, missing, ""
    all_t = np.concatenate([hist.epoch_s(), grid.epoch_s()]).astype(np.float64)
    all_v = np.concatenate([hist_v, values])
    ok = np.isfinite(all_v)
    if anchor is not None:
        all_t = np.append(all_t, float(anchor[0]))
        all_v = np.append(all_v, anchor[1])
        ok = np.append(ok, True)
    if not ok.any():
        if not normal:
            return out, np.zeros(grid.n, dtype=bool), ""
        months = np.array([t.astimezone(tz).month for t in grid.times()])
        out[missing] = np.array(MONTHLY_NORMAL_C)[months[missing] - 1]
        return out, missing, "weather estimate: no data at all, monthly normal of southern Finland"
    known_t, known_v = all_t[ok], all_v[ok]
    recent = known_t >= known_t.max() - 2 * 86400
    base = float(known_v[recent].mean())
    prof = _profile(hist, hist_v, tz, _minute_of_day(grid, tz), 60) if np.isfinite(hist_v).any() else None
    order = np.argsort(known_t)
    known_t, known_v = known_t[order], known_v[order]
    g = grid.epoch_s().astype(np.float64)
    for i in np.flatnonzero(missing):
        j = int(np.searchsorted(known_t, g[i], side="right")) - 1
        t0, v0 = (known_t[j], known_v[j]) if j >= 0 else (known_t[0], known_v[0])
        w = float(np.exp(-abs(g[i] - t0) / 3600.0 / PERSISTENCE_TAU_H))
        clim = float(prof[i]) if prof is not None and np.isfinite(prof[i]) else base
        out[i] = w * v0 + (1.0 - w) * clim
    return out, missing, "weather estimate: persistence blended with the recent diurnal profile"


def estimate_co2(
    grid: Grid, tz: ZoneInfo, hist: Grid, co2_hist: FloatArray, wind_hist: FloatArray, wind_future: FloatArray
) -> tuple[FloatArray, str]:
    """CO2 emission factor on ``grid`` (NaN where impossible) from history and the wind forecast."""
    out = np.full(grid.n, np.nan)
    ok = np.isfinite(co2_hist)
    if ok.sum() < 8:
        return out, ""
    hours_h = _minute_of_day(hist, tz) // 60
    hours_g = _minute_of_day(grid, tz) // 60
    pair = ok & np.isfinite(wind_hist)
    a, b = float(co2_hist[ok].mean()), 0.0
    note = "CO2 estimate: recent profile by local hour (no wind forecast)"
    if pair.sum() >= 24 and np.ptp(wind_hist[pair]) > 0 and np.isfinite(wind_future).any():
        b, a = (float(x) for x in np.polyfit(wind_hist[pair], co2_hist[pair], 1))
        b = min(b, 0.0)  # wind displaces fossil generation; never let noise say the opposite
        a = float((co2_hist[pair] - b * wind_hist[pair]).mean())
        note = "CO2 estimate: fitted on Fingrid's wind forecast and the recent profile by local hour"
    resid = co2_hist - a - b * np.nan_to_num(wind_hist, nan=0.0 if b == 0 else np.nan)
    for i in range(grid.n):
        w = wind_future[i] if b != 0.0 else 0.0
        if not np.isfinite(w):
            w = float(np.nanmean(wind_hist[pair])) if pair.any() else 0.0
        sel = np.isfinite(resid) & (hours_h == hours_g[i])
        r = float(resid[sel].mean()) if sel.any() else 0.0
        out[i] = max(0.0, a + b * w + r)
    return out, note
