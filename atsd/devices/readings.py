"""Plausibility checks and the combination of several sensors into one value.

A value outside the sensor's range or one that jumps faster than physics allows is rejected and
counted, and the last good reading (with its growing age) stands in; the supervisor turns an old
reading into NORMAL. Several indoor sensors combine by their median, which one broken sensor cannot
drag away.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Self

from atsd.config import SensorConfig
from atsd.devices.device import DeviceError, Reading, Sensor, utcnow

log = logging.getLogger(__name__)

# Physically possible ranges and rates per role when the config does not set them.
DEFAULT_RANGE = {"indoor": (-10.0, 50.0), "outdoor": (-50.0, 50.0), "supply": (-10.0, 95.0),
                 "power": (0.0, 100_000.0), "energy": (0.0, 1e9)}
DEFAULT_JUMP_PER_MIN = {"indoor": 2.0, "outdoor": 3.0, "supply": 10.0}
# After this many rejected jumps in a row, the new level is believed (a sensor moved, a heater came on).
REBASELINE_AFTER = 3


@dataclass(frozen=True)
class Limits:
    min_value: float
    max_value: float
    max_jump_per_min: float | None

    @classmethod
    def for_sensor(cls, sc: SensorConfig) -> Limits:
        lo, hi = DEFAULT_RANGE[sc.role]
        jump = sc.max_jump_per_min if sc.max_jump_per_min is not None else DEFAULT_JUMP_PER_MIN.get(sc.role)
        return cls(sc.min_value if sc.min_value is not None else lo,
                   sc.max_value if sc.max_value is not None else hi, jump)


@dataclass
class SensorStatus:
    """What ``atsd sensors`` and the status page show for one sensor."""

    name: str
    role: str
    reading: Reading | None
    ok: bool
    message: str
    rejected: int
    errors: int


class CheckedSensor:
    """Wraps a sensor with plausibility checks, counters and the last good reading.

    ``read()`` returns a fresh plausible reading, or the last good one when the new value is
    rejected or the device fails (its age grows, so staleness is visible); it raises
    :class:`DeviceError` only when there has never been a good reading.
    """

    def __init__(self, sensor: Sensor, limits: Limits, max_age_s: float,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.sensor = sensor
        self.name = sensor.name
        self.role = sensor.role
        self.limits = limits
        self.max_age_s = max_age_s
        self.clock = clock
        self.last: Reading | None = None
        self.rejected = 0
        self.errors = 0
        self.message = "not read yet"
        self._jumps_in_row = 0
        self._failing = False

    async def __aenter__(self) -> Self:
        await self.sensor.__aenter__()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.sensor.__aexit__(et, e, tb)

    def check(self, r: Reading) -> str | None:
        """Why ``r`` is implausible, or None when it is fine."""
        lim = self.limits
        if r.value != r.value or not lim.min_value <= r.value <= lim.max_value:
            return f"{r.value:g} {r.unit} is outside {lim.min_value:g}..{lim.max_value:g}"
        if self.last is not None and lim.max_jump_per_min is not None:
            minutes = max((r.timestamp - self.last.timestamp).total_seconds() / 60.0, 0.5)
            rate = abs(r.value - self.last.value) / minutes
            if rate > lim.max_jump_per_min and self._jumps_in_row + 1 < REBASELINE_AFTER:
                return (f"{r.value:g} {r.unit} jumps {abs(r.value - self.last.value):.1f} from "
                        f"{self.last.value:g} in {minutes:.1f} min (limit {lim.max_jump_per_min:g}/min)")
        return None

    async def read(self) -> Reading:
        try:
            r = await self.sensor.read()
        except DeviceError as exc:
            self.errors += 1
            self.message = str(exc)
            if not self._failing:
                log.warning("Sensor %s failed: %s", self.name, exc)
                self._failing = True
            return self._fallback()
        if self._failing:
            log.info("Sensor %s recovered after %d errors.", self.name, self.errors)
            self._failing = False
        why = self.check(r)
        if why is not None:
            self.rejected += 1
            self._jumps_in_row += 1
            self.message = f"rejected: {why}"
            log.warning("Sensor %s: implausible reading rejected: %s", self.name, why)
            return self._fallback()
        self._jumps_in_row = 0
        self.last = r
        self.message = "ok"
        return r

    def _fallback(self) -> Reading:
        if self.last is None:
            raise DeviceError(f"sensor {self.name}: no good reading yet ({self.message})")
        return self.last

    def status(self, now: datetime | None = None) -> SensorStatus:
        now = now or self.clock()
        fresh = self.last is not None and self.last.age_s(now) <= self.max_age_s
        msg = self.message if fresh or self.last is None else f"stale: {self.message}"
        return SensorStatus(self.name, self.role, self.last, fresh and self.message == "ok", msg,
                            self.rejected, self.errors)


def median_reading(readings: Sequence[Reading], now: datetime, max_age_s: float) -> Reading | None:
    """The median of the readings no older than ``max_age_s``; its timestamp is the oldest one used.

    Taking the oldest timestamp keeps the combined age honest: a median is only as fresh as its
    stalest input.
    """
    fresh = [r for r in readings if r.age_s(now) <= max_age_s]
    if not fresh:
        return None
    value = float(statistics.median(r.value for r in fresh))
    oldest = min(r.timestamp for r in fresh)
    source = fresh[0].source if len(fresh) == 1 else "median of " + ", ".join(r.source for r in fresh)
    return Reading(value, fresh[0].unit, oldest, source)
