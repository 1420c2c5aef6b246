"""MQTT sensors and the MQTT actuator, through aiomqtt (2.x).

Shape (after aiomqtt's own client): each object is an async context manager; entering starts one
named task that owns the connection and reconnects with capped, jittered backoff; leaving cancels
it. All sensors share one subscriber connection. The actuator has its own connection because its
last will is the NORMAL command: if the Pi dies without saying goodbye, the broker sends NORMAL.

Commands are never retained (a stale retained BOOST would be replayed to a rebooting relay). A
Shelly relay gets ``toggle_after`` with every non-NORMAL command and the command is re-armed at half
that period, so the relay falls back by itself when atsd stops; Tasmota gets ``PulseTime`` for the
same reason. Re-arming repeats the current state and is not a switch.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import aiomqtt

from atsd.config import Config, MqttConfig, SensorConfig, read_secret
from atsd.core.modes import Mode
from atsd.devices.device import UNITS, Backoff, DeviceError, Reading, check_supported, utcnow
from atsd.devices.presets import MQTT_PRESETS, SENSOR_PRESETS, SensorPreset, mqtt_payloads, relay_mode

if TYPE_CHECKING:
    from atsd.devices.registry import Links

log = logging.getLogger(__name__)


def client_options(m: MqttConfig, identifier: str) -> dict[str, Any]:
    """Keyword arguments for ``aiomqtt.Client`` from the ``[mqtt]`` section (secrets resolved here)."""
    opts: dict[str, Any] = {"hostname": m.host, "port": m.port, "identifier": identifier,
                            "keepalive": m.keepalive_s, "timeout": 10.0}
    if m.username:
        opts["username"] = m.username
        opts["password"] = read_secret(m.password, m.password_file, "ATSD_MQTT_PASSWORD")
    if m.tls:
        opts["tls_params"] = aiomqtt.TLSParameters(
            ca_certs=str(m.ca_file) if m.ca_file else None,
            certfile=str(m.cert_file) if m.cert_file else None,
            keyfile=str(m.key_file) if m.key_file else None)
    return opts


def base_identifier(cfg: Config) -> str:
    return cfg.mqtt.client_id or cfg.device.device_id


class _Connection:
    """A reconnecting aiomqtt connection run by one task; subclasses say what to do while connected."""

    kind = "MQTT"

    def __init__(self, options: dict[str, Any], *, will: aiomqtt.Will | None = None,
                 backoff: Backoff | None = None) -> None:
        self.options = options
        self.will = will
        self.backoff = backoff or Backoff(1.0, 30.0)
        self.client: aiomqtt.Client | None = None
        self.connected = asyncio.Event()
        self.connects = 0
        self.failures = 0
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def where(self) -> str:
        return f"{self.options['hostname']}:{self.options['port']}"

    async def __aenter__(self) -> Self:
        if self._task is not None:
            raise RuntimeError(f"{type(self).__name__} is not reentrant")
        self._task = asyncio.create_task(self._run(), name=f"atsd-mqtt-{self.options['identifier']}")
        self._task.add_done_callback(self._died)
        return self

    def _died(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.last_error = f"connection task crashed: {task.exception()!r}"
            log.error("MQTT %s %s; commands will fail until atsd restarts.", self.kind, self.last_error,
                      exc_info=task.exception())

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def wait_connected(self, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(self.connected.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def _run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client(**self.options, will=self.will) as client:
                    self.client = client
                    self.connects += 1
                    if self.failures:
                        log.info("MQTT %s reconnected to %s after %d failed attempts.", self.kind, self.where,
                                 self.failures)
                    self.failures = 0
                    self.backoff.reset()
                    await self._connected(client)  # subscriptions and re-applied state first
                    self.connected.set()
                    async for message in client.messages:
                        self._message(message)
            except (aiomqtt.MqttError, OSError) as exc:  # OSError: TLS files, sockets before aiomqtt wraps
                self.last_error = str(exc)
                if self.failures == 0:
                    log.warning("MQTT %s lost the broker at %s: %s; reconnecting with backoff.", self.kind,
                                self.where, exc)
                self.failures += 1
            finally:
                self.client = None
                self.connected.clear()
                await self._disconnected()
            await self.backoff.sleep()

    async def _connected(self, client: aiomqtt.Client) -> None:
        """Called after every (re)connect, before messages flow."""

    async def _disconnected(self) -> None:
        """Called after every disconnect (and on stop)."""

    def _message(self, message: aiomqtt.Message) -> None:
        """Called for every incoming message."""


# -- sensors -------------------------------------------------------------------------------------


class MqttSubscriber(_Connection):
    """One connection for all MQTT sensors: subscribes to their topics, keeps the latest payload."""

    kind = "sensors"

    def __init__(self, options: dict[str, Any], clock: Callable[[], datetime] = utcnow,
                 backoff: Backoff | None = None) -> None:
        super().__init__(options, backoff=backoff)
        self.clock = clock
        self.latest: dict[str, tuple[bytes, datetime]] = {}
        self._events: dict[str, asyncio.Event] = {}

    def add(self, topic: str) -> None:
        self._events.setdefault(topic, asyncio.Event())

    async def _connected(self, client: aiomqtt.Client) -> None:
        for topic in self._events:
            await client.subscribe(topic, qos=1)

    def _message(self, message: aiomqtt.Message) -> None:
        payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
        for topic, event in self._events.items():
            if message.topic.matches(topic):
                self.latest[topic] = (payload, self.clock())
                event.set()

    async def wait_first(self, topic: str, timeout_s: float) -> bool:
        event = self._events.get(topic)
        if event is None:
            return False
        try:
            await asyncio.wait_for(event.wait(), timeout_s)
        except TimeoutError:
            return False
        return True


def field_value(doc: Any, path: str) -> Any:
    """Follow a dotted path (``a.b.0.c``; list indexes as numbers) through parsed JSON."""
    cur = doc
    for part in path.split("."):
        if isinstance(cur, list):
            cur = cur[int(part)]
        elif isinstance(cur, dict):
            cur = cur[part]
        else:
            raise KeyError(part)
    return cur


def decode_ruuvi(hex_data: str) -> dict[str, float]:
    """Ruuvi data format 5 from a gateway's raw advertisement hex (after ``FF 99 04 05``)."""
    raw = bytes.fromhex(hex_data)
    marker = raw.find(b"\xff\x99\x04\x05")
    if marker < 0:
        raise ValueError("not a Ruuvi data format 5 advertisement (no FF 99 04 05 marker)")
    d = raw[marker + 4:]
    if len(d) < 7:
        raise ValueError("Ruuvi advertisement too short")
    t_raw = int.from_bytes(d[0:2], "big", signed=True)
    h_raw = int.from_bytes(d[2:4], "big")
    p_raw = int.from_bytes(d[4:6], "big")
    if t_raw == -32768:
        raise ValueError("Ruuvi tag reports temperature as not available")
    return {"temperature": t_raw * 0.005, "humidity": h_raw * 0.0025, "pressure": (p_raw + 50000) / 100.0}


