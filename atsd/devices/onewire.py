"""DS18B20 temperature sensors on the Raspberry Pi's 1-Wire bus, read through sysfs.

``/sys/bus/w1/devices/28-*/w1_slave`` holds two lines: the first ends ``crc=xx YES`` when the
transfer was clean, the second ends ``t=23125`` (millidegrees). 85.000 °C is the chip's power-on
value, seen after a brown-out or a bad contact, never a real room. Reads block for about 750 ms, so
they run in a thread. Enable the bus with ``dtoverlay=w1-gpio`` (GPIO4).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from atsd.config import SensorConfig
from atsd.devices.device import UNITS, DeviceError, Reading, utcnow

log = logging.getLogger(__name__)

POWER_ON_MILLI_C = 85000


def parse_w1_slave(text: str) -> float:
    """Temperature in °C from a ``w1_slave`` file; ``ValueError`` says why it is not usable."""
    lines = text.strip().splitlines()
    if len(lines) < 2:
        raise ValueError("incomplete w1_slave file (fewer than two lines)")
    if not lines[0].rstrip().endswith("YES"):
        raise ValueError("CRC check failed (first line does not end in YES)")
    _, sep, raw = lines[1].rpartition("t=")
    if not sep:
        raise ValueError("no t= value on the second line")
    try:
        milli = int(raw.strip())
    except ValueError:
        raise ValueError(f"t= value is not an integer ({raw.strip()!r})") from None
    if milli == POWER_ON_MILLI_C:
        raise ValueError("85.000 °C is the power-on value, not a measurement (check power and wiring)")
    return milli / 1000.0


class OneWireSensor:
    """One DS18B20, retried a few times on CRC errors and power-on values."""

    def __init__(self, name: str, role: str, sensor_id: str, w1_dir: Path, *, retries: int = 3,
                 retry_delay_s: float = 0.2, clock: Callable[[], datetime] = utcnow) -> None:
        self.name = name
        self.role = role
        self.path = w1_dir / sensor_id / "w1_slave"
        self.retries = retries
        self.retry_delay_s = retry_delay_s
        self.clock = clock

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        return None

    async def read(self) -> Reading:
        problem = ""
        for attempt in range(self.retries):
            if attempt:
                await asyncio.sleep(self.retry_delay_s)
            try:
                text = await asyncio.to_thread(self.path.read_text, encoding="ascii", errors="replace")
            except FileNotFoundError:
                raise DeviceError(f"1-Wire sensor {self.name}: {self.path} does not exist (check the "
                                  "sensor_id, the wiring and dtoverlay=w1-gpio)") from None
            except OSError as exc:
                problem = f"cannot read {self.path}: {exc.strerror}"
                continue
            try:
                value = parse_w1_slave(text)
            except ValueError as exc:
                problem = str(exc)
                continue
            return Reading(value, UNITS[self.role], self.clock(), self.name)
        raise DeviceError(f"1-Wire sensor {self.name}: {problem} after {self.retries} attempts")


def build_sensor(sc: SensorConfig, links: Any) -> OneWireSensor:
    if sc.sensor_id is None:
        raise DeviceError(f"sensor {sc.name}: kind = 'onewire' needs sensor_id (like 28-0000075a1b2c)")
    return OneWireSensor(sc.name, sc.role, sc.sensor_id, sc.w1_dir, clock=links.clock)
