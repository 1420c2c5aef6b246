"""A light simulated house that speaks the MQTT contract, for tests and the scale benchmark.

It publishes what a daemon publishes (``availability`` with a last will, retained ``status`` with
``power_kw`` and ``tags``, optionally ``flexibility``), answers ``dr/set`` with a ``dr/ack`` and
draws less power during an accepted shed event. No planner, no thermal model: a few kB per house.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

import aiomqtt

from atsd import messages
from atsd.core.modes import Mode


def _now() -> datetime:
    return datetime.now(UTC)


class SimHouse:
    def __init__(self, device_id: str, host: str, port: int, *, tags: tuple[str, ...] = (),
                 username: str | None = None, password: str | None = None, power_kw: float = 2.0,
                 shed_power_kw: float = 0.2, flexibility: bool = True, refuse: str | None = None,
                 status_interval_s: float | None = None, prefix: str = "atsd", commands: bool = True) -> None:
        self.device_id = device_id
        self.prefix = prefix
        self.tags = tags
        self.power_kw = power_kw
        self.shed_power_kw = shed_power_kw
        self.with_flexibility = flexibility
        self.refuse = refuse
        self.status_interval_s = status_interval_s
        self.commands = commands
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.events: list[messages.DemandResponseEvent] = []
        self.published = 0
        self.client = aiomqtt.Client(host, port, identifier=f"sim-{device_id}", keepalive=60, timeout=10.0,
                                     username=username if username is not None else device_id, password=password,
                                     will=aiomqtt.Will(self.topic(messages.AVAILABILITY), messages.OFFLINE, qos=1,
                                                       retain=True))
        self._tasks: list[asyncio.Task[None]] = []

    def topic(self, leaf: str) -> str:
        return messages.topic(self.prefix, self.device_id, leaf)

    def power_now(self, now: datetime) -> float:
        for ev in self.events:
            if ev.kind == "shed" and ev.start <= now < ev.end:
                return self.shed_power_kw
        return self.power_kw

    def status_doc(self, now: datetime) -> dict[str, Any]:
        shedding = self.power_now(now) < self.power_kw
        return messages.status_message(
            device_id=self.device_id, ts=now, mode=Mode.OFF if shedding else Mode.NORMAL,
            reason="demand response" if shedding else "simulated", indoor_c=21.0, outdoor_c=-5.0, target_c=21.0,
            price_eur_per_kwh=0.12, today_cost_eur=1.5, today_savings_eur=0.25,
            health={"clock_ok": True, "plan": True, "failing": []}, tags=self.tags, power_kw=self.power_now(now))

    def flexibility_doc(self, now: datetime) -> dict[str, Any]:
        start = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
        slots = [messages.FlexSlot(start + timedelta(minutes=15 * k), self.power_kw - self.shed_power_kw,
                                   120.0 - 5 * k, 0.5) for k in range(24)]
        return messages.flexibility_message(self.device_id, now, 15, slots)

    async def publish(self, leaf: str, doc: dict[str, Any] | str, *, retain: bool = True) -> None:
        payload = doc if isinstance(doc, str) else messages.dumps(doc)
        await self.client.publish(self.topic(leaf), payload, qos=1, retain=retain)
        self.published += 1

    async def publish_status(self) -> None:
        await self.publish(messages.STATUS, self.status_doc(_now()))

    async def __aenter__(self) -> Self:
        await self.client.__aenter__()
        now = _now()
        if self.commands:
            await self.client.subscribe([(self.topic(messages.DR_SET), 1), (self.topic(messages.MODE_SET), 1)])
        await self.publish(messages.AVAILABILITY, messages.ONLINE)
        await self.publish(messages.STATUS, self.status_doc(now))
        if self.with_flexibility:
            await self.publish(messages.FLEXIBILITY, self.flexibility_doc(now))
        self._tasks.append(asyncio.create_task(self._listen(), name=f"sim-{self.device_id}-listen"))
        if self.status_interval_s:
            self._tasks.append(asyncio.create_task(self._status_loop(), name=f"sim-{self.device_id}-status"))
        return self

    async def _status_loop(self) -> None:
        assert self.status_interval_s is not None
        while True:
            await asyncio.sleep(self.status_interval_s)
            with contextlib.suppress(aiomqtt.MqttError):
                await self.publish_status()

    async def _listen(self) -> None:
        with contextlib.suppress(aiomqtt.MqttError):
            async for m in self.client.messages:
                split = messages.split_topic(self.prefix, str(m.topic))
                if split is None:
                    continue
                raw = m.payload if isinstance(m.payload, bytes) else str(m.payload).encode()
                try:
                    doc = json.loads(raw)
                except (ValueError, UnicodeDecodeError):
                    doc = None
                if not isinstance(doc, dict):
                    doc = {"raw": raw.decode("utf-8", "replace")}
                self.received.append((split[1], doc))
                if split[1] == messages.DR_SET:
                    await self._answer(raw)

    async def _answer(self, raw: bytes) -> None:
        now = _now()
        try:
            ev = messages.DemandResponseEvent.parse(raw)
        except messages.MessageError as exc:
            return await self.publish(messages.DR_ACK, messages.dr_ack_message(
                self.device_id, "?", "refused", f"bad event: {exc}", now), retain=False)
        if self.refuse:
            ack = messages.dr_ack_message(self.device_id, ev.event_id, "refused", self.refuse, now)
        else:
            end = min(ev.end, ev.start + timedelta(hours=2))
            status = "accepted" if end == ev.end else "partial"
            reason = "OFF for the event" if status == "accepted" else "shortened to the 120-minute OFF block limit"
            self.events.append(messages.DemandResponseEvent(ev.event_id, ev.start, (end - ev.start).total_seconds() / 60,
                                                            ev.kind))
            ack = messages.dr_ack_message(self.device_id, ev.event_id, status, reason, now,
                                          self.power_kw - self.shed_power_kw, (ev.start, end))
        await self.publish(messages.DR_ACK, ack, retain=False)
        with contextlib.suppress(aiomqtt.MqttError):
            await self.publish_status()  # a daemon's tick would report the new mode and power promptly

    async def _stop_tasks(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await t
        self._tasks.clear()

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        """A clean stop: say ``offline`` (retained), as the daemon's goodbye does, then disconnect."""
        await self._stop_tasks()
        with contextlib.suppress(aiomqtt.MqttError):
            await self.publish(messages.AVAILABILITY, messages.OFFLINE)
        with contextlib.suppress(aiomqtt.MqttError):
            await self.client.__aexit__(None, None, None)