def extract(payload: bytes, preset: SensorPreset, field: str | None) -> float:
    """The number in a payload, per the preset's decoder and the (configured or preset) field."""
    text = payload.decode("utf-8", errors="replace").strip()
    if preset.decoder == "plain":
        return float(text) * preset.scale
    doc = json.loads(text)
    if preset.decoder == "ruuvi":
        return decode_ruuvi(str(doc["data"]))[field or preset.fields[0]]
    fields = (field,) if field else preset.fields
    for f in fields:
        try:
            return float(field_value(doc, f)) * preset.scale
        except (KeyError, IndexError, ValueError, TypeError):
            continue
    raise KeyError(f"none of {', '.join(fields)} in the payload")


class MqttSensor:
    """A value from the latest message on a topic (its age is the time since that message)."""

    def __init__(self, name: str, role: str, topic: str, subscriber: MqttSubscriber, preset: SensorPreset,
                 field: str | None, scale: float = 1.0, first_wait_s: float = 3.0) -> None:
        self.name = name
        self.role = role
        self.topic = topic
        self.subscriber = subscriber
        self.preset = preset
        self.field = field
        self.scale = scale
        self.first_wait_s = first_wait_s
        subscriber.add(topic)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        return None

    async def read(self) -> Reading:
        got = self.subscriber.latest.get(self.topic)
        if got is None and await self.subscriber.wait_first(self.topic, self.first_wait_s):
            got = self.subscriber.latest.get(self.topic)
        if got is None:
            state = "connected" if self.subscriber.connected.is_set() else (
                f"not connected: {self.subscriber.last_error or 'connecting'}")
            raise DeviceError(f"MQTT sensor {self.name}: no message on {self.topic!r} yet (broker "
                              f"{self.subscriber.where} {state})")
        payload, at = got
        try:
            value = extract(payload, self.preset, self.field) * self.scale
        except (ValueError, KeyError, UnicodeDecodeError) as exc:
            raise DeviceError(f"MQTT sensor {self.name}: cannot read a number from {self.topic!r} "
                              f"({exc}); check field/preset") from exc
        if not math.isfinite(value):
            raise DeviceError(f"MQTT sensor {self.name}: {self.topic!r} carried {value}")
        return Reading(value, UNITS[self.role], at, self.name)


