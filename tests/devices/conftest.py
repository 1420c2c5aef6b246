"""Fixtures for device tests: an in-process pymodbus TCP server and gpiozero mock pins."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from tests.conftest import free_port, wait_for_port

logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


@dataclass
class ModbusServer:
    """An in-process Modbus TCP server whose holding/input registers (shared block) tests inspect."""

    host: str
    port: int
    registers: dict[int, int] = field(default_factory=dict)  # every value written, by address
    writes: list[tuple[int, int]] = field(default_factory=list)
    server: Any = None

    async def start(self) -> None:
        async def action(fc: int, start: int, address: int, count: int, current: list[int],
                         set_values: Any) -> None:
            if set_values is not None:
                for i, v in enumerate(set_values):
                    self.registers[address + i] = int(v)
                    self.writes.append((address + i, int(v)))
            return None

        dev = SimDevice(id=1, simdata=[SimData(0, count=7000, values=0, datatype=DataType.REGISTERS)],
                        action=action)
        self.server = ModbusTcpServer(dev, address=(self.host, self.port))
        await self.server.serve_forever(background=True)
        wait_for_port(self.host, self.port)

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.shutdown()
            self.server = None


@pytest.fixture
async def modbus_server() -> AsyncIterator[ModbusServer]:
    srv = ModbusServer("127.0.0.1", free_port())
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
def mock_pins() -> Iterator[MockFactory]:
    """gpiozero's MockFactory as the default pin factory; pins reset after the test."""
    old = Device.pin_factory
    factory = MockFactory()
    Device.pin_factory = factory
    try:
        yield factory
    finally:
        factory.reset()
        Device.pin_factory = old
