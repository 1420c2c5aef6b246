"""Demo mode: a simulated house on bundled real prices and weather, no config, network or hardware.

``atsd run --demo`` and ``atsd plan --demo`` use these. The forecast provider has the same shape as
:class:`atsd.sources.forecasts.ForecastService` (the part the daemon uses), so the daemon runs the
same code in demo mode as on a Pi.
"""

from __future__ import annotations

import dataclasses
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import numpy as np

from atsd.config import Config, SensorConfig
from atsd.core.forecast import TEMP, Forecast
from atsd.core.timegrid import Grid, floor_time, resample_linear, to_epoch_s
from atsd.csvdata import DEMO_LABEL, demo_forecast, demo_series

# The demo clock starts at the first full day of the bundled week (Tuesday 2026-01-20, 00:00 Helsinki).
DEMO_START = datetime(2026, 1, 19, 22, 0, tzinfo=UTC)


def demo_state_dir() -> Path:
    return Path(tempfile.gettempdir()) / "atsd-demo"


def demo_config(base: Config | None = None, state_dir: Path | None = None) -> Config:
    """The demo house: defaults, a simulated plant (indoor, outdoor, power, energy) and actuator."""
    cfg = base or Config()
    sensors = tuple(SensorConfig(name=n, kind="simulated", role=r, max_age_s=900.0)  # type: ignore[arg-type]
                    for n, r in (("indoor", "indoor"), ("outdoor", "outdoor"), ("heat-pump-power", "power"),
                                 ("heat-pump-energy", "energy")))
    daemon = dataclasses.replace(cfg.daemon, state_dir=state_dir or demo_state_dir(), require_clock_sync=False)
    return dataclasses.replace(cfg, sensors=sensors, daemon=daemon,
                               actuator=dataclasses.replace(cfg.actuator, kind="simulated"),
                               web=dataclasses.replace(cfg.web, bind="127.0.0.1"))


def demo_outdoor() -> Any:
    """Outdoor temperature of the bundled week as a function of time (wrapping around the week)."""
    _prices, weather = demo_series()
    t = weather.epoch_s
    v = weather.values["temp_c"]
    span = int(t[-1] - t[0]) + weather.step_s

    def outdoor(now: datetime) -> float:
        x = (to_epoch_s(now) - int(t[0])) % span + int(t[0])
        return float(np.interp(x, t, v))

    return outdoor


class DemoForecasts:
    """Forecasts from the bundled week; refreshes always succeed (the data is on disk)."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.fetched_at: datetime | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        return None

    async def refresh_prices(self, now: datetime) -> bool:
        first = self.fetched_at is None
        self.fetched_at = now
        return first

    async def refresh_weather(self, now: datetime) -> bool:
        return False

    async def refresh_grid(self, now: datetime) -> bool:
        return False

    def assemble(self, now: datetime, hours: int | None = None) -> Forecast:
        step_s = self.cfg.planner.slot_minutes * 60
        return demo_forecast(floor_time(now, step_s), hours or self.cfg.planner.horizon_hours, step_s)

    def next_price_poll(self, now: datetime) -> datetime:
        return floor_time(now, 86400) + timedelta(days=1)

    def next_weather_poll(self, now: datetime) -> datetime:
        return now + timedelta(days=365)

    def next_grid_poll(self, now: datetime) -> datetime:
        return now + timedelta(days=365)

    def health(self) -> dict[str, dict[str, object]]:
        return {"demo": {"ok": True, "last_success": self.fetched_at, "fallback": False, "message": DEMO_LABEL}}

    def grid_status(self) -> dict[str, object]:
        return {}


def outdoor_now(forecast: Forecast, now: datetime) -> float | None:
    """The forecast's outdoor temperature at ``now`` (interpolated), for houses without an outdoor sensor."""
    g = forecast.grid
    if g.n == 0:
        return None
    one = Grid(floor_time(now, 60), 60, 1)
    v = resample_linear(g.epoch_s() + g.step_s // 2 - 30, forecast.get(TEMP), one, max_gap_s=6 * 3600)
    return None if not np.isfinite(v[0]) else float(v[0])


__all__ = ["DEMO_START", "DemoForecasts", "demo_config", "demo_outdoor", "demo_state_dir"]
