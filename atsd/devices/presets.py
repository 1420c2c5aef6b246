"""Named mappings for common heat pumps, relays and sensors, and the modes each actuator can express.

Pure data and pure functions (no I/O, no hardware libraries): the registry, ``check-config`` and the
planner's wiring all read the same tables. A preset only fills in what the user did not set; the
generic ``register``/``values`` and ``topic``/``payloads`` mapping always works and always wins.

Which presets were tested against real hardware: none yet. All were tested against simulators only
(an in-process Modbus server and a Mosquitto broker); registers and topics come from the vendors'
documentation as summarised in ``docs/hardware.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from atsd.config import ActuatorConfig, Config
from atsd.core.modes import ALL_MODES, Mode


@dataclass(frozen=True)
class ModbusPreset:
    """A heat pump's smart-grid register. ``enable`` writes run once after each connect."""

    register: int
    values: Mapping[str, int]
    boost4_value: int | None = None  # value for SG-Ready state 4 (forced on) when boost_state = 4
    enable: tuple[tuple[int, int], ...] = ()
    note: str = ""


MODBUS_PRESETS: dict[str, ModbusPreset] = {
    # NIBE S-series, firmware >= 4.7.5: holding 3032 = 1 enables SG Ready via Modbus; holding 6008 is
    # the requested SG mode (0 block, 1 normal, 2 cheap / recommended on, 3 forced).
    "nibe-s": ModbusPreset(6008, {"OFF": 0, "NORMAL": 1, "BOOST": 2}, boost4_value=3, enable=((3032, 1),),
                           note="NIBE S-series SG Ready via Modbus (holding 3032 = 1, 6008 = mode)"),
    # Daikin Altherma 3 with Home Hub EKRHH: holding 55 (0 free running, 1 forced off,
    # 2 recommended on, 3 forced on).
    "daikin-hh": ModbusPreset(55, {"NORMAL": 0, "OFF": 1, "BOOST": 2}, boost4_value=3,
                              note="Daikin Home Hub EKRHH smart-grid register 55"),
}


@dataclass(frozen=True)
class MqttPreset:
    """How a relay or heat pump is driven over MQTT.

    ``style``: ``template`` (one topic, one payload per mode), ``shelly`` (RPC ``Switch.Set`` with
    ``toggle_after``) or ``tasmota`` (``POWER`` with ``PulseTime``). ``default_topic`` is used when the
    config has no topic. ``self_reverting``: the device falls back to NORMAL by itself when atsd
    stops talking, so an OFF block is bounded even if the Pi dies.
    """

    style: str
    default_topic: str | None = None
    payloads: Mapping[str, str] = field(default_factory=dict)
    boost4_payload: str | None = None
    self_reverting: bool = False
    note: str = ""


MQTT_PRESETS: dict[str, MqttPreset] = {
    "shelly": MqttPreset("shelly", self_reverting=True,
                         note="Shelly Gen2/Gen3 relay via RPC Switch.Set with toggle_after"),
    "tasmota": MqttPreset("tasmota", self_reverting=True, note="Tasmota relay via cmnd/<topic>/POWER with PulseTime"),
    # HeishaMon emulates Panasonic's optional PCB: SetSmartGridMode 0 normal, 1 heat pump off,
    # 2 capacity 1 (recommended on), 3 capacity 2 (forced on).
    "heishamon": MqttPreset("template", default_topic="panasonic_heat_pump/commands/SetSmartGridMode",
                            payloads={"NORMAL": "0", "OFF": "1", "BOOST": "2"}, boost4_payload="3",
                            note="Panasonic Aquarea through HeishaMon (optional-PCB smart-grid emulation)"),
    # The generic template's last will publishes the NORMAL payload when the Pi disappears: the broker
    # itself reverts the heat pump, so an OFF block stays bounded.
    "generic": MqttPreset("template", self_reverting=True, note="one topic, one payload per mode"),
}

# A single relay (Shelly, Tasmota) expresses NORMAL (released) and one other mode (energised).
SINGLE_RELAY_DEFAULT = Mode.OFF


def relay_mode(a: ActuatorConfig) -> Mode:
    """The mode a single self-reverting relay means when energised: the one non-NORMAL in ``modes``."""
    if a.modes:
        others = [Mode(m) for m in a.modes if m != "NORMAL"]
        if others:
            return others[0]
    return SINGLE_RELAY_DEFAULT


def mqtt_payloads(a: ActuatorConfig) -> dict[str, str]:
    """The template payloads: the preset's, overridden by ``[actuator.payloads]``."""
    p = MQTT_PRESETS.get(a.preset or "generic", MQTT_PRESETS["generic"])
    out = dict(p.payloads)
    if a.boost_state == 4 and p.boost4_payload is not None:
        out["BOOST"] = p.boost4_payload
    out.update(a.payloads)
    return out


