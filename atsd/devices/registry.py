"""Builds sensors and the actuator from the config: one table per kind of adapter.

Adding a backend is one new module with ``build_sensor(section, links)`` and/or
``build_actuator(cfg, links)`` and one line in a table below. Backends are imported only when the
config uses them, so a Pi without pymodbus or GPIO libraries still runs the rest.

:class:`Devices` opens everything as one async context manager: shared connections first, then
sensors, then the actuator, so at exit the actuator leaves NORMAL while its link is still up.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar

from atsd.config import Config, SensorConfig
from atsd.core.modes import Mode
from atsd.devices.device import Actuator, DeviceError, Reading, Sensor, utcnow
from atsd.devices.presets import actuator_modes, preset_problems
from atsd.devices.readings import CheckedSensor, Limits, SensorStatus, median_reading

SENSOR_BACKENDS: dict[str, str] = {
    "onewire": "atsd.devices.onewire",
    "mqtt": "atsd.devices.mqtt",
    "modbus": "atsd.devices.modbus",
    "s0": "atsd.devices.s0",
    "simulated": "atsd.devices.simulated",
}
ACTUATOR_BACKENDS: dict[str, str] = {
    "sgready_gpio": "atsd.devices.sgready",
    "modbus": "atsd.devices.modbus",
    "mqtt": "atsd.devices.mqtt",
    "simulated": "atsd.devices.simulated",
}

T = TypeVar("T")

__all__ = ["ACTUATOR_BACKENDS", "SENSOR_BACKENDS", "Devices", "Links", "actuator_modes", "build_actuator",
           "build_sensors", "config_warnings"]


class Links:
    """What adapters share: the config, the clock, GPIO pin factory and connections keyed by endpoint."""

    def __init__(self, cfg: Config, clock: Callable[[], datetime] = utcnow, pin_factory: Any = None) -> None:
        self.cfg = cfg
        self.clock = clock
        self.pin_factory = pin_factory
        self.objects: dict[tuple[Any, ...], Any] = {}

    def shared(self, key: tuple[Any, ...], factory: Callable[[], T]) -> T:
        if key not in self.objects:
            self.objects[key] = factory()
        obj: T = self.objects[key]
        return obj


def _backend(table: dict[str, str], kind: str, what: str) -> Any:
    mod = table.get(kind)
    if mod is None:
        raise DeviceError(f"no {what} backend for kind = {kind!r} (known: {', '.join(table)})")
    try:
        return importlib.import_module(mod)
    except ImportError as exc:
        raise DeviceError(f"{what} kind = {kind!r} needs a library that is not installed ({exc})") from exc


def build_sensor(sc: SensorConfig, links: Links) -> CheckedSensor:
    raw: Sensor = _backend(SENSOR_BACKENDS, sc.kind, "sensor").build_sensor(sc, links)
    return CheckedSensor(raw, Limits.for_sensor(sc), sc.max_age_s, links.clock)


def build_sensors(cfg: Config, links: Links) -> list[CheckedSensor]:
    return [build_sensor(sc, links) for sc in cfg.sensors]


def build_actuator(cfg: Config, links: Links) -> Actuator | None:
    """The configured actuator (None for ``kind = "none"``); unopened."""
    a = cfg.actuator
    if a.kind == "none":
        return None
    problems = preset_problems(a)
    if problems:
        raise DeviceError("; ".join(problems))
    act: Actuator = _backend(ACTUATOR_BACKENDS, a.kind, "actuator").build_actuator(cfg, links)
    return act


class Devices:
    """All configured sensors and the actuator, opened together."""

    def __init__(self, cfg: Config, *, clock: Callable[[], datetime] = utcnow, pin_factory: Any = None,
                 sensors: bool = True, actuator: bool = True) -> None:
        self.cfg = cfg
        self.links = Links(cfg, clock, pin_factory)
        self.sensors = build_sensors(cfg, self.links) if sensors else []
        self.actuator = build_actuator(cfg, self.links) if actuator else None
        self.supported: tuple[Mode, ...] = actuator_modes(cfg)
        self._stack: AsyncExitStack | None = None

    async def __aenter__(self) -> Self:
        async with AsyncExitStack() as stack:
            for obj in self.links.objects.values():
                if hasattr(obj, "__aenter__"):
                    await stack.enter_async_context(obj)
            for s in self.sensors:
                await stack.enter_async_context(s)
            if self.actuator is not None:
                await stack.enter_async_context(self.actuator)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    async def read_all(self) -> dict[str, Reading | None]:
        """Read every sensor once, concurrently; a failed sensor maps to its last good reading or None."""
        async def one(s: CheckedSensor) -> Reading | None:
            try:
                return await s.read()
            except DeviceError:
                return None

        results = await asyncio.gather(*(one(s) for s in self.sensors))
        return {s.name: r for s, r in zip(self.sensors, results, strict=True)}

    def combined(self, role: str, now: datetime | None = None) -> Reading | None:
        """The median of the fresh last-good readings of every sensor with ``role``."""
        now = now or self.links.clock()
        group = [s for s in self.sensors if s.role == role]
        readings = [s.last for s in group if s.last is not None and s.last.age_s(now) <= s.max_age_s]
        return median_reading(readings, now, max((s.max_age_s for s in group), default=0.0))

    def indoor(self, now: datetime | None = None) -> Reading | None:
        return self.combined("indoor", now)

    def status(self, now: datetime | None = None) -> list[SensorStatus]:
        return [s.status(now) for s in self.sensors]


def config_warnings(cfg: Config) -> list[str]:
    """Legal but doubtful hardware settings, for ``check-config``."""
    from atsd.devices.sgready import polarity_warnings

    out = polarity_warnings(cfg)
    out.extend(preset_problems(cfg.actuator))
    a = cfg.actuator
    modes = actuator_modes(cfg)
    if a.modes is not None and "OFF" in a.modes and Mode.OFF not in modes:
        out.append("[actuator] OFF is listed in modes but this actuator cannot fall back to NORMAL by itself "
                   "if the Pi dies; set allow_unbounded_block = true to accept that risk")
    if a.allow_unbounded_block and a.kind in ("sgready_gpio", "modbus", "mqtt"):
        out.append("[actuator] allow_unbounded_block = true: if the Pi dies during an OFF block the heat pump "
                   "stays blocked until someone notices; enable the hardware watchdog (docs/hardware.md)")
    if a.kind == "mqtt" and not cfg.mqtt.host:
        out.append("[actuator] kind = 'mqtt' needs the [mqtt] broker section")
    if not any(s.role == "indoor" for s in cfg.sensors) and a.kind not in ("none",):
        out.append("no indoor sensor configured: atsd runs on the model alone, OFF blocks capped at "
                   f"{cfg.supervisor.no_sensor_max_off_min:g} min")
    if a.kind == "mqtt" and a.preset in ("shelly", "tasmota") and a.toggle_after_s > cfg.supervisor.max_off_block_min * 60:
        out.append(f"[actuator] toggle_after_s = {a.toggle_after_s} exceeds max_off_block_min; a dead Pi "
                   "would leave the relay on that long")
    return out
