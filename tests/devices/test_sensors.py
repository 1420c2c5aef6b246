"""1-Wire over a fake sysfs tree, plausibility checks, median combination, the simulated house."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from atsd.config import ActuatorConfig, Config, SensorConfig
from atsd.core import house
from atsd.core.modes import ALL_MODES, Mode
from atsd.devices import presets
from atsd.devices.device import DeviceError, Reading
from atsd.devices.onewire import OneWireSensor, parse_w1_slave
from atsd.devices.readings import CheckedSensor, Limits, median_reading
from atsd.devices.registry import Devices
from atsd.devices.simulated import SimulatedHouse

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
GOOD = "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"
BAD_CRC = "72 01 4b 46 7f ff 0e 10 57 : crc=00 NO\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"
POWER_ON = "50 05 4b 46 7f ff 0c 10 1c : crc=1c YES\n50 05 4b 46 7f ff 0c 10 1c t=85000\n"


def w1_tree(tmp_path: Path, sensor_id: str, text: str) -> Path:
    d = tmp_path / "w1" / sensor_id
    d.mkdir(parents=True)
    (d / "w1_slave").write_text(text)
    return tmp_path / "w1"


def test_parse_w1_slave() -> None:
    assert parse_w1_slave(GOOD) == 23.125
    assert parse_w1_slave(GOOD.replace("t=23125", "t=-1250")) == -1.25
    with pytest.raises(ValueError, match="CRC"):
        parse_w1_slave(BAD_CRC)
    with pytest.raises(ValueError, match="power-on"):
        parse_w1_slave(POWER_ON)


async def test_onewire_reads_fake_sysfs_via_config(tmp_path: Path) -> None:
    w1 = w1_tree(tmp_path, "28-0000075a1b2c", GOOD)
    cfg = Config(sensors=(SensorConfig(name="hall", kind="onewire", sensor_id="28-0000075a1b2c", w1_dir=w1),))
    async with Devices(cfg, actuator=False) as dev:
        got = await dev.read_all()
        assert got["hall"].value == 23.125 and got["hall"].unit == "°C"


class Flaky:
    """Stands in for the sysfs path: CRC errors and power-on values before a good read."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts

    def read_text(self, **_: object) -> str:
        return self.texts.pop(0) if len(self.texts) > 1 else self.texts[0]


async def test_onewire_retries_crc_and_power_on_values(tmp_path: Path) -> None:
    s = OneWireSensor("x", "indoor", "28-1", tmp_path, retry_delay_s=0)
    s.path = Flaky([BAD_CRC, POWER_ON, GOOD])  # type: ignore[assignment]
    assert (await s.read()).value == 23.125
    s.path = Flaky([POWER_ON])  # type: ignore[assignment]
    with pytest.raises(DeviceError, match="power-on value"):
        await s.read()


async def test_onewire_missing_sensor_says_what_to_check(tmp_path: Path) -> None:
    s = OneWireSensor("x", "indoor", "28-404", tmp_path)
    with pytest.raises(DeviceError, match="sensor_id, the wiring"):
        await s.read()


class Scripted:
    def __init__(self, values: list[float | Exception], start: datetime = T0) -> None:
        self.name, self.role = "s", "indoor"
        self.values = values
        self.t = start

    async def __aenter__(self) -> Scripted:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def read(self) -> Reading:
        v = self.values.pop(0)
        self.t += timedelta(minutes=1)
        if isinstance(v, Exception):
            raise v
        return Reading(v, "°C", self.t, self.name)


async def test_implausible_values_are_rejected_counted_and_age_grows() -> None:
    raw = Scripted([21.0, 45.0, 21.1, 30.0, DeviceError("gone"), 21.2])
    s = CheckedSensor(raw, Limits(5, 35, 2.0), 900, clock=lambda: raw.t)
    assert (await s.read()).value == 21.0
    assert (await s.read()).value == 21.0 and s.rejected == 1  # out of range: last good stands
    assert (await s.read()).value == 21.1
    r = await s.read()  # 9 K in a minute: a jump
    assert r.value == 21.1 and s.rejected == 2 and "jumps" in s.message
    r = await s.read()
    assert r.value == 21.1 and s.errors == 1 and r.age_s(raw.t) == 120
    assert (await s.read()).value == 21.2
    assert s.status(raw.t).ok


async def test_a_real_level_change_is_believed_after_repeated_jumps() -> None:
    raw = Scripted([20.0, 28.0, 28.0, 28.0])
    s = CheckedSensor(raw, Limits(5, 35, 2.0), 900, clock=lambda: raw.t)
    values = [(await s.read()).value for _ in range(4)]
    assert values == [20.0, 20.0, 20.0, 28.0] and s.rejected == 2


