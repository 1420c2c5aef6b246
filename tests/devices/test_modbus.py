"""Modbus sensor and actuator against an in-process pymodbus TCP server."""

from __future__ import annotations

import pytest

from atsd.config import ActuatorConfig, Config, SensorConfig
from atsd.core.modes import Mode
from atsd.devices.device import Backoff, DeviceError
from atsd.devices.modbus import ModbusLink, decode_registers
from atsd.devices.registry import Devices


def test_decode_registers_handles_sign_scale_and_width() -> None:
    assert decode_registers([0xFFFF], signed=True, scale=0.1) == pytest.approx(-0.1)
    assert decode_registers([0xFFFF], signed=False, scale=1) == 65535
    assert decode_registers([0x0001, 0x0002], signed=False, scale=1) == 65538
    assert decode_registers([0xFFFF, 0xFFFE], signed=True, scale=1) == -2


async def test_nibe_preset_enables_sg_then_writes_and_verifies(modbus_server) -> None:
    cfg = Config(actuator=ActuatorConfig(kind="modbus", preset="nibe-s", host=modbus_server.host,
                                         port=modbus_server.port, allow_unbounded_block=True))
    async with Devices(cfg, sensors=False) as dev:
        act = dev.actuator
        assert act.supported == (Mode.OFF, Mode.NORMAL, Mode.BOOST)
        await act.apply(Mode.BOOST)
        assert modbus_server.registers[3032] == 1  # SG Ready via Modbus enabled after connecting
        assert modbus_server.registers[6008] == 2
        await act.apply(Mode.OFF)
        assert modbus_server.registers[6008] == 0 and act.current is Mode.OFF
    assert modbus_server.registers[6008] == 1  # exit leaves NORMAL
    assert modbus_server.writes[0] == (3032, 1)


async def test_modbus_without_self_revert_offers_no_off_by_default(modbus_server) -> None:
    cfg = Config(actuator=ActuatorConfig(kind="modbus", preset="daikin-hh", host="127.0.0.1",
                                         port=modbus_server.port, boost_state=4))
    async with Devices(cfg, sensors=False) as dev:
        assert dev.supported == (Mode.NORMAL, Mode.BOOST)
        await dev.actuator.apply(Mode.BOOST)
        assert modbus_server.registers[55] == 3  # forced on (SG-Ready state 4)


async def test_generic_register_and_sensors(modbus_server) -> None:
    cfg = Config(
        actuator=ActuatorConfig(kind="modbus", host="127.0.0.1", port=modbus_server.port, register=100,
                                values={"ECO": 10, "NORMAL": 20, "BOOST": 30}),
        sensors=(SensorConfig(name="supply", kind="modbus", role="supply", host="127.0.0.1",
                              port=modbus_server.port, register=200, scale=0.1, signed=True),
                 SensorConfig(name="meter", kind="modbus", role="energy", host="127.0.0.1",
                              port=modbus_server.port, register=300, count=2, register_type="input",
                              scale=0.01)))
    async with Devices(cfg) as dev:
        link = dev.links.objects[("modbus", "127.0.0.1", modbus_server.port, None)]
        assert isinstance(link, ModbusLink)  # one link shared by the actuator and both sensors
        await link.write(200, 0x10000 - 55, 1)  # -5.5 °C
        await link.write(300, 1, 1)
        await link.write(301, 0x86A0, 1)  # 0x186A0 = 100000 -> 1000.00 kWh
        got = await dev.read_all()
        assert got["supply"].value == pytest.approx(-5.5)
        assert got["meter"].value == pytest.approx(1000.0) and got["meter"].unit == "kWh"
        await dev.actuator.apply(Mode.ECO)
        assert modbus_server.registers[100] == 10


async def test_device_gone_counts_errors_retries_and_recovers(modbus_server) -> None:
    cfg = Config(actuator=ActuatorConfig(kind="modbus", host="127.0.0.1", port=modbus_server.port, register=10,
                                         values={"NORMAL": 0, "BOOST": 1}, write_timeout_s=0.5))
    async with Devices(cfg, sensors=False) as dev:
        act = dev.actuator
        act.link.backoff = Backoff(0.01, 0.02)
        await act.apply(Mode.BOOST)
        await modbus_server.stop()
        for _ in range(3):
            with pytest.raises(DeviceError, match="retrying on the next request"):
                await act.apply(Mode.NORMAL)
        assert act.link.errors == 3 and act.errors == 3 and act.current is None
        await modbus_server.start()
        import asyncio

        await asyncio.sleep(0.05)
        await act.apply(Mode.BOOST)
        assert modbus_server.registers[10] == 1 and act.current is Mode.BOOST


async def test_device_exception_code_is_a_clear_error(modbus_server) -> None:
    cfg = Config(actuator=ActuatorConfig(kind="modbus", host="127.0.0.1", port=modbus_server.port, register=9000,
                                         values={"NORMAL": 0, "BOOST": 1}))
    async with Devices(cfg, sensors=False) as dev:
        with pytest.raises(DeviceError, match="refused by the device"):
            await dev.actuator.apply(Mode.BOOST)


async def test_verify_catches_a_register_that_does_not_stick(modbus_server) -> None:
    cfg = Config(actuator=ActuatorConfig(kind="modbus", host="127.0.0.1", port=modbus_server.port, register=5,
                                         values={"NORMAL": 0, "BOOST": 1}))
    async with Devices(cfg, sensors=False) as dev:
        act = dev.actuator
        real_read = act.link.read

        async def stuck(register: int, count: int, unit_id: int, kind: str = "holding") -> list[int]:
            return [0]

        act.link.read = stuck
        with pytest.raises(DeviceError, match="read back 0"):
            await act.apply(Mode.BOOST)
        act.link.read = real_read