def build_sensor(sc: SensorConfig, links: Links) -> MqttSensor:
    if sc.topic is None:
        raise DeviceError(f"sensor {sc.name}: kind = 'mqtt' needs topic")
    preset = SENSOR_PRESETS.get(sc.preset or "", SensorPreset(()))
    if sc.preset is not None and sc.preset not in SENSOR_PRESETS:
        raise DeviceError(f"sensor {sc.name}: unknown preset {sc.preset!r} (known: {', '.join(SENSOR_PRESETS)})")
    cfg = links.cfg
    sub = links.shared(("mqtt-sensors",), lambda: MqttSubscriber(
        client_options(cfg.mqtt, base_identifier(cfg) + "-sensors"), links.clock))
    return MqttSensor(sc.name, sc.role, sc.topic, sub, preset, sc.field, sc.scale)


# -- actuator ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    topic: str
    payload: str


class MqttActuator(_Connection):
    """Publishes one command per mode (QoS 1, never retained) and re-applies it after a reconnect.

    ``commands(mode, rearm)`` returns the messages for a mode; ``rearm_s`` (None: never) repeats the
    current non-NORMAL state so a relay's own fallback timer never runs out while atsd is alive.
    """

    kind = "actuator"

    def __init__(self, name: str, options: dict[str, Any], supported: tuple[Mode, ...],
                 commands: Callable[[Mode], list[Command]], *, qos: int = 1, write_timeout_s: float = 2.0,
                 rearm_s: float | None = None, on_connect: list[Command] | None = None,
                 backoff: Backoff | None = None) -> None:
        normal = commands(Mode.NORMAL)
        will = aiomqtt.Will(normal[0].topic, normal[0].payload, qos=qos, retain=False)
        super().__init__(options, will=will, backoff=backoff)
        self.name = name
        self.supported = supported
        self.commands = commands
        self.qos = qos
        self.write_timeout_s = write_timeout_s
        self.rearm_s = rearm_s
        self.on_connect = on_connect or []
        self.desired: Mode | None = None
        self._current: Mode | None = None
        self.errors = 0
        self.rearms = 0
        self._rearm_task: asyncio.Task[None] | None = None

    @property
    def current(self) -> Mode | None:
        return self._current

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        await self.wait_connected(self.write_timeout_s)
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def _send(self, client: aiomqtt.Client, mode: Mode) -> None:
        for c in self.commands(mode):
            await client.publish(c.topic, c.payload, qos=self.qos, retain=False, timeout=self.write_timeout_s)

    async def apply(self, mode: Mode) -> None:
        check_supported(self.name, mode, self.supported)
        self.desired = mode
        try:
            async with asyncio.timeout(self.write_timeout_s):
                await self.connected.wait()
                client = self.client
                if client is None:
                    raise aiomqtt.MqttError("connection dropped")
                await self._send(client, mode)
        except (aiomqtt.MqttError, TimeoutError) as exc:
            self.errors += 1
            self._current = None
            raise DeviceError(f"MQTT actuator {self.name}: could not publish {mode} via {self.where} "
                              f"({exc or 'timeout'}); it will be re-sent on reconnect") from exc
        self._current = mode
        self._restart_rearm()

    async def _connected(self, client: aiomqtt.Client) -> None:
        for c in self.on_connect:
            await client.publish(c.topic, c.payload, qos=self.qos, retain=False, timeout=self.write_timeout_s)
        if self.desired is not None:
            await self._send(client, self.desired)
            self._current = self.desired
            log.info("MQTT actuator %s re-applied %s after connecting.", self.name, self.desired)
        self._restart_rearm()

    async def _disconnected(self) -> None:
        self._cancel_rearm()

    def _restart_rearm(self) -> None:
        self._cancel_rearm()
        if self.rearm_s is not None and self.desired not in (None, Mode.NORMAL):
            self._rearm_task = asyncio.create_task(self._rearm_loop(), name=f"atsd-rearm-{self.name}")

    def _cancel_rearm(self) -> None:
        if self._rearm_task is not None:
            self._rearm_task.cancel()
            self._rearm_task = None

    async def _rearm_loop(self) -> None:
        assert self.rearm_s is not None
        while True:
            await asyncio.sleep(self.rearm_s)
            client, mode = self.client, self.desired
            if client is None or mode is None:
                return
            try:
                await self._send(client, mode)
                self.rearms += 1
            except aiomqtt.MqttError as exc:
                log.warning("MQTT actuator %s could not re-arm %s: %s", self.name, mode, exc)
                return

    async def close(self) -> None:
        """Publish NORMAL (best effort), then disconnect. Never raises."""
        if self._task is None:
            return
        self._cancel_rearm()
        try:
            await self.apply(Mode.NORMAL)
        except DeviceError as exc:
            log.warning("MQTT actuator %s: NORMAL not confirmed at exit (%s); the last will and the "
                        "device's own timer are the fallback.", self.name, exc)
        await self.stop()