def test_median_ignores_one_broken_sensor_and_stale_values() -> None:
    rs = [Reading(21.0, "°C", T0, "a"), Reading(21.4, "°C", T0 - timedelta(minutes=5), "b"),
          Reading(35.0, "°C", T0, "c"), Reading(10.0, "°C", T0 - timedelta(hours=2), "old")]
    m = median_reading(rs, T0, 900)
    assert m is not None and m.value == 21.4 and m.age_s(T0) == 300 and "median of" in m.source
    assert median_reading(rs[3:], T0, 900) is None


def test_simulated_house_warms_in_boost_and_cools_when_off() -> None:
    cfg = Config()
    h = SimulatedHouse(house.thermal_model(cfg), cfg.comfort, T0, 21.0, outdoor=lambda t: -10.0)
    h.set_mode(T0, Mode.OFF)
    h.advance(T0 + timedelta(hours=2))
    cooled = h.indoor_c
    assert cooled < 20.8 and h.power_w == 0.0
    h.set_mode(T0 + timedelta(hours=2), Mode.BOOST)
    h.advance(T0 + timedelta(hours=6))
    assert h.indoor_c > cooled + 0.5 and h.energy_kwh > 1.0 and h.switches == 2


async def test_simulated_devices_follow_a_virtual_clock() -> None:
    now = [T0]
    cfg = Config(actuator=ActuatorConfig(kind="simulated"),
                 sensors=(SensorConfig(name="room", kind="simulated"),
                          SensorConfig(name="kwh", kind="simulated", role="energy")))
    async with Devices(cfg, clock=lambda: now[0]) as dev:
        assert dev.supported == ALL_MODES
        await dev.actuator.apply(Mode.BOOST)
        start = (await dev.read_all())["room"].value
        now[0] += timedelta(hours=3)
        got = await dev.read_all()
        assert got["room"].value > start and got["kwh"].value > 0
        assert got["room"].timestamp == now[0]
    assert dev.actuator.current is Mode.NORMAL


@pytest.mark.parametrize("actuator", [
    ActuatorConfig(kind="sgready_gpio"), ActuatorConfig(kind="sgready_gpio", allow_unbounded_block=True),
    ActuatorConfig(kind="modbus", preset="nibe-s", host="h"), ActuatorConfig(kind="modbus", preset="daikin-hh", host="h"),
    ActuatorConfig(kind="mqtt", preset="shelly", topic="s"), ActuatorConfig(kind="mqtt", preset="tasmota", topic="t"),
    ActuatorConfig(kind="mqtt", preset="heishamon"), ActuatorConfig(kind="mqtt", topic="x", payloads={"NORMAL": "n"}),
    ActuatorConfig(kind="mqtt", preset="shelly", topic="s", modes=("NORMAL", "BOOST")),
    ActuatorConfig(kind="simulated"), ActuatorConfig(kind="none"),
])
def test_device_modes_never_exceed_what_the_planner_is_told(actuator: ActuatorConfig) -> None:
    cfg = Config(actuator=actuator)
    modes = presets.actuator_modes(cfg)
    assert Mode.NORMAL in modes
    assert set(modes) <= set(house.allowed_modes(cfg))
    if Mode.OFF in modes:
        assert actuator.allow_unbounded_block or presets.reverts_by_itself(actuator) or actuator.kind == "none"


def test_self_reverting_presets_agree_with_core() -> None:
    assert {k for k, p in presets.MQTT_PRESETS.items() if p.self_reverting} == set(house.SELF_REVERTING_PRESETS)


async def test_every_adapter_satisfies_its_protocol(tmp_path: Path) -> None:
    from atsd.devices import simulated
    from atsd.devices.device import Actuator, Sensor
    from atsd.devices.registry import Links, build_actuator

    cfg = Config(actuator=ActuatorConfig(kind="simulated"))
    links = Links(cfg)
    sim = simulated.build_sensor(SensorConfig(name="s", kind="simulated"), links)
    assert isinstance(OneWireSensor("a", "indoor", "28-1", tmp_path), Sensor) and isinstance(sim, Sensor)
    assert isinstance(build_actuator(cfg, links), Actuator)
    for kind, extra in (("mqtt", {"topic": "t", "payloads": {"NORMAL": "n"}}),
                        ("modbus", {"host": "h", "register": 1, "values": {"NORMAL": 0}}),
                        ("sgready_gpio", {})):
        c = Config(actuator=ActuatorConfig(kind=kind, **extra))
        assert isinstance(build_actuator(c, Links(c)), Actuator), kind
