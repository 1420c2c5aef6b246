"""A simulated house: the exact 1R1C thermal model as a plant, exposed as sensors and an actuator.

The caller owns time: :meth:`SimulatedHouse.advance` integrates up to the time it is given, and the
sensor and actuator ask an injected clock (wall clock, accelerated or virtual). So the same plant
runs the demo in real time, a test in virtual time, or a benchmark as fast as the CPU allows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self

import numpy as np

from atsd.config import ComfortConfig, Config, SensorConfig
from atsd.core.modes import ALL_MODES, Mode
from atsd.core.thermal import ThermalModel
from atsd.core.timegrid import Grid
from atsd.devices.device import UNITS, DeviceError, Reading, check_supported, utcnow

OutdoorFn = Callable[[datetime], float]


def default_outdoor(t: datetime) -> float:
    """A Finnish winter day: -6 °C mean, 4 K daily swing peaking mid-afternoon UTC."""
    hours = t.hour + t.minute / 60.0
    return -6.0 + 4.0 * math.sin((hours - 8.0) / 24.0 * 2 * math.pi)


class SimulatedHouse:
    """The plant. ``mode`` is what the heat pump currently does; ``advance(now)`` moves time on."""

    def __init__(self, model: ThermalModel, comfort: ComfortConfig, start: datetime, start_c: float, *,
                 outdoor: OutdoorFn = default_outdoor, step_s: int = 300) -> None:
        self.model = model
        self.comfort = comfort
        self.outdoor = outdoor
        self.step_s = step_s
        self.time = start
        self.indoor_c = start_c
        self.mode = Mode.NORMAL
        self.energy_kwh = 0.0
        self.power_w = 0.0
        self.switches = 0

    def advance(self, now: datetime) -> None:
        """Integrate the model from the last time up to ``now`` under the current mode (exact per step)."""
        while self.time < now:
            dt = min(self.step_s, math.ceil((now - self.time).total_seconds()))
            grid = Grid(self.time, int(dt), 1)
            one = np.ones(1)
            drive = self.model.drive(grid, one * self.outdoor(self.time), None, one * self.comfort.target_c,
                                     one * self.comfort.min_c, one * self.comfort.max_c)
            end_c, _mean, _hc, _ha, kwh = self.model.step1(drive, 0, self.indoor_c, self.mode.rank)
            self.indoor_c = end_c
            self.energy_kwh += kwh
            self.power_w = kwh * 3.6e6 / dt
            self.time += timedelta(seconds=dt)

    def set_mode(self, now: datetime, mode: Mode) -> None:
        self.advance(now)
        if mode is not self.mode:
            self.switches += 1
        self.mode = mode

    def value(self, role: str) -> float:
        if role in ("indoor", "supply"):
            return self.indoor_c
        if role == "outdoor":
            return self.outdoor(self.time)
        if role == "power":
            return self.power_w
        if role == "energy":
            return self.energy_kwh
        raise DeviceError(f"the simulated house has no {role!r} reading")


class SimulatedSensor:
    def __init__(self, name: str, role: str, house: SimulatedHouse, clock: Callable[[], datetime] = utcnow) -> None:
        self.name = name
        self.role = role
        self.house = house
        self.clock = clock

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        return None

    async def read(self) -> Reading:
        now = self.clock()
        self.house.advance(now)
        return Reading(self.house.value(self.role), UNITS[self.role], now, self.name)


class SimulatedActuator:
    def __init__(self, house: SimulatedHouse, supported: tuple[Mode, ...] = ALL_MODES,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.name = "simulated"
        self.house = house
        self.supported = supported
        self.clock = clock
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
        check_supported(self.name, mode, self.supported)
        self.house.set_mode(self.clock(), mode)
        self._current = mode

    async def close(self) -> None:
        self.house.set_mode(self.clock(), Mode.NORMAL)
        self._current = Mode.NORMAL


def _house(links: Any) -> SimulatedHouse:
    from atsd.core.house import thermal_model

    cfg: Config = links.cfg
    h: SimulatedHouse = links.shared(("simulated-house",), lambda: SimulatedHouse(
        thermal_model(cfg), cfg.comfort, links.clock(), cfg.comfort.target_c))
    return h


def build_sensor(sc: SensorConfig, links: Any) -> SimulatedSensor:
    return SimulatedSensor(sc.name, sc.role, _house(links), links.clock)


def build_actuator(cfg: Config, links: Any) -> SimulatedActuator:
    from atsd.devices.presets import actuator_modes

    return SimulatedActuator(_house(links), actuator_modes(cfg), links.clock)
