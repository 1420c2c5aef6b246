"""SG-Ready relays and the S0 meter on gpiozero's MockFactory pins."""

from __future__ import annotations

import pytest

from atsd.config import ActuatorConfig, Config, SensorConfig
from atsd.core.modes import Mode
from atsd.devices.device import DeviceError
from atsd.devices.registry import Devices, config_warnings
from atsd.devices.s0 import S0Meter
from atsd.devices.sgready import SgReadyRelays


def pins(factory, a: int = 17, b: int = 27) -> tuple[bool, bool]:
    return bool(factory.pin(a).state), bool(factory.pin(b).state)


async def test_sgready_states_and_fail_safe_exit(mock_pins) -> None:
    cfg = Config(actuator=ActuatorConfig(kind="sgready_gpio", allow_unbounded_block=True))
    async with Devices(cfg, sensors=False) as dev:
        act = dev.actuator
        assert act.supported == (Mode.OFF, Mode.NORMAL, Mode.BOOST)
        assert pins(mock_pins) == (False, False)  # opened de-energised: NORMAL
        await act.apply(Mode.OFF)
        assert pins(mock_pins) == (True, False)  # state 1 blocked
        await act.apply(Mode.BOOST)
        assert pins(mock_pins) == (False, True)  # state 3 recommended on
        with pytest.raises(DeviceError, match="not offered"):
            await act.apply(Mode.ECO)
    assert pins(mock_pins) == (False, False)  # exit: NORMAL


async def test_sgready_without_unbounded_block_offers_no_off(mock_pins) -> None:
    cfg = Config(actuator=ActuatorConfig(kind="sgready_gpio"))
    dev = Devices(cfg, sensors=False)
    assert dev.supported == (Mode.NORMAL, Mode.BOOST)


async def test_sgready_active_low_and_state_4(mock_pins) -> None:
    async with SgReadyRelays(5, 6, active_high=False, boost_state=4,
                             supported=(Mode.OFF, Mode.NORMAL, Mode.BOOST)) as act:
        assert pins(mock_pins, 5, 6) == (True, True)  # active-low: pins high = relays released
        await act.apply(Mode.BOOST)
        assert pins(mock_pins, 5, 6) == (False, False)  # both energised: state 4
    assert pins(mock_pins, 5, 6) == (True, True)


async def test_sgready_passes_only_through_normal(mock_pins) -> None:
    seen: list[tuple[bool, bool]] = []
    async with SgReadyRelays(17, 27, supported=(Mode.OFF, Mode.NORMAL, Mode.BOOST)) as act:
        r1, r2 = act._relays
        for r in (r1, r2):
            orig_on, orig_off = r.on, r.off

            def rec_on(orig=orig_on) -> None:
                orig()
                seen.append(pins(mock_pins))

            def rec_off(orig=orig_off) -> None:
                orig()
                seen.append(pins(mock_pins))

            r.on, r.off = rec_on, rec_off
        await act.apply(Mode.OFF)
        seen.clear()
        await act.apply(Mode.BOOST)
    allowed = {(True, False), (False, False), (False, True)}
    assert set(seen) <= allowed and (True, True) not in seen


def test_check_config_warns_on_polarity_vs_boot_pull() -> None:
    ok = Config(actuator=ActuatorConfig(kind="sgready_gpio", relay1_pin=17, relay2_pin=27))
    assert not [w for w in config_warnings(ok) if "boot" in w]
    bad = Config(actuator=ActuatorConfig(kind="sgready_gpio", relay1_pin=4, relay2_pin=27, active_high=True))
    assert any("relay1_pin = 4 is pulled HIGH" in w for w in config_warnings(bad))
    low = Config(actuator=ActuatorConfig(kind="sgready_gpio", relay1_pin=5, relay2_pin=22, active_high=False))
    assert any("relay2_pin = 22 is pulled LOW" in w for w in config_warnings(low))


async def test_s0_counts_energy_and_power(mock_pins) -> None:
    t = [1000.0]
    meter = S0Meter("meter", "energy", 22, 1000.0, monotonic=lambda: t[0])
    power = S0Meter("pwr", "power", 23, 1000.0, monotonic=lambda: t[0])
    async with meter, power:
        pin = mock_pins.pin(22)
        for _ in range(5):
            pin.drive_low()
            pin.drive_high()
        r = await meter.read()
        assert r.value == pytest.approx(0.005) and r.unit == "kWh"
        with pytest.raises(DeviceError, match="waiting for pulses"):
            await power.read()
        power.pulse()
        t[0] += 3.6  # one Wh in 3.6 s = 1000 W
        power.pulse()
        assert (await power.read()).value == pytest.approx(1000.0)
        t[0] += 36.0  # no pulse for 36 s: at most 100 W
        assert (await power.read()).value == pytest.approx(100.0)


def test_s0_rejects_temperature_roles() -> None:
    with pytest.raises(DeviceError, match="energy or power"):
        S0Meter("x", "indoor", 22, 1000.0)


async def test_s0_built_from_config(mock_pins) -> None:
    cfg = Config(sensors=(SensorConfig(name="s0", kind="s0", role="energy", pin=24, pulses_per_kwh=800),))
    async with Devices(cfg, actuator=False) as dev:
        mock_pins.pin(24).drive_low()
        mock_pins.pin(24).drive_high()
        got = await dev.read_all()
        assert got["s0"].value == pytest.approx(1 / 800)
