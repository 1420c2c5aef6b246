"""The fleet service's broker connection: subscribes to every house's documents and sends commands.

Shaped like :class:`atsd.devices.mqtt._Connection` (one task owns the connection and reconnects
with capped, jittered backoff). A clean session re-subscribes after every (re)connect, so the
broker replays the retained documents and the view is rebuilt from them. Commands (``dr/set``,
``mode/set``) are published with QoS 1 and never retained: a stale event must not reach a house
that reconnects hours later.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from datetime import datetime

import aiomqtt

from atsd import messages
from atsd.config import Config
from atsd.devices.device import utcnow
from atsd.devices.mqtt import _Connection, client_options
from atsd.fleet.view import LEAVES, FleetView

log = logging.getLogger(__name__)


class FleetLinkError(Exception):
    """The broker cannot take the commands now (not connected, or a publish failed)."""


def fleet_identifier(cfg: Config) -> str:
    return cfg.mqtt.client_id or f"atsd-fleet-{socket.gethostname()}"


class FleetLink(_Connection):
    kind = "fleet"

    def __init__(self, cfg: Config, view: FleetView, clock: Callable[[], datetime] = utcnow) -> None:
        options = client_options(cfg.mqtt, fleet_identifier(cfg))
        options["max_inflight_messages"] = 100  # paho's 20 serialises a dispatch to hundreds of houses
        super().__init__(options)
        self.prefix = cfg.mqtt.topic_prefix
        self.view = view
        self.clock = clock
        self.sent = 0

    async def _connected(self, client: aiomqtt.Client) -> None:
        await client.subscribe([(f"{self.prefix}/+/{leaf}", 1) for leaf in LEAVES])
        log.info("fleet: subscribed to %s/+/{%s} on %s.", self.prefix, ",".join(LEAVES), self.where)

    def _message(self, message: aiomqtt.Message) -> None:
        split = messages.split_topic(self.prefix, str(message.topic))
        if split is None:
            return
        payload = message.payload if isinstance(message.payload, bytes) else str(message.payload or "").encode()
        self.view.ingest(split[0], split[1], payload, self.clock(), retained=bool(message.retain))

    async def send(self, device_ids: list[str], leaf: str, payload: bytes, timeout_s: float = 10.0) -> int:
        """Publish one command to each house (QoS 1, not retained); returns how many the broker took."""
        client = self.client
        if client is None:
            raise FleetLinkError(f"not connected to the broker at {self.where}: {self.last_error or 'connecting'}")

        async def one(device_id: str) -> None:
            await client.publish(messages.topic(self.prefix, device_id, leaf), payload, qos=1, retain=False,
                                 timeout=timeout_s)

        results = await asyncio.gather(*(one(i) for i in device_ids), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        self.sent += len(results) - len(failed)
        if failed:
            log.warning("fleet: %d of %d %s publishes failed (first: %s).", len(failed), len(results), leaf, failed[0])
            if len(failed) == len(results):
                raise FleetLinkError(f"the broker at {self.where} took none of the {leaf} commands: {failed[0]}")
        return len(results) - len(failed)
