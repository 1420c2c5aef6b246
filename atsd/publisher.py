"""The daemon's MQTT voice: retained status under ``atsd/<device_id>/...`` and, when allowed, commands.

One reconnecting connection (the shape of :mod:`atsd.devices.mqtt`): its last will marks the house
``offline`` on ``availability``; after every (re)connect it says ``online`` and re-publishes the last
retained documents, so a fleet service or Home Assistant that starts later sees the present state.
Demand-response and mode commands are subscribed only with ``[mqtt] accept_commands = true``; each
is handed to a callback the daemon gives, which answers through the supervisor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiomqtt

from atsd import messages
from atsd.config import Config
from atsd.devices.mqtt import _Connection, base_identifier, client_options

log = logging.getLogger(__name__)

CommandHandler = Callable[[str, bytes], Awaitable[None]]


class StatusPublisher(_Connection):
    kind = "status"

    def __init__(self, cfg: Config, on_command: CommandHandler | None = None) -> None:
        self.cfg = cfg
        self.prefix = cfg.mqtt.topic_prefix
        self.device_id = cfg.device.device_id
        avail = messages.topic(self.prefix, self.device_id, messages.AVAILABILITY)
        super().__init__(client_options(cfg.mqtt, f"{base_identifier(cfg)}-status"),
                         will=aiomqtt.Will(avail, messages.OFFLINE, qos=1, retain=True))
        self.on_command = on_command if cfg.mqtt.accept_commands else None
        self.retained: dict[str, bytes] = {}
        self.published = 0
        self.publish_failures = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def topic(self, leaf: str) -> str:
        return messages.topic(self.prefix, self.device_id, leaf)

    async def _connected(self, client: aiomqtt.Client) -> None:
        await client.publish(self.topic(messages.AVAILABILITY), messages.ONLINE, qos=1, retain=True)
        for leaf, payload in list(self.retained.items()):  # publish() may add while we await
            await client.publish(self.topic(leaf), payload, qos=1, retain=True)
        if self.on_command is not None:
            await client.subscribe(self.topic(messages.DR_SET), qos=1)
            await client.subscribe(self.topic(messages.MODE_SET), qos=1)
        if self.cfg.mqtt.ha_discovery:
            await self._announce(client)
            await client.subscribe(f"{self.cfg.mqtt.discovery_prefix}/status", qos=1)

    async def _announce(self, client: aiomqtt.Client) -> None:
        from atsd.hass import discovery

        for t, doc in discovery(self.cfg).items():
            await client.publish(t, messages.dumps(doc), qos=1, retain=True)

    def _message(self, message: aiomqtt.Message) -> None:
        if self.cfg.mqtt.ha_discovery and str(message.topic) == f"{self.cfg.mqtt.discovery_prefix}/status":
            if message.payload in (b"online", "online") and self.client is not None:
                self._spawn(self._announce(self.client), "atsd-ha-discovery")
            return
        if self.on_command is None:
            return
        split = messages.split_topic(self.prefix, str(message.topic))
        if split is None or split[0] != self.device_id:
            return
        payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
        self._spawn(self._handle(split[1], payload), f"atsd-command-{split[1]}")

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, leaf: str, payload: bytes) -> None:
        assert self.on_command is not None
        try:
            await self.on_command(leaf, payload)
        except Exception:  # a bad command must never take the connection down
            log.exception("MQTT command on %s failed.", leaf)

    def publish(self, leaf: str, doc: dict[str, Any] | bytes, *, retain: bool = True) -> None:
        """Queue a document; retained ones are remembered and re-sent after a reconnect."""
        payload = doc if isinstance(doc, bytes) else messages.dumps(doc)
        if retain:
            self.retained[leaf] = payload
        client = self.client
        if client is None:
            return
        task = asyncio.create_task(self._send(client, leaf, payload, retain), name=f"atsd-publish-{leaf}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, client: aiomqtt.Client, leaf: str, payload: bytes, retain: bool) -> None:
        try:
            await client.publish(self.topic(leaf), payload, qos=1, retain=retain)
            self.published += 1
        except aiomqtt.MqttError as exc:
            self.publish_failures += 1
            log.debug("MQTT publish of %s failed: %s (re-sent after reconnect when retained)", leaf, exc)

    async def goodbye(self) -> None:
        """Say ``offline`` on a clean stop (the last will covers a crash)."""
        client = self.client
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                await asyncio.wait_for(client.publish(self.topic(messages.AVAILABILITY), messages.OFFLINE,
                                                      qos=1, retain=True), 2.0)
