"""MQTT sensors and actuator against a real Mosquitto broker."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import textwrap
import tomllib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiomqtt
import pytest

from atsd.config import ActuatorConfig, Config, MqttConfig, SensorConfig, parse
from atsd.core.modes import Mode
from atsd.devices.device import DeviceError
from atsd.devices.mqtt import decode_ruuvi, extract
from atsd.devices.presets import SENSOR_PRESETS
from atsd.devices.registry import Devices

ISSUE_CONFIG = """
[mqtt]
host = "127.0.0.1"
port = 1883

[actuator]
kind = "mqtt"
topic = "heatpump/mode/set"
[actuator.payloads]
OFF = "off"
ECO = "eco"
NORMAL = "normal"
BOOST = "boost"
"""

RUUVI_DATA = "0201061BFF99040512FC5394C37C0004FFFC040CAC364200CDCBB8334C884F"  # 24.3 °C, 53.49 %


def issue_config(port: int) -> Config:
    return parse(tomllib.loads(ISSUE_CONFIG.replace("1883", str(port))))


@asynccontextmanager
async def watcher(broker, topic: str) -> AsyncIterator[asyncio.Queue[aiomqtt.Message]]:
    """A plain client that queues every message on ``topic``."""
    q: asyncio.Queue[aiomqtt.Message] = asyncio.Queue()
    async with aiomqtt.Client(broker.host, broker.port, identifier=f"watch-{os.getpid()}-{id(q)}") as c:
        await c.subscribe(topic, qos=1)

        async def pump() -> None:
            async for m in c.messages:
                await q.put(m)

        task = asyncio.create_task(pump())
        try:
            yield q
        finally:
            task.cancel()


async def next_payload(q: asyncio.Queue[aiomqtt.Message], timeout_s: float = 5.0) -> str:
    m = await asyncio.wait_for(q.get(), timeout_s)
    assert isinstance(m.payload, bytes)
    return m.payload.decode()


def test_payload_extraction_presets() -> None:
    assert extract(b'{"temperature": 21.5, "humidity": 40}', SENSOR_PRESETS["zigbee2mqtt"], None) == 21.5
    assert extract(b'{"id":0,"tC":19.9,"tF":67.8}', SENSOR_PRESETS["shelly_ht"], None) == 19.9
    ev = b'{"method":"NotifyStatus","params":{"temperature:0":{"id":0,"tC":20.4}}}'
    assert extract(ev, SENSOR_PRESETS["shelly_ht"], None) == 20.4
    assert extract(b'{"aenergy":{"total":12345.0}}', SENSOR_PRESETS["shelly_pm_energy"], None) == pytest.approx(12.345)
    assert extract(b"21.25", SENSOR_PRESETS["plain"], None) == 21.25
    assert extract(b'{"a":{"b":[1,{"c":7}]}}', SENSOR_PRESETS["plain"].__class__(()), "a.b.1.c") == 7
    ruuvi = json.dumps({"gw_mac": "AA", "rssi": -60, "data": RUUVI_DATA}).encode()
    assert extract(ruuvi, SENSOR_PRESETS["ruuvi"], None) == pytest.approx(24.3)
    assert decode_ruuvi(RUUVI_DATA)["humidity"] == pytest.approx(53.49)


async def test_mqtt_sensors_read_latest_message_with_its_age(mosquitto) -> None:
    cfg = Config(mqtt=MqttConfig(host=mosquitto.host, port=mosquitto.port),
                 sensors=(SensorConfig(name="living", kind="mqtt", topic="zigbee2mqtt/living", preset="zigbee2mqtt"),
                          SensorConfig(name="ruuvi", kind="mqtt", topic="ruuvi/gw/tag1", preset="ruuvi"),
                          SensorConfig(name="z2", kind="mqtt", topic="t/z2", field="temperature",
                                       min_value=5, max_value=35)))
    async with Devices(cfg, actuator=False) as dev:
        assert await dev.links.objects[("mqtt-sensors",)].wait_connected(5)
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as pub:
            await pub.publish("zigbee2mqtt/living", '{"temperature": 21.0}', qos=1)
            await pub.publish("ruuvi/gw/tag1", json.dumps({"data": RUUVI_DATA}), qos=1)
            await pub.publish("t/z2", '{"temperature": 80}', qos=1)  # implausible
        got = await dev.read_all()
        assert got["living"] is not None and got["living"].value == 21.0
        assert got["ruuvi"] is not None and got["ruuvi"].value == pytest.approx(24.3)
        assert got["z2"] is None  # rejected, never a good one
        z2 = next(s for s in dev.sensors if s.name == "z2")
        assert z2.rejected == 1 and "outside" in z2.message
        ind = dev.indoor()
        assert ind is not None and ind.value == pytest.approx(22.65)  # median of 21.0 and 24.3


async def test_mqtt_sensors_resubscribe_after_broker_restart(mosquitto) -> None:
    cfg = Config(mqtt=MqttConfig(host=mosquitto.host, port=mosquitto.port),
                 sensors=(SensorConfig(name="room", kind="mqtt", topic="z/room", preset="zigbee2mqtt"),))
    async with Devices(cfg, actuator=False) as dev:
        sub = dev.links.objects[("mqtt-sensors",)]
        assert await sub.wait_connected(5)
        await asyncio.to_thread(mosquitto.restart)
        for _ in range(200):
            if sub.connected.is_set() and sub.connects == 2:
                break
            await asyncio.sleep(0.05)
        assert sub.connects == 2
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as pub:
            await pub.publish("z/room", '{"temperature": 20.5}', qos=1)
        assert (await dev.read_all())["room"].value == 20.5


async def test_issue_config_drives_payloads_qos1_never_retained(mosquitto) -> None:
    cfg = issue_config(mosquitto.port)
    async with watcher(mosquitto, "heatpump/mode/set") as q, Devices(cfg, sensors=False) as dev:
        act = dev.actuator
        assert act is not None
        # the last will publishes NORMAL if the Pi dies, so the template may offer OFF
        assert act.supported == (Mode.OFF, Mode.ECO, Mode.NORMAL, Mode.BOOST)
        await act.apply(Mode.BOOST)
        assert await next_payload(q) == "boost"
        await act.apply(Mode.ECO)
        assert await next_payload(q) == "eco"
        assert act.current is Mode.ECO
        await act.apply(Mode.OFF)
        assert await next_payload(q) == "off"
    assert await next_payload(q) == "normal"  # exit leaves NORMAL
    # nothing retained: a late subscriber gets no command
    async with watcher(mosquitto, "heatpump/mode/set") as late:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(late.get(), 0.5)


async def test_off_offered_with_allow_unbounded_block(mosquitto) -> None:
    cfg = parse(tomllib.loads(ISSUE_CONFIG.replace("1883", str(mosquitto.port)) + "\n")
                | {"actuator": {"kind": "mqtt", "topic": "hp/set", "allow_unbounded_block": True,
                                "payloads": {"OFF": "off", "NORMAL": "normal"}}})
    dev = Devices(cfg, sensors=False)
    assert dev.supported == (Mode.OFF, Mode.NORMAL)


CRASHER = textwrap.dedent("""
    import asyncio, sys, tomllib
    from atsd.config import parse
    from atsd.core.modes import Mode
    from atsd.devices.registry import Devices

    async def main():
        cfg = parse(tomllib.loads(sys.argv[1]))
        dev = Devices(cfg, sensors=False)
        await dev.__aenter__()
        await dev.actuator.apply(Mode.BOOST)
        print("applied", flush=True)
        await asyncio.sleep(60)

    asyncio.run(main())
