"""S0 pulse output of an energy meter on a GPIO pin (DIN 43864: one pulse per 1/N kWh).

Wire the meter's S0+ to a GPIO and S0- to ground; the pin's internal pull-up holds it high and each
pulse pulls it low. Role ``energy`` reports kWh counted since atsd started (a store turns it into
deltas); role ``power`` reports W from the interval between the last two pulses, falling off when
pulses stop (the power is at most one pulse's energy over the time since the last pulse).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from atsd.config import SensorConfig
from atsd.devices.device import UNITS, DeviceError, Reading, utcnow


class S0Meter:
    def __init__(self, name: str, role: str, pin: int, pulses_per_kwh: float, *, pin_factory: Any = None,
                 clock: Callable[[], datetime] = utcnow, monotonic: Callable[[], float] = time.monotonic) -> None:
        if role not in ("energy", "power"):
            raise DeviceError(f"sensor {name}: an S0 meter measures energy or power (role = {role!r})")
        self.name = name
        self.role = role
        self.pin = pin
        self.kwh_per_pulse = 1.0 / pulses_per_kwh
        self.pin_factory = pin_factory
        self.clock = clock
        self.monotonic = monotonic
        self.pulses = 0
        self._times: list[float] = []
        self._lock = threading.Lock()
        self._device: Any = None
        self._started = 0.0

    async def __aenter__(self) -> Self:
        from gpiozero import DigitalInputDevice
        from gpiozero.exc import GPIOZeroError

        try:
            self._device = DigitalInputDevice(self.pin, pull_up=True, bounce_time=0.005,
                                              pin_factory=self.pin_factory)
        except (GPIOZeroError, OSError, RuntimeError) as exc:
            raise DeviceError(f"S0 meter {self.name}: cannot claim GPIO{self.pin} ({exc})") from exc
        self._device.when_activated = self.pulse
        self._started = self.monotonic()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._device is not None:
            self._device.close()
            self._device = None

    def pulse(self, *_: Any) -> None:
        """One pulse (called from gpiozero's thread)."""
        with self._lock:
            self.pulses += 1
            self._times = [*self._times[-1:], self.monotonic()]

    async def read(self) -> Reading:
        if self._device is None:
            raise DeviceError(f"S0 meter {self.name}: not open")
        with self._lock:
            pulses, times = self.pulses, list(self._times)
        now_m = self.monotonic()
        if self.role == "energy":
            return Reading(pulses * self.kwh_per_pulse, UNITS["energy"], self.clock(), self.name)
        wh = self.kwh_per_pulse * 1000.0
        if len(times) < 2:
            since = now_m - (times[-1] if times else self._started)
            # no interval yet: the power is at most one pulse over the time waited so far
            if since < 60.0:
                raise DeviceError(f"S0 meter {self.name}: waiting for pulses on GPIO{self.pin}")
            return Reading(wh * 3600.0 / since, UNITS["power"], self.clock(), self.name)
        interval = max(times[-1] - times[-2], 1e-3)
        since_last = max(now_m - times[-1], 1e-3)
        watts = wh * 3600.0 / max(interval, since_last)
        return Reading(watts, UNITS["power"], self.clock(), self.name)


def build_sensor(sc: SensorConfig, links: Any) -> S0Meter:
    if sc.pin is None:
        raise DeviceError(f"sensor {sc.name}: kind = 's0' needs pin")
    return S0Meter(sc.name, sc.role, sc.pin, sc.pulses_per_kwh, pin_factory=getattr(links, "pin_factory", None),
                   clock=links.clock)
