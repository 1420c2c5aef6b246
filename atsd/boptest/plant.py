"""BOPTEST behind atsd's own seams: a clock, a forecast source, sensors and an actuator.

Nothing in ``atsd.core`` knows BOPTEST. :class:`Plant` owns one running test (client, simulation time,
the latest measurements and the inputs to overwrite at the next ``/advance``); the adapters below
are thin views of it:

- :class:`SimClock` implements :class:`atsd.clock.Clock` on the simulation time: waiting *is*
  advancing the simulation, so the code that waits for the next slot on a Pi steps the plant here.
- :class:`PlantForecast` turns ``/forecast`` into an atsd :class:`~atsd.core.forecast.Forecast`
  (price EUR/kWh → EUR/MWh, K → °C) and the comfort band (``LowerSetp[1]``/``UpperSetp[1]``).
- :class:`PlantSensor` reads one measurement (K → °C for temperatures) as a :class:`Reading`.
- :class:`PlantActuator` applies a mode through the test case's mode table (:mod:`.cases`).

Simulation time is seconds of the simulation year; atsd sees it as UTC from :data:`YEAR_START`.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

import numpy as np

from atsd.boptest.cases import KELVIN, CaseTable
from atsd.boptest.client import BoptestClient, BoptestError
from atsd.core.comfort import ComfortBand
from atsd.core.forecast import CO2, GHI, PRICE, TEMP, Forecast, Provenance
from atsd.core.modes import Mode
from atsd.core.timegrid import Grid, ensure_utc
from atsd.devices.device import DeviceError, Reading
from atsd.sources import ErrorKind, SourceError

# A non-leap year, so a BOPTEST year maps one to one (BOPTEST weather files are typical years).
YEAR_START = datetime(2023, 1, 1, tzinfo=UTC)


def sim_time(t_s: float) -> datetime:
    return YEAR_START + timedelta(seconds=float(t_s))


def sim_seconds(t: datetime) -> float:
    return (ensure_utc(t) - YEAR_START).total_seconds()


class ScenarioEnded(Exception):  # noqa: N818  (an end, not a fault)
    """The test reached the end of its scenario: ``/advance`` answered no measurements."""


class Plant:
    """One running BOPTEST test: its time, latest measurements and the inputs overwritten next."""

    def __init__(self, client: BoptestClient, case: CaseTable, step_s: int, start_s: float,
                 measurements: dict[str, float] | None = None) -> None:
        self.client = client
        self.case = case
        self.step_s = step_s
        self.time_s = float(start_s)
        self.last: dict[str, float] = dict(measurements or {})
        self.overwrites: dict[str, float] = {}
        self.ended = False
        self.steps = 0
        # The comfort bounds and occupancy in force now (K), refreshed by every forecast.
        self.lower_k: float | None = None
        self.upper_k: float | None = None
        self.occupied = True

    async def advance(self) -> dict[str, float]:
        """Advance one step with the current overwrites; raises :class:`ScenarioEnded` at the end."""
        if self.ended:
            raise ScenarioEnded("the scenario has ended")
        y = await self.client.advance(dict(self.overwrites))
        if not y:
            self.ended = True
            raise ScenarioEnded("the scenario has ended")
        self.last = y
        self.steps += 1
        self.time_s = float(y.get("time", self.time_s + self.step_s))
        return y

    def electric_w(self) -> float:
        return float(sum(self.last.get(p, 0.0) for p in self.case.power))


class SimClock:
    """:class:`atsd.clock.Clock` on the plant's simulation time: sleeping advances the simulation."""

    def __init__(self, plant: Plant) -> None:
        self.plant = plant

    def now(self) -> datetime:
        return sim_time(self.plant.time_s)

    def monotonic(self) -> float:
        return self.plant.time_s

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self.now() + timedelta(seconds=max(0.0, seconds)))

    async def sleep_until(self, t: datetime) -> None:
        goal = sim_seconds(t)
        while self.plant.time_s < goal - 1e-6:
            await self.plant.advance()


