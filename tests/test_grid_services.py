"""Demand response over a real broker, Home Assistant discovery and the flexibility envelope."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import timedelta

import aiomqtt

from atsd.clock import VirtualClock
from atsd.config import Config
from atsd.core.modes import Mode
from atsd.daemon import Daemon
from atsd.demo import DEMO_START
from atsd.hass import MODE_OPTIONS, discovery
from atsd.messages import DemandResponseEvent

from .test_daemon import fast_cfg


def test_discovery_payloads_follow_home_assistants_schema():
    cfg = Config()
    docs = discovery(cfg)
    ids = [d["unique_id"] for d in docs.values()]
    assert len(ids) == len(set(ids))
    for topic, doc in docs.items():
        prefix, component, node, _obj, tail = topic.split("/")
        assert (prefix, tail) == ("homeassistant", "config") and component in ("sensor", "select")
        assert doc["device"]["identifiers"] == [node] and doc["name"]
        assert doc["availability_topic"] == "atsd/atsd-house/availability"
        assert doc["state_topic"].startswith("atsd/atsd-house/")
    select = docs["homeassistant/select/atsd_atsd_house/mode_override/config"]
    assert select["command_topic"] == "atsd/atsd-house/mode/set" and select["options"] == MODE_OPTIONS
    temp = docs["homeassistant/sensor/atsd_atsd_house/indoor/config"]
    assert temp["device_class"] == "temperature" and temp["unit_of_measurement"] == "°C"


def mqtt_daemon(tmp_path, port: int, device_id: str) -> tuple[Daemon, VirtualClock]:
    cfg = fast_cfg(tmp_path)
    cfg = dataclasses.replace(
        cfg, device=dataclasses.replace(cfg.device, device_id=device_id),
        mqtt=dataclasses.replace(cfg.mqtt, enabled=True, port=port, username="house", accept_commands=True,
                                 ha_discovery=True))
    clock = VirtualClock(DEMO_START, auto_advance=True)
    return Daemon(cfg, clock, demo=True), clock


async def test_demand_response_over_mqtt_changes_the_plan_in_its_window_and_keeps_the_floor(tmp_path, mosquitto):
    d, clock = mqtt_daemon(tmp_path, mosquitto.port, "house-dr")
    task = asyncio.create_task(d.run())
    with clock.hold():
        await asyncio.wait_for(d.ready.wait(), 30)
        assert await d.publisher.wait_connected(15)
    ev = DemandResponseEvent("peak-1", clock.now() + timedelta(minutes=30), 90, "shed")
    before = [s.mode for s in d.current_plan.slots if ev.start <= s.start < ev.end]
    async with aiomqtt.Client("127.0.0.1", mosquitto.port) as c:
        await c.subscribe("atsd/house-dr/dr/ack", qos=1)
        await c.subscribe("homeassistant/#", qos=1)
        await c.subscribe("atsd/house-dr/flexibility", qos=1)
        with clock.hold():
            await c.publish("atsd/house-dr/dr/set", json.dumps(ev.as_json()), qos=1)
            got: dict[str, dict] = {}
            async with asyncio.timeout(10):
                async for m in c.messages:
                    got[str(m.topic)] = json.loads(m.payload)
                    if "atsd/house-dr/dr/ack" in got and "atsd/house-dr/flexibility" in got:
                        break
    ack = got["atsd/house-dr/dr/ack"]
    assert ack["event_id"] == "peak-1" and ack["status"] in ("accepted", "partial"), ack
    during = [s.mode for s in d.current_plan.slots if ev.start <= s.start < ev.end]
    assert during != before and during[0].rank <= Mode.ECO.rank
    assert any(t.startswith("homeassistant/select/") for t in got)
    flex = got["atsd/house-dr/flexibility"]
    assert flex["v"] == 1 and len(flex["slots"]) == 96
    await clock.sleep_until(ev.end + timedelta(hours=1))
    d.request_stop()
    assert await asyncio.wait_for(task, 30) == 0
    assert min(r["indoor"] / r["n"] for r in d.rows if r["n"]) >= d.cfg.comfort.min_c - 0.2


async def test_home_assistant_mode_select_overrides_and_auto_returns_to_the_plan(tmp_path, mosquitto):
    d, clock = mqtt_daemon(tmp_path, mosquitto.port, "house-ha")
    task = asyncio.create_task(d.run())
    with clock.hold():
        await asyncio.wait_for(d.ready.wait(), 30)
        assert await d.publisher.wait_connected(15)
        async with aiomqtt.Client("127.0.0.1", mosquitto.port) as c:
            await c.publish("atsd/house-ha/mode/set", "BOOST", qos=1)
            for _ in range(100):
                if d.held is not None:
                    break
                await asyncio.sleep(0.05)
    assert d.held is not None and d.held.mode is Mode.BOOST
    await clock.sleep(300)
    assert d.last_verdict.mode is Mode.BOOST
    with clock.hold():
        async with aiomqtt.Client("127.0.0.1", mosquitto.port) as c:
            await c.publish("atsd/house-ha/mode/set", "AUTO", qos=1)
            for _ in range(100):
                if d.held is None:
                    break
                await asyncio.sleep(0.05)
    assert d.held is None
    d.request_stop()
    assert await asyncio.wait_for(task, 30) == 0


async def test_too_long_or_malformed_events_over_mqtt_are_refused_with_a_reason(tmp_path, mosquitto):
    d, clock = mqtt_daemon(tmp_path, mosquitto.port, "house-cap")
    task = asyncio.create_task(d.run())
    with clock.hold():
        await asyncio.wait_for(d.ready.wait(), 30)
        assert await d.publisher.wait_connected(15)
        too_long = DemandResponseEvent("long-1", clock.now(), 8 * 60, "shed").as_json()
        acks: dict[str, dict] = {}
        async with aiomqtt.Client("127.0.0.1", mosquitto.port) as c:
            await c.subscribe("atsd/house-cap/dr/ack", qos=1)
            await c.publish("atsd/house-cap/dr/set", json.dumps(too_long), qos=1)
            await c.publish("atsd/house-cap/dr/set", json.dumps({"event_id": "bad-1", "kind": "melt"}), qos=1)
            async with asyncio.timeout(10):
                async for m in c.messages:
                    doc = json.loads(m.payload)
                    acks[doc["event_id"]] = doc
                    if len(acks) == 2:
                        break
    assert acks["long-1"]["status"] == "refused" and "capped at 4 h" in acks["long-1"]["reason"]
    assert acks["bad-1"]["status"] == "refused" and "malformed" in acks["bad-1"]["reason"]
    d.request_stop()
    assert await asyncio.wait_for(task, 30) == 0
