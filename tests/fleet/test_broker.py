"""The fleet against a real Mosquitto running atsd's ACL file: isolation, dispatch, availability, restart, tokens."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import socket
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt
import pytest

from atsd import messages
from atsd.config import Config, ConfigError, FleetConfig, MqttConfig
from atsd.fleet.service import FleetService
from atsd.fleet.simhouse import SimHouse
from tests.conftest import free_port
from tests.fleet.conftest import REPO, AclBroker

TOKEN = "fleet-test-token"


def fleet_config(b: AclBroker, offline_after_s: float = 300.0) -> Config:
    mqtt = MqttConfig(enabled=True, host=b.host, port=b.port, username="fleet", password=b.password("fleet"),
                      client_id="fleet-test", keepalive_s=5)
    return dataclasses.replace(Config(), mqtt=mqtt, fleet=FleetConfig(port=0, token=TOKEN,
                                                                      offline_after_s=offline_after_s))


def house(b: AclBroker, n: int, **kw: Any) -> SimHouse:
    return SimHouse(f"house-{n}", b.host, b.port, password=b.password(f"house-{n}"), **kw)


async def until(cond: Callable[[], bool], timeout_s: float = 5.0, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def fleet_service(b: AclBroker, **kw: Any) -> AsyncIterator[tuple[FleetService, Api]]:
    async with FleetService(fleet_config(b, **kw)) as svc, aiohttp.ClientSession() as http:
        assert await svc.link.wait_connected(5.0)
        yield svc, Api(http, f"http://127.0.0.1:{svc.bound_port}")


@dataclasses.dataclass
class Api:
    http: aiohttp.ClientSession
    base: str
    token: str | None = TOKEN

    async def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        tok = token if token is not None else self.token
        headers = {"Authorization": f"Bearer {tok}"} if tok else {}
        async with self.http.request(method, self.base + path, json=body, headers=headers) as r:
            text = await r.text()
            return r.status, json.loads(text) if r.content_type == "application/json" else text

    async def get(self, path: str) -> Any:
        status, doc = await self.call("GET", path)
        assert status == 200, doc
        return doc


@contextlib.asynccontextmanager
async def observer(b: AclBroker, topic: str) -> AsyncIterator[list[tuple[str, bytes]]]:
    """Everything the fleet user can read on ``topic``, as (topic, payload)."""
    seen: list[tuple[str, bytes]] = []
    async with aiomqtt.Client(b.host, b.port, username="fleet", password=b.password("fleet"),
                              identifier="observer-test") as c:
        await c.subscribe(topic, qos=1)

        async def listen() -> None:
            async for m in c.messages:
                seen.append((str(m.topic), m.payload if isinstance(m.payload, bytes) else str(m.payload).encode()))

        task = asyncio.create_task(listen())
        try:
            yield seen
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def settle(b: AclBroker) -> None:
    """A round trip through the broker: everything published before it has been routed."""
    async with aiomqtt.Client(b.host, b.port, username="house-9", password=b.password("house-9"),
                              identifier="settle") as c:
        await c.publish("atsd/house-9/alerts", messages.dumps({"v": 1, "alerts": []}), qos=1)


async def test_a_house_cannot_publish_under_another_house_id_nor_read_its_commands(acl_broker: AclBroker):
    b = acl_broker
    async with observer(b, "atsd/+/#") as seen, \
            aiomqtt.Client(b.host, b.port, username="house-1", password=b.password("house-1"),
                           identifier="rogue") as rogue:
        rogue_got: list[str] = []
        await rogue.subscribe("atsd/house-2/dr/set", qos=1)  # someone else's commands
        await rogue.subscribe("atsd/+/status", qos=1)  # others' documents

        async def listen() -> None:
            async for m in rogue.messages:
                rogue_got.append(str(m.topic))

        task = asyncio.create_task(listen())
        forged = messages.dumps({"v": 1, "device_id": "house-2", "mode": "OFF"})
        for t in ("atsd/house-2/status", "atsd/house-2/availability", "atsd/house-2/dr/ack",
                  "atsd/house-1/dr/set", "atsd/house-2/dr/set", "atsd/house-1/mode/set", "elsewhere/x"):
            await rogue.publish(t, forged, qos=1)
        await rogue.publish("atsd/house-1/status", messages.dumps({"v": 1, "device_id": "house-1"}), qos=1)
        async with aiomqtt.Client(b.host, b.port, username="fleet", password=b.password("fleet"),
                                  identifier="fleet-cmd") as fleet:
            await fleet.publish("atsd/house-2/dr/set", b"{}", qos=1)
            await fleet.publish("atsd/house-2/status", b"{}", qos=1)  # the fleet writes commands only
        await settle(b)
        await until(lambda: any(t == "atsd/house-1/status" for t, _ in seen), what="house-1's own status")
        await asyncio.sleep(0.1)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    topics = {t for t, _ in seen}
    assert "atsd/house-1/status" in topics  # its own document goes through
    assert not {"atsd/house-2/status", "atsd/house-2/availability", "atsd/house-2/dr/ack",
                "atsd/house-1/dr/set", "atsd/house-1/mode/set"} & topics
    assert [t for t, p in seen if t == "atsd/house-2/dr/set"] == ["atsd/house-2/dr/set"]  # only the fleet's
    assert rogue_got == []  # neither house-2's command nor anyone's status reached house-1


async def test_dispatched_event_reaches_exactly_the_group_and_acks_and_shed_are_summarised(acl_broker: AclBroker):
    b = acl_broker
    async with observer(b, "atsd/+/dr/set") as commands, \
            house(b, 1, tags=("north",), status_interval_s=0.1) as h1, \
            house(b, 2, tags=("north", "big"), status_interval_s=0.1, flexibility=False) as h2, \
            house(b, 3, tags=("south",), status_interval_s=0.1) as h3, \
            fleet_service(b) as (svc, api):
        await until(lambda: {"house-1", "house-2", "house-3"} <= set(svc.view.houses), what="three houses")
        await asyncio.sleep(0.3)  # a few status reports before the event: the "before" power
        assert (await api.get("/api/groups"))["tags"] == {"big": 1, "north": 2, "south": 1}
        flex = await api.get("/api/flexibility?tag=north&hours=3")
        assert flex["now"]["houses_flexibility"] == 1 and flex["now"]["houses_estimated"] == 1
        assert flex["now"]["from_flexibility_kw"] == pytest.approx(1.8) and flex["now"]["estimated_kw"] == pytest.approx(2.0)
        assert len(flex["hours"]) == 3

        status, doc = await api.call("POST", "/api/dispatch", {"tag": "north", "kind": "shed", "duration_min": 60,
                                                               "event_id": "ev-north"})
        assert status == 202, doc
        assert doc["targets"] == 2 and doc["published"] == 2
        await until(lambda: svc.view.dispatch_doc(svc.view.dispatches["ev-north"], svc.clock())["complete"],
                    what="both acks")
        await asyncio.sleep(0.4)  # status reports during the event
        doc = await api.get("/api/dispatch/ev-north")
        await settle(b)
    assert [d for d, _ in h1.received] == ["dr/set"] and [d for d, _ in h2.received] == ["dr/set"]
    assert h3.received == []
    assert sorted(t for t, _ in commands) == ["atsd/house-1/dr/set", "atsd/house-2/dr/set"]
    assert doc["summary"] == {"accepted": 1 + 1, "partial": 0, "refused": 0, "missing": 0, "pending": 0}
    assert doc["last_ack_after_s"] is not None and doc["last_ack_after_s"] < 5
    assert doc["shed"]["houses_measured"] == 2
    assert doc["shed"]["measured_kw"] == pytest.approx(2 * 1.8, abs=0.4)  # 2.0 kW before, 0.2 kW during, each
    assert doc["shed"]["promised_kw"] == pytest.approx(3.6)


async def test_offline_house_shows_unavailable_and_its_missing_ack_is_reported(acl_broker: AclBroker):
    b = acl_broker
    async with house(b, 5, tags=("east",)) as gone:
        pass  # a clean stop: availability offline (retained), as the daemon's goodbye does
    assert gone.published >= 3
    async with house(b, 4, tags=("east",)) as h4, house(b, 6, tags=("east",), refuse="demand response is disabled"), \
            fleet_service(b) as (svc, api):
        await until(lambda: {"house-4", "house-5", "house-6"} <= set(svc.view.houses), what="east houses")
        await until(lambda: svc.view.houses["house-5"].availability == "offline", what="house-5 offline")
        listing = {h["device_id"]: h for h in (await api.get("/api/houses?tag=east"))["houses"]}
        assert listing["house-4"]["available"] is True and listing["house-4"]["mode"] == "NORMAL"
        assert listing["house-5"]["available"] is False
        assert "offline" in listing["house-5"]["unavailable_reason"]
        status, doc = await api.call("POST", "/api/dispatch", {"tag": "east", "duration_min": 30, "event_id": "ev-east",
                                                               "ack_timeout_s": 1.0})
        assert status == 202, doc
        await until(lambda: len(svc.view.dispatches["ev-east"].acks) == 2, what="two acks")
        await asyncio.sleep(1.0)  # past the ack timeout
        doc = await api.get("/api/dispatch/ev-east")
        flex = await api.get("/api/flexibility?tag=east")
    rows = {r["device_id"]: r for r in doc["houses"]}
    assert doc["summary"] == {"accepted": 1, "partial": 0, "refused": 1, "missing": 1, "pending": 0}
    assert rows["house-5"]["status"] == "missing" and rows["house-5"]["available_at_dispatch"] is False
    assert rows["house-5"]["reason"].startswith("unavailable at dispatch: availability is offline")
    assert rows["house-6"]["status"] == "refused" and rows["house-6"]["reason"] == "demand response is disabled"
    assert doc["reasons"]["refused"] == {"demand response is disabled": 1}
    assert list(doc["reasons"]["missing"]) == [rows["house-5"]["reason"]]
    assert [d for d, _ in h4.received] == ["dr/set"]
    assert [u["device_id"] for u in flex["unavailable"]] == ["house-5"]


async def test_a_house_that_stops_reporting_becomes_unavailable_after_offline_after_s(acl_broker: AclBroker):
    b = acl_broker
    async with house(b, 7, tags=("west",)) as h7, fleet_service(b, offline_after_s=1.0) as (svc, api):
        await until(lambda: "house-7" in svc.view.houses, what="house-7")
        await h7.publish_status()  # live, not replayed: last seen now
        await until(lambda: svc.view.availability(svc.view.houses["house-7"], svc.clock())[0], what="fresh status")
        assert (await api.get("/api/houses/house-7"))["available"] is True
        await asyncio.sleep(1.2)  # availability still says online, but nothing was heard
        doc = await api.get("/api/houses/house-7")
        assert doc["available"] is False and doc["availability"] == "online"
        assert "last seen" in doc["unavailable_reason"]


async def test_fleet_service_restarts_and_rebuilds_its_view_from_retained_messages(acl_broker: AclBroker):
    b = acl_broker
    async with house(b, 8, tags=("rebuild",), power_kw=3.0), house(b, 9, tags=("rebuild",), flexibility=False):
        async with fleet_service(b) as (svc, api):
            await until(lambda: {"house-8", "house-9"} <= set(svc.view.houses), what="both houses")
            first = await api.get("/api/houses?tag=rebuild")
        # The service is gone; a new process starts with an empty view.
        async with fleet_service(b) as (svc2, api2):
            await until(lambda: {"house-8", "house-9"} <= set(svc2.view.houses)
                        and svc2.view.houses["house-8"].flexibility is not None, what="the rebuilt view")
            again = await api2.get("/api/houses?tag=rebuild")
            flex = await api2.get("/api/flexibility?ids=house-8,house-9")

    def essentials(doc: dict[str, Any]) -> list[tuple[Any, ...]]:
        return [(h["device_id"], h["available"], h["mode"], h["indoor_c"], h["power_kw"], h["today_savings_eur"],
                 tuple(h["tags"]), h["flexibility"]) for h in doc["houses"]]

    assert again["count"] == 2
    assert essentials(again) == essentials(first)
    assert all(h["available"] for h in again["houses"])
    assert flex["now"]["from_flexibility_kw"] == pytest.approx(2.8) and flex["now"]["estimated_kw"] == pytest.approx(2.0)


async def test_api_needs_the_token_and_the_page_does_not(acl_broker: AclBroker):
    async with fleet_service(acl_broker) as (_svc, api):
        for path in ("/api/houses", "/api/groups", "/api/flexibility", "/api/dispatch"):
            status, doc = await api.call("GET", path, token="")
            assert status == 401 and doc["error"].startswith("missing token"), path
            status, doc = await api.call("GET", path, token="wrong")
            assert status == 401 and doc["error"] == "wrong token", path
            status, _doc = await api.call("GET", path)
            assert status == 200, path
        status, doc = await api.call("POST", "/api/dispatch", {"tag": "x", "duration_min": 10}, token="wrong")
        assert status == 401
        status, page = await api.call("GET", "/", token="")
        assert status == 200 and "atsd fleet" in page
        assert "http://" not in page and "https://" not in page  # no CDN: works on a site without internet
        for asset in ("/static/fleet.js", "/static/fleet.css"):
            status, text = await api.call("GET", asset, token="")
            assert status == 200 and text, asset
        status, _ = await api.call("GET", "/static/../app.py", token="")
        assert status == 404
        status, doc = await api.call("GET", "/healthz", token="")
        assert status == 200 and doc["broker_connected"] is True


async def test_dispatch_refuses_bad_requests_with_json_errors(acl_broker: AclBroker):
    async with house(acl_broker, 1, tags=("north",)), fleet_service(acl_broker) as (svc, api):
        await until(lambda: "house-1" in svc.view.houses, what="house-1")
        cases: list[tuple[Any, int, str]] = [
            ({"duration_min": 10}, 400, "say which houses"),
            ({"tag": "north", "ids": ["a"], "duration_min": 10}, 400, "not both"),
            ({"tag": "north", "duration_min": 0}, 400, "duration_min"),
            ({"tag": "north", "duration_min": 10, "kind": "heat"}, 400, "kind must be"),
            ({"tag": "nobody", "duration_min": 10}, 404, "has no houses"),
            ({"tag": "north", "duration_min": 10, "start": "2020-01-01T00:00:00Z"}, 400, "already past"),
            ([1, 2], 400, "JSON object"),
        ]
        for body, code, msg in cases:
            status, doc = await api.call("POST", "/api/dispatch", body)
            assert status == code and msg in doc["error"], (body, doc)
        ok, _ = await api.call("POST", "/api/dispatch", {"tag": "north", "duration_min": 10, "event_id": "dup"})
        again, doc = await api.call("POST", "/api/dispatch", {"tag": "north", "duration_min": 10, "event_id": "dup"})
        assert (ok, again) == (202, 409)


async def test_mode_override_reaches_the_group(acl_broker: AclBroker):
    async with house(acl_broker, 2, tags=("m",)) as h2, house(acl_broker, 3, tags=("other",)) as h3, \
            fleet_service(acl_broker) as (svc, api):
        await until(lambda: {"house-2", "house-3"} <= set(svc.view.houses), what="houses")
        status, doc = await api.call("POST", "/api/mode", {"tag": "m", "mode": "ECO", "reason": "test"})
        assert status == 202 and doc["targets"] == ["house-2"], doc
        await until(lambda: bool(h2.received), what="the mode command")
    leaf, cmd = h2.received[0]
    assert leaf == "mode/set" and messages.ModeCommand.parse(cmd).mode.value == "ECO"
    assert h3.received == []


def test_service_refuses_to_start_without_a_token(acl_broker: AclBroker):
    cfg = dataclasses.replace(fleet_config(acl_broker), fleet=FleetConfig(port=0))
    with pytest.raises(ConfigError, match=r"\[fleet\] needs token"):
        FleetService(cfg)



async def test_a_real_demo_daemon_works_under_the_acl_and_answers_a_dispatch(acl_broker: AclBroker, tmp_path: Path):
    """``atsd run --demo`` as house-10 on the ACL broker: the fleet sees its status and collects its ack."""
    b = acl_broker
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[device]\ndevice_id = "house-10"\ntags = ["real"]\n\n'
                   f'[mqtt]\nenabled = true\nhost = "{b.host}"\nport = {b.port}\nusername = "house-10"\n'
                   f'password = "{b.password("house-10")}"\naccept_commands = true\n')
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "atsd", "run", "--demo", "--speed", "60", "--config", str(cfg),
        "--state-dir", str(tmp_path / "state"), "--port", str(free_port()), env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        async with fleet_service(b) as (svc, api):
            await until(lambda: "house-10" in svc.view.houses and svc.view.houses["house-10"].status is not None
                        and svc.view.houses["house-10"].availability == "online", 30.0, "the daemon's status")
            doc = await api.get("/api/houses/house-10")
            assert doc["available"] and doc["tags"] == ["real"] and doc["mode"] in ("OFF", "ECO", "NORMAL", "BOOST")
            status, disp = await api.call("POST", "/api/dispatch", {"tag": "real", "duration_min": 30,
                                                                    "event_id": "ev-real"})
            assert status == 202, disp
            await until(lambda: bool(svc.view.dispatches["ev-real"].acks), 10.0, "the daemon's ack")
            disp = await api.get("/api/dispatch/ev-real")
        assert disp["summary"]["missing"] == 0 and disp["summary"]["pending"] == 0
        assert disp["houses"][0]["reason"]
    finally:
        if proc.returncode is None:
            proc.terminate()
        try:
            _out, err = await asyncio.wait_for(proc.communicate(), 15)
        except TimeoutError:
            proc.kill()
            _out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert b"Traceback" not in err, err.decode()[-2000:]


async def test_a_crashed_house_is_marked_offline_by_its_last_will(acl_broker: AclBroker):
    b = acl_broker
    async with fleet_service(b) as (svc, api):
        h = house(b, 3, tags=("crash",))
        await h.__aenter__()
        await until(lambda: svc.view.houses.get("house-3") is not None
                    and svc.view.houses["house-3"].availability == "online", what="house-3 online")
        sock = h.client._client.socket()  # the connection dies without a DISCONNECT: the broker sends the will
        sock.shutdown(socket.SHUT_RDWR)
        await until(lambda: svc.view.houses["house-3"].availability == "offline", what="the last will")
        doc = await api.get("/api/houses/house-3")
        with contextlib.suppress(Exception):
            await h._stop_tasks()
            await h.client.__aexit__(None, None, None)
    assert doc["available"] is False and doc["availability"] == "offline"