def _shelly(topic: str, src: str, on_mode: Mode, toggle_after_s: int) -> Callable[[Mode], list[Command]]:
    ids = itertools.count(1)

    def commands(mode: Mode) -> list[Command]:
        params: dict[str, Any] = {"id": 0, "on": mode is on_mode}
        if mode is on_mode:
            params["toggle_after"] = toggle_after_s
        body = {"id": next(ids), "src": src, "method": "Switch.Set", "params": params}
        return [Command(f"{topic}/rpc", json.dumps(body, separators=(",", ":")))]

    return commands


def _tasmota(topic: str, on_mode: Mode) -> Callable[[Mode], list[Command]]:
    def commands(mode: Mode) -> list[Command]:
        return [Command(f"cmnd/{topic}/POWER", "ON" if mode is on_mode else "OFF")]

    return commands


def _template(topic: str, payloads: dict[str, str]) -> Callable[[Mode], list[Command]]:
    def commands(mode: Mode) -> list[Command]:
        return [Command(topic, payloads[mode.value])]

    return commands


def build_actuator(cfg: Config, links: Links) -> MqttActuator:
    from atsd.devices.presets import actuator_modes

    a = cfg.actuator
    preset = MQTT_PRESETS.get(a.preset or "generic")
    if preset is None:
        raise DeviceError(f"[actuator] unknown MQTT preset {a.preset!r} (known: {', '.join(MQTT_PRESETS)})")
    topic = a.topic or preset.default_topic
    if topic is None:
        raise DeviceError(f"[actuator] preset {a.preset!r} needs topic (the device's MQTT topic or prefix)")
    supported = actuator_modes(cfg)
    rearm_s: float | None = None
    on_connect: list[Command] = []
    if preset.style == "shelly":
        commands = _shelly(topic, cfg.mqtt.topic_prefix, relay_mode(a), a.toggle_after_s)
        rearm_s = a.toggle_after_s / 2
    elif preset.style == "tasmota":
        commands = _tasmota(topic, relay_mode(a))
        # PulseTime 112..64900 means (value - 100) seconds: the relay switches off by itself.
        on_connect = [Command(f"cmnd/{topic}/PulseTime", str(100 + min(a.toggle_after_s, 64800)))]
        rearm_s = a.toggle_after_s / 2
    else:
        payloads = mqtt_payloads(a)
        if "NORMAL" not in payloads:
            raise DeviceError("[actuator] needs a NORMAL payload in [actuator.payloads] (the fail-safe)")
        commands = _template(topic, payloads)
    options = client_options(cfg.mqtt, base_identifier(cfg) + "-actuator")
    return MqttActuator(f"mqtt:{topic}", options, supported, commands, qos=a.qos,
                        write_timeout_s=a.write_timeout_s, rearm_s=rearm_s, on_connect=on_connect)
