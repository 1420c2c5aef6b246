"""Histories the thermal model itself generates, for the calibration tests and benchmark.

Outdoor temperatures are the real Helsinki-Vantaa 2023 measurements; the modes are a random mix of
OFF/ECO/NORMAL/BOOST blocks (OFF at most 2 h, as the supervisor allows). The shared data has no
measured solar radiation, so when a test needs GHI it uses :func:`clear_sky_ghi` with a random
daily cloud factor: a labelled synthetic input, never presented as data.
"""

from __future__ import annotations

import math
import os
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from atsd.core.calibrate import History
from atsd.core.comfort import ComfortBand
from atsd.core.modes import Mode
from atsd.core.thermal import J_PER_KWH, Building, HeatPump, HeatPumpKind, HeatSource, ThermalModel
from atsd.core.timegrid import Grid, resample_linear
from atsd.csvdata import read_csv

# Two months of it travel with the tests; the benchmark reads the full shared files (ATSD_DATA).
WEATHER = Path(__file__).resolve().parents[1] / "data" / "helsinki-vantaa-weather-2023-01-01_2023-02-28-hourly.csv"
SHARED = Path(os.environ.get("ATSD_DATA", "/work/shared/data"))
SHARED_WEATHER = SHARED / "helsinki-vantaa-weather-2023-01-01_2023-09-30-hourly.csv"
SHARED_PRICES = SHARED / "fi-prices-2023-01-01_2023-09-30-hourly.csv"
LAT_DEG, LON_DEG = 60.32, 24.96  # Helsinki-Vantaa


def true_model(ua_w_per_k: float = 160.0, c_kwh_per_k: float = 5.0, aperture_m2: float = 0.0,
               gains_w: float = 350.0, aux_w: float = 6000.0) -> ThermalModel:
    b = Building(ua_w_per_k, c_kwh_per_k * J_PER_KWH, aperture_m2, gains_w)
    hp = HeatPump(HeatPumpKind.GSHP, HeatSource.BRINE, 8000.0, 4.5, 0.0, 35.0, aux_heater_w=aux_w,
                  aux_deadband_k=1.0)
    return ThermalModel.with_defaults(b, hp)


def outdoor(start: datetime, days: float, step_s: int = 900, path: Path = WEATHER) -> tuple[Grid, np.ndarray]:
    w = read_csv(path, ("temp_c",))
    grid = Grid(start, step_s, round(days * 86400 / step_s))
    return grid, resample_linear(w.epoch_s, w.values["temp_c"], grid)


def clear_sky_ghi(grid: Grid, rng: np.random.Generator) -> np.ndarray:
    """Synthetic GHI: a clear-sky curve (Haurwitz) at Helsinki times a random cloud factor per day."""
    t = grid.epoch_s().astype(float) + grid.step_s / 2
    doy = (t / 86400.0) % 365.25
    decl = math.radians(23.44) * np.sin(2 * np.pi * (284 + doy) / 365.0)
    hour_angle = np.radians(((t % 86400) / 3600.0 + LON_DEG / 15.0 - 12.0) * 15.0)
    lat = math.radians(LAT_DEG)
    cos_z = np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(hour_angle)
    clear = np.where(cos_z > 0, 1098.0 * cos_z * np.exp(-0.057 / np.maximum(cos_z, 1e-3)), 0.0)
    days = ((t - t[0]) // 86400).astype(int)
    cloud = rng.uniform(0.15, 1.0, days.max() + 1)
    return np.asarray(clear * cloud[days])


def mode_mix(n: int, rng: np.random.Generator, step_s: int = 900,
             modes: tuple[Mode, ...] = (Mode.OFF, Mode.ECO, Mode.NORMAL, Mode.BOOST)) -> list[Mode]:
    """Random blocks of 30 min .. 4 h; OFF blocks at most 2 h."""
    weights = {Mode.OFF: 0.2, Mode.ECO: 0.15, Mode.NORMAL: 0.4, Mode.BOOST: 0.25}
    p = np.array([weights[m] for m in modes])
    out: list[Mode] = []
    per_h = 3600 // step_s
    while len(out) < n:
        m = modes[int(rng.choice(len(modes), p=p / p.sum()))]
        hours = rng.uniform(0.5, 2.0 if m is Mode.OFF else 4.0)
        out.extend([m] * max(1, round(hours * per_h)))
    return out[:n]


def simulate_history(model: ThermalModel, grid: Grid, out_c: np.ndarray, modes: list[Mode], *,
                     ghi: np.ndarray | None = None, noise_c: float = 0.1, rng: np.random.Generator,
                     start_c: float = 21.0, fixed_heat_w: dict[Mode, float] | None = None) -> History:
    """Run the plant and log what a daemon would: noisy indoor readings, outdoor, GHI, heat delivered.

    ``fixed_heat_w`` replaces the thermostat by a fixed-speed unit that delivers a constant heat per
    mode (relay-only tests, where the heat itself is not logged).
    """
    band = ComfortBand.flat(grid.n, 20.0, 21.0, 23.0)
    d = model.drive(grid, out_c, ghi, band.target_c, band.min_c, band.max_c)
    if fixed_heat_w is not None:
        cap = np.zeros((4, grid.n))
        for m, q in fixed_heat_w.items():
            cap[m.rank] = q
        d = replace(d, comp_cap_w=cap, comp_set_c=np.full((4, grid.n), np.inf),
                    aux_cap_w=np.zeros((4, grid.n)), aux_set_c=np.full((4, grid.n), -np.inf))
    traj = model.simulate(d, start_c, modes)
    indoor = traj.start_c + rng.normal(0.0, noise_c, grid.n)
    heat_w = traj.heat_kwh * J_PER_KWH / grid.step_s
    ranks = np.array([m.rank for m in modes])
    return History(grid.step_s, indoor, out_c.copy(), ghi, None if fixed_heat_w is not None else heat_w, ranks,
                   d.comp_set_c.copy())


def punch_gaps(h: History, rng: np.random.Generator, count: int, max_h: float = 6.0) -> History:
    """Knock out ``count`` random stretches (up to ``max_h`` hours) of every series, as a dead logger would."""
    indoor = h.indoor_c.copy()
    out = h.outdoor_c.copy()
    heat = None if h.heat_w is None else h.heat_w.copy()
    per_h = 3600 // h.step_s
    for _ in range(count):
        a = int(rng.integers(0, h.n))
        b = min(h.n, a + int(rng.integers(1, int(max_h * per_h) + 1)))
        indoor[a:b] = np.nan
        out[a:b] = np.nan
        if heat is not None:
            heat[a:b] = np.nan
    # isolated lost indoor readings (sensor hiccups) too
    lost = rng.random(h.n) < 0.02
    indoor[lost] = np.nan
    return replace(h, indoor_c=indoor, outdoor_c=out, heat_w=heat)


START = datetime(2023, 1, 10, tzinfo=UTC)


def standard(days: float = 14.0, seed: int = 1, start: datetime = START, **kw: float) -> tuple[History, ThermalModel]:
    rng = np.random.default_rng(seed)
    model = true_model(**kw)
    grid, out_c = outdoor(start, days)
    return simulate_history(model, grid, out_c, mode_mix(grid.n, rng), rng=rng), model