""")


REPO = str(Path(__file__).resolve().parents[2])


async def test_last_will_publishes_normal_when_the_client_dies(mosquitto) -> None:
    text = ISSUE_CONFIG.replace("1883", str(mosquitto.port))
    env = {**os.environ, "PYTHONPATH": REPO}
    async with watcher(mosquitto, "heatpump/mode/set") as q:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", CRASHER, text,
                                                    stdout=asyncio.subprocess.DEVNULL, env=env)
        try:
            assert await next_payload(q, 15) == "boost"
            proc.send_signal(signal.SIGKILL)  # no goodbye, no cleanup
            await asyncio.wait_for(proc.wait(), 5)
            assert await next_payload(q, 10) == "normal"
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def test_actuator_reconnects_and_reapplies_after_broker_restart(mosquitto) -> None:
    cfg = issue_config(mosquitto.port)
    async with Devices(cfg, sensors=False) as dev:
        act = dev.actuator
        await act.apply(Mode.BOOST)
        connects = act.connects
        gate = asyncio.Event()  # hold the reconnect until the watcher listens (no race)

        async def gated_sleep() -> None:
            await asyncio.sleep(0.05)
            await gate.wait()

        act.backoff.sleep = gated_sleep
        await asyncio.to_thread(mosquitto.stop)
        for _ in range(100):
            if not act.connected.is_set():
                break
            await asyncio.sleep(0.05)
        with pytest.raises(DeviceError, match="re-sent on reconnect"):
            await act.apply(Mode.ECO)  # broker gone: a clear error, the wish is kept
        await asyncio.to_thread(mosquitto.start)
        async with watcher(mosquitto, "heatpump/mode/set") as q:
            gate.set()
            assert await next_payload(q, 15) == "eco"
        assert act.connects == connects + 1 and act.current is Mode.ECO


async def test_shelly_sends_toggle_after_and_rearms_without_switching(mosquitto) -> None:
    cfg = Config(mqtt=MqttConfig(host=mosquitto.host, port=mosquitto.port),
                 actuator=ActuatorConfig(kind="mqtt", preset="shelly", topic="shellyplus1-hp", toggle_after_s=600))
    async with watcher(mosquitto, "shellyplus1-hp/rpc") as q, Devices(cfg, sensors=False) as dev:
        act = dev.actuator
        assert act.supported == (Mode.OFF, Mode.NORMAL)  # a self-reverting relay may block
        assert act.rearm_s == 300
        act.rearm_s = 0.3  # speed up the half-period re-arm for the test
        await act.apply(Mode.OFF)
        first = json.loads(await next_payload(q))
        assert first["method"] == "Switch.Set" and first["params"] == {"id": 0, "on": True, "toggle_after": 600}
        again = json.loads(await next_payload(q, 3))
        assert again["params"] == first["params"] and again["id"] > first["id"]
        await asyncio.sleep(0.05)
        assert act.rearms >= 1 and act.current is Mode.OFF
        await act.apply(Mode.NORMAL)
        off = json.loads(await next_payload(q))
        while off["params"].get("on"):
            off = json.loads(await next_payload(q))  # a re-arm may have been in flight
        assert off["params"] == {"id": 0, "on": False}
        await asyncio.sleep(0.5)
        assert q.empty()  # NORMAL is not re-armed


async def test_tasmota_sets_pulsetime_on_connect(mosquitto) -> None:
    cfg = Config(mqtt=MqttConfig(host=mosquitto.host, port=mosquitto.port),
                 actuator=ActuatorConfig(kind="mqtt", preset="tasmota", topic="hp_relay", toggle_after_s=900,
                                         modes=("NORMAL", "BOOST")))
    async with watcher(mosquitto, "cmnd/hp_relay/#") as q, Devices(cfg, sensors=False) as dev:
        assert await next_payload(q) == "1000"
        await dev.actuator.apply(Mode.BOOST)
        assert await next_payload(q) == "ON"
    assert await next_payload(q) == "OFF"
