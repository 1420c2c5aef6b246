"""The seams between atsd and hardware: ``Reading``, ``Sensor``, ``Actuator`` and ``DeviceError``.

Every adapter in this package implements one of the two protocols and is an async context manager:
entering connects (or claims the pins), leaving releases it, and an actuator's exit leaves the heat
pump in NORMAL. Library exceptions never cross this seam: each adapter translates them, once, into
:class:`DeviceError`, with the cause kept in the traceback.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

from atsd.core.modes import Mode

UNITS = {"indoor": "°C", "outdoor": "°C", "supply": "°C", "power": "W", "energy": "kWh"}


class DeviceError(Exception):
    """A sensor or actuator could not do what was asked; the message says what, where and what to do."""


@dataclass(frozen=True, slots=True)
class Reading:
    """One measured value. ``timestamp`` is when it was measured (aware UTC), ``source`` who measured it."""

    value: float
    unit: str
    timestamp: datetime
    source: str

    def age_s(self, now: datetime) -> float:
        """Seconds since the measurement; never negative (a clock step back reads as fresh, not future)."""
        return max(0.0, (now - self.timestamp).total_seconds())


@runtime_checkable
class Sensor(Protocol):
    """Reads one quantity. ``role`` is what it measures: indoor, outdoor, supply, power or energy."""

    name: str
    role: str

    async def read(self) -> Reading:
        """The latest value; raises :class:`DeviceError` when none can be had."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None: ...


@runtime_checkable
class Actuator(Protocol):
    """Sets the heat pump's mode. ``supported`` always holds NORMAL, the fail-safe state."""

    name: str
    supported: tuple[Mode, ...]

    @property
    def current(self) -> Mode | None:
        """The mode last applied and confirmed (None: unknown, e.g. before the first apply)."""
        ...

    async def apply(self, mode: Mode) -> None:
        """Drive the heat pump to ``mode``; raises :class:`DeviceError` if it could not be confirmed."""
        ...

    async def close(self) -> None:
        """Leave the heat pump in NORMAL (best effort, never raises) and release the device."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None: ...


def utcnow() -> datetime:
    """Wall-clock UTC time: the shell's default clock (tests and the simulator inject their own)."""
    return datetime.now(UTC)


def check_supported(name: str, mode: Mode, supported: tuple[Mode, ...]) -> None:
    if mode not in supported:
        offered = ", ".join(m.value for m in supported)
        raise DeviceError(f"{name}: mode {mode} is not offered by this actuator (it offers {offered})")


class Backoff:
    """Capped exponential backoff with full jitter, for reconnect loops inside adapters."""

    def __init__(self, first_s: float = 0.5, cap_s: float = 30.0) -> None:
        self.first_s = first_s
        self.cap_s = cap_s
        self.attempt = 0

    def reset(self) -> None:
        self.attempt = 0

    def next_delay(self) -> float:
        delay = min(self.cap_s, self.first_s * 2 ** self.attempt)
        self.attempt += 1
        return random.uniform(delay / 2, delay)

    async def sleep(self) -> None:
        await asyncio.sleep(self.next_delay())