class PlantSensor:
    """One BOPTEST measurement as an atsd sensor (temperatures in °C, power in W)."""

    def __init__(self, plant: Plant, name: str, role: str, points: tuple[str, ...]) -> None:
        self.plant = plant
        self.name = name
        self.role = role
        self.points = points

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        return None

    async def read(self) -> Reading:
        try:
            v = sum(self.plant.last[p] for p in self.points)
        except KeyError as exc:
            raise DeviceError(f"BOPTEST sensor {self.name}: no measurement {exc.args[0]} yet (advance first)") from exc
        if not math.isfinite(v):
            raise DeviceError(f"BOPTEST sensor {self.name}: {self.points} is not a number")
        unit = "W" if self.role == "power" else "°C"
        value = v if unit == "W" else v - KELVIN
        return Reading(value, unit, sim_time(self.plant.time_s), f"boptest:{'+'.join(self.points)}")


class PlantActuator:
    """The four modes through the test case's mode table; leaving it restores NORMAL (no overwrites)."""

    def __init__(self, plant: Plant) -> None:
        self.plant = plant
        self.name = f"boptest:{plant.case.name}"
        self.supported = plant.case.supported
        self._current: Mode | None = None

    @property
    def current(self) -> Mode | None:
        return self._current

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def apply(self, mode: Mode) -> None:
        """Set the inputs the next ``/advance`` overwrites; the setpoint follows the band in force now."""
        if mode not in self.supported:
            raise DeviceError(f"{self.name}: mode {mode} is not in the mode table")
        p = self.plant
        if mode is not Mode.NORMAL and (p.lower_k is None or p.upper_k is None):
            raise DeviceError(f"{self.name}: the comfort bounds are unknown (fetch a forecast first)")
        lower = p.lower_k if p.lower_k is not None else KELVIN
        upper = p.upper_k if p.upper_k is not None else KELVIN + 35.0
        p.overwrites = p.case.overwrites(mode, lower, upper, p.occupied)
        self._current = mode

    async def close(self) -> None:
        self.plant.overwrites = {}
        self._current = Mode.NORMAL


class PlantForecast:
    """Price, weather and the comfort band from ``/forecast``, on atsd's grid starting now."""

    def __init__(self, plant: Plant, price: str) -> None:
        self.plant = plant
        self.price_point = plant.case.prices[price]

    async def fetch(self, horizon_s: int, step_s: int) -> tuple[Forecast, ComfortBand]:
        c = self.plant.case
        points = [self.price_point, c.temp_forecast, c.ghi_forecast, c.lower, c.upper, c.occupancy, c.emissions]
        try:
            data = await self.plant.client.forecast(points, horizon_s, step_s)
        except BoptestError as exc:
            kind = ErrorKind.SERVER if exc.status >= 500 or exc.status == 0 else ErrorKind.HTTP
            raise SourceError("BOPTEST forecast", kind, exc.detail) from exc
        n = horizon_s // step_s
        t = np.asarray(data.get("time", []), dtype=np.float64)
        if len(t) < n or any(len(data.get(p, [])) < n for p in points):
            raise SourceError("BOPTEST forecast", ErrorKind.NO_DATA,
                              f"asked {n} slots of {points}, got {len(t)} (end of the weather data?)")

        def col(p: str) -> np.ndarray:
            return np.asarray(data[p][:n], dtype=np.float64)

        start = sim_time(t[0])
        grid = Grid(start, step_s, n)
        # BOPTEST gives instantaneous values at the slot starts; atsd treats them as the slot's value.
        series = {PRICE: col(self.price_point) * 1000.0, TEMP: col(c.temp_forecast) - KELVIN,
                  GHI: np.maximum(col(c.ghi_forecast), 0.0), CO2: col(c.emissions) * 1000.0}
        prov = Provenance(f"boptest:{c.name}", start, step_s // 60)
        forecast = Forecast(grid, series, dict.fromkeys(series, prov))
        lower = col(c.lower) - KELVIN
        upper = col(c.upper) - KELVIN
        occupied = col(c.occupancy) > 0
        target = np.where(occupied, lower + c.baseline_offset_occupied_k, lower + c.baseline_offset_unoccupied_k)
        target = np.minimum(target, upper)
        p = self.plant
        p.lower_k, p.upper_k, p.occupied = float(col(c.lower)[0]), float(col(c.upper)[0]), bool(occupied[0])
        return forecast, ComfortBand(lower, target, upper)