def modbus_values(a: ActuatorConfig) -> dict[str, int]:
    p = MODBUS_PRESETS.get(a.preset or "")
    out: dict[str, int] = {}
    if p is not None:
        out.update(p.values)
        if a.boost_state == 4 and p.boost4_value is not None:
            out["BOOST"] = p.boost4_value
    out.update(a.values)
    return out


def reverts_by_itself(a: ActuatorConfig) -> bool:
    """Whether the device returns to NORMAL without atsd (a timer in the device)."""
    if a.kind == "simulated":
        return True
    if a.kind == "mqtt":
        p = MQTT_PRESETS.get(a.preset or "generic")
        return p is not None and p.self_reverting
    return False


def expressible_modes(a: ActuatorConfig) -> set[Mode]:
    """What the hardware can express at all, before the OFF safety rule."""
    if a.kind == "sgready_gpio":
        return {Mode.OFF, Mode.NORMAL, Mode.BOOST}
    if a.kind == "mqtt":
        style = MQTT_PRESETS.get(a.preset or "generic", MQTT_PRESETS["generic"]).style
        if style in ("shelly", "tasmota"):
            return {Mode.NORMAL, relay_mode(a)}
        return {Mode(k) for k in mqtt_payloads(a)}
    if a.kind == "modbus":
        return {Mode(k) for k in modbus_values(a)}
    return set(ALL_MODES)


def actuator_modes(cfg: Config) -> tuple[Mode, ...]:
    """The modes the configured actuator offers: expressible, limited by ``modes``, and OFF only
    when the device reverts by itself or the user set ``allow_unbounded_block = true``.
    NORMAL is always included."""
    a = cfg.actuator
    modes = expressible_modes(a)
    if a.modes is not None:
        modes &= {Mode(m) for m in a.modes}
    if Mode.OFF in modes and not (a.allow_unbounded_block or reverts_by_itself(a) or a.kind == "none"):
        modes.discard(Mode.OFF)
    modes.add(Mode.NORMAL)
    return tuple(m for m in ALL_MODES if m in modes)


def preset_problems(a: ActuatorConfig) -> list[str]:
    """Preset names the actuator kind does not know (reported by the registry and check-config)."""
    if a.preset is None:
        return []
    known: list[str] | None = {"modbus": list(MODBUS_PRESETS), "mqtt": list(MQTT_PRESETS)}.get(a.kind)
    if known is None:
        return [f"[actuator] preset {a.preset!r} has no meaning for kind = {a.kind!r}"]
    if a.preset not in known:
        return [f"[actuator] preset {a.preset!r} is unknown for kind = {a.kind!r} (known: {', '.join(known)})"]
    return []


# -- sensors -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SensorPreset:
    """How to pull a number out of an MQTT payload. ``fields`` are tried in order; ``scale`` converts
    the device's unit to atsd's (°C, W, kWh)."""

    fields: tuple[str, ...]
    scale: float = 1.0
    decoder: str = "json"  # json | ruuvi | plain


SENSOR_PRESETS: dict[str, SensorPreset] = {
    # Ruuvi Gateway: {"data": "0201061BFF9904 05..."} raw BLE advertisement, data format 5.
    "ruuvi": SensorPreset(("temperature",), decoder="ruuvi"),
    # Zigbee2MQTT: zigbee2mqtt/<friendly name> {"temperature": 21.3, "humidity": ...}
    "zigbee2mqtt": SensorPreset(("temperature",)),
    # Shelly H&T Gen2/Gen3: <prefix>/status/temperature:0 {"id":0,"tC":21.3,"tF":70.3}, or the
    # NotifyStatus event on <prefix>/events/rpc.
    "shelly_ht": SensorPreset(("tC", "params.temperature:0.tC")),
    # Shelly Plus PM / Pro PM: <prefix>/status/switch:0 {"apower": W, "aenergy": {"total": Wh}}
    "shelly_pm_power": SensorPreset(("apower",)),
    "shelly_pm_energy": SensorPreset(("aenergy.total",), scale=0.001),
    # Shelly Pro EM / EM Gen3: <prefix>/status/em1:0 {"act_power": W}; <prefix>/status/em1data:0
    # {"total_act_energy": Wh}
    "shelly_em_power": SensorPreset(("act_power",)),
    "shelly_em_energy": SensorPreset(("total_act_energy",), scale=0.001),
    # A bare number as the whole payload (HeishaMon panasonic_heat_pump/main/<X>, Tasmota fields).
    "plain": SensorPreset((), decoder="plain"),
}
