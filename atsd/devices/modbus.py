"""Modbus TCP and RTU: a register sensor (temperatures, power, energy) and a smart-grid register actuator.

One :class:`ModbusLink` per endpoint (host:port or serial port) is shared by every sensor and the
actuator on it, because RS-485 allows one request at a time and many heat pumps allow one TCP
client. The link reconnects on the next request after a failure, with capped backoff; each request
is retried once over a fresh connection. pymodbus errors become :class:`DeviceError` here and
nowhere else. Addresses are 0-based PDU addresses, as in the vendors' Modbus tables.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from atsd.config import Config, SensorConfig
from atsd.core.modes import Mode
from atsd.devices.device import UNITS, Backoff, DeviceError, Reading, check_supported, utcnow
from atsd.devices.presets import MODBUS_PRESETS, actuator_modes, modbus_values

if TYPE_CHECKING:
    from atsd.devices.registry import Links

log = logging.getLogger(__name__)


class ModbusLink:
    """A shared, lazily (re)connecting Modbus client for one endpoint, one request at a time."""

    def __init__(self, host: str | None, port: int = 502, serial_port: str | None = None,
                 baudrate: int = 9600, timeout_s: float = 2.0, backoff: Backoff | None = None) -> None:
        if host is None and serial_port is None:
            raise DeviceError("Modbus needs host (TCP) or serial_port (RTU)")
        self.host = host
        self.port = port
        self.serial_port = serial_port
        self.baudrate = baudrate
        self.timeout_s = timeout_s
        self.backoff = backoff or Backoff(1.0, 60.0)
        self.where = f"{host}:{port}" if host else f"{serial_port}@{baudrate}"
        self.errors = 0
        self.requests = 0
        self.last_error: str | None = None
        self.after_connect: list[Callable[[], Awaitable[None]]] = []
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        self._lock = asyncio.Lock()
        self._next_try = 0.0
        self._failing = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._drop()

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def _connect(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        if self._client is not None and self._client.connected:
            return self._client
        self._drop()
        wait = self._next_try - time.monotonic()
        if wait > 0:
            raise ModbusException(f"reconnect backoff, next attempt in {wait:.0f} s")
        client: AsyncModbusTcpClient | AsyncModbusSerialClient
        if self.host is not None:
            client = AsyncModbusTcpClient(self.host, port=self.port, timeout=self.timeout_s, retries=0,
                                          reconnect_delay=0)
        else:
            assert self.serial_port is not None
            client = AsyncModbusSerialClient(self.serial_port, baudrate=self.baudrate, timeout=self.timeout_s,
                                             retries=0, reconnect_delay=0)
        ok = await client.connect()
        if not ok:
            client.close()
            self._next_try = time.monotonic() + self.backoff.next_delay()
            raise ModbusException("connection refused or timed out")
        self._client = client
        self.backoff.reset()
        for hook in self.after_connect:
            await hook()
        return client

    async def call(self, what: str, op: Callable[[Any], Awaitable[Any]]) -> Any:
        """Run ``op(client)`` under the lock, reconnecting and retrying once; errors become DeviceError."""
        async with self._lock:
            self.requests += 1
            last: Exception | None = None
            for attempt in range(2):
                try:
                    client = await self._connect()
                    result = await asyncio.wait_for(op(client), self.timeout_s * 2)
                    if result.isError():
                        # The device answered with an exception code: a bad address or value, not the
                        # wire. No reconnect, no retry.
                        self._count(what, f"device answered {result}")
                        raise DeviceError(f"Modbus {self.where}: {what} refused by the device ({result}); "
                                          "check the register, unit_id and the device's Modbus settings")
                    if self._failing:
                        log.info("Modbus %s recovered after %d errors.", self.where, self.errors)
                        self._failing = False
                    return result
                except (ModbusException, OSError, TimeoutError) as exc:
                    last = exc
                    self._drop()
                    if attempt == 0 and "backoff" not in str(exc):
                        continue
                    break
            self._count(what, str(last) or type(last).__name__)
            raise DeviceError(f"Modbus {self.where}: {what} failed ({self.last_error}); check the cable or "
                              "network and the device's Modbus settings; retrying on the next request") from last

    def _count(self, what: str, err: str) -> None:
        self.errors += 1
        self.last_error = err
        if not self._failing:
            log.warning("Modbus %s: %s failed: %s", self.where, what, err)
            self._failing = True

    async def read(self, register: int, count: int, unit_id: int, kind: str = "holding") -> list[int]:
        async def op(c: Any) -> Any:
            if kind == "input":
                return await c.read_input_registers(register, count=count, device_id=unit_id)
            return await c.read_holding_registers(register, count=count, device_id=unit_id)

        result = await self.call(f"read {kind} {register}", op)
        regs = list(result.registers)
        if len(regs) < count:
            raise DeviceError(f"Modbus {self.where}: read {kind} {register} returned {len(regs)} of {count} registers")
        return regs[:count]

    async def write(self, register: int, value: int, unit_id: int) -> None:
        async def op(c: Any) -> Any:
            return await c.write_register(register, value, device_id=unit_id)

        await self.call(f"write {value} to holding {register}", op)


def link_for(links: Links, host: str | None, port: int, serial_port: str | None, baudrate: int,
             timeout_s: float) -> ModbusLink:
    key = ("modbus", host, port, serial_port)
    return links.shared(key, lambda: ModbusLink(host, port, serial_port, baudrate, timeout_s))


def decode_registers(regs: list[int], *, signed: bool, scale: float) -> float:
    """Big-endian words (the Modbus convention) to a number: 1, 2 or 4 registers, optional sign."""
    raw = 0
    for r in regs:
        raw = (raw << 16) | (r & 0xFFFF)
    bits = 16 * len(regs)
    if signed and raw >= 1 << (bits - 1):
        raw -= 1 << bits
    return raw * scale


class ModbusSensor:
    def __init__(self, name: str, role: str, link: ModbusLink, register: int, *, count: int = 1,
                 register_type: str = "holding", unit_id: int = 1, scale: float = 1.0, signed: bool = False,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.name = name
        self.role = role
        self.link = link
        self.register = register
        self.count = count
        self.register_type = register_type
        self.unit_id = unit_id
        self.scale = scale
        self.signed = signed
        self.clock = clock

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        return None

    async def read(self) -> Reading:
        regs = await self.link.read(self.register, self.count, self.unit_id, self.register_type)
        value = decode_registers(regs, signed=self.signed, scale=self.scale)
        return Reading(value, UNITS[self.role], self.clock(), self.name)


def build_sensor(sc: SensorConfig, links: Links) -> ModbusSensor:
    if sc.register is None:
        raise DeviceError(f"sensor {sc.name}: kind = 'modbus' needs register")
    link = link_for(links, sc.host, sc.port, sc.serial_port, sc.baudrate, 2.0)
    return ModbusSensor(sc.name, sc.role, link, sc.register, count=sc.count, register_type=sc.register_type,
                        unit_id=sc.unit_id, scale=sc.scale, signed=sc.signed, clock=links.clock)


class ModbusActuator:
    """Writes one holding-register value per mode, then reads it back to verify."""

    def __init__(self, name: str, link: ModbusLink, register: int, values: dict[Mode, int],
                 supported: tuple[Mode, ...], *, unit_id: int = 1, verify: bool = True,
                 enable: tuple[tuple[int, int], ...] = ()) -> None:
        self.name = name
        self.link = link
        self.register = register
        self.values = values
        self.supported = supported
        self.unit_id = unit_id
        self.verify = verify
        self.enable = enable
        self.errors = 0
        self._current: Mode | None = None
        if enable:
            link.after_connect.append(self._enable)

    @property
    def current(self) -> Mode | None:
        return self._current

    async def _enable(self) -> None:
        client = self.link._client  # called under the link's lock, right after connecting
        assert client is not None
        for register, value in self.enable:
            result = await client.write_register(register, value, device_id=self.unit_id)
            if result.isError():
                raise ModbusException(f"enabling write {value} to {register} refused ({result})")

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def apply(self, mode: Mode) -> None:
        check_supported(self.name, mode, self.supported)
        value = self.values[mode]
        try:
            await self.link.write(self.register, value, self.unit_id)
            if self.verify:
                (back,) = await self.link.read(self.register, 1, self.unit_id)
                if back != value:
                    raise DeviceError(f"Modbus actuator {self.name}: wrote {value} to {self.register} for {mode} "
                                      f"but read back {back}; is the register writable and SG control enabled?")
        except DeviceError:
            self.errors += 1
            self._current = None
            raise
        self._current = mode

    async def close(self) -> None:
        try:
            await self.apply(Mode.NORMAL)
        except DeviceError as exc:
            log.warning("Modbus actuator %s: NORMAL not confirmed at exit: %s", self.name, exc)


def build_actuator(cfg: Config, links: Links) -> ModbusActuator:
    a = cfg.actuator
    preset = MODBUS_PRESETS.get(a.preset or "")
    if a.preset is not None and preset is None:
        raise DeviceError(f"[actuator] unknown Modbus preset {a.preset!r} (known: {', '.join(MODBUS_PRESETS)})")
    register = a.register if a.register is not None else (preset.register if preset else None)
    if register is None:
        raise DeviceError("[actuator] kind = 'modbus' needs register (or a preset)")
    values = {Mode(k): v for k, v in modbus_values(a).items()}
    if Mode.NORMAL not in values:
        raise DeviceError("[actuator] needs a NORMAL value in [actuator.values] (the fail-safe)")
    link = link_for(links, a.host, a.port, a.serial_port, a.baudrate, a.write_timeout_s)
    where = link.where
    return ModbusActuator(f"modbus:{where}/{register}", link, register, values, actuator_modes(cfg),
                          unit_id=a.unit_id, verify=a.verify, enable=preset.enable if preset else ())
