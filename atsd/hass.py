"""Home Assistant MQTT discovery: atsd's mode, temperatures, price, cost and savings as entities.

Retained ``config`` documents under ``<discovery_prefix>/<component>/<node_id>/<object_id>/config``
point Home Assistant at the house's own retained topics (``atsd/<device_id>/status``, ``plan``,
``alerts``); a ``select`` entity overrides the mode through ``atsd/<device_id>/mode/set`` (heard
only with ``[mqtt] accept_commands = true``). Availability is the house's last-will topic. This
module only builds the documents; the publisher sends them after every connect and whenever Home
Assistant announces ``online`` on ``<discovery_prefix>/status``.
"""

from __future__ import annotations

from typing import Any

from atsd import __version__, messages
from atsd.config import Config

MODE_OPTIONS = ["AUTO", "OFF", "ECO", "NORMAL", "BOOST"]

# object_id: (component, name, source leaf, value template, unit, device_class, state_class)
_SENSORS: dict[str, tuple[str, str, str, str, str | None, str | None, str | None]] = {
    "mode": ("sensor", "Mode", messages.STATUS, "{{ value_json.mode }}", None, None, None),
    "reason": ("sensor", "Reason", messages.STATUS, "{{ value_json.reason[:250] }}", None, None, None),
    "indoor": ("sensor", "Indoor temperature", messages.STATUS, "{{ value_json.indoor_c }}", "°C",
               "temperature", "measurement"),
    "outdoor": ("sensor", "Outdoor temperature", messages.STATUS, "{{ value_json.outdoor_c }}", "°C",
                "temperature", "measurement"),
    "price": ("sensor", "Electricity price", messages.STATUS, "{{ value_json.price_eur_per_kwh }}", "EUR/kWh",
              "monetary", None),
    "cost_today": ("sensor", "Cost today", messages.STATUS, "{{ value_json.today_cost_eur }}", "EUR",
                   "monetary", "total"),
    "savings_today": ("sensor", "Savings today (model estimate)", messages.STATUS,
                      "{{ value_json.today_savings_eur }}", "EUR", "monetary", "total"),
    "planned_cost": ("sensor", "Planned cost", messages.PLAN, "{{ value_json.estimated_cost }}", "EUR",
                     "monetary", None),
    "planned_savings": ("sensor", "Planned savings", messages.PLAN, "{{ value_json.estimated_savings }}", "EUR",
                        "monetary", None),
    "alerts": ("sensor", "Health alerts", messages.ALERTS, "{{ value_json.alerts | length }}", None, None,
               "measurement"),
}


def node_id(cfg: Config) -> str:
    return "atsd_" + "".join(c if c.isalnum() else "_" for c in cfg.device.device_id)


def device_block(cfg: Config) -> dict[str, Any]:
    return {"identifiers": [node_id(cfg)], "name": cfg.device.name, "manufacturer": "atsd",
            "model": "heat-pump optimizer", "sw_version": __version__}


def discovery(cfg: Config) -> dict[str, dict[str, Any]]:
    """Every discovery topic and its retained JSON document."""
    prefix, dev, node = cfg.mqtt.discovery_prefix, cfg.device.device_id, node_id(cfg)
    base = cfg.mqtt.topic_prefix
    avail = messages.topic(base, dev, messages.AVAILABILITY)
    out: dict[str, dict[str, Any]] = {}
    for obj, (component, name, leaf, template, unit, dclass, sclass) in _SENSORS.items():
        doc: dict[str, Any] = {"name": name, "unique_id": f"{node}_{obj}", "object_id": f"{node}_{obj}",
                               "state_topic": messages.topic(base, dev, leaf), "value_template": template,
                               "availability_topic": avail, "payload_available": messages.ONLINE,
                               "payload_not_available": messages.OFFLINE, "device": device_block(cfg)}
        if unit:
            doc["unit_of_measurement"] = unit
        if dclass:
            doc["device_class"] = dclass
        if sclass:
            doc["state_class"] = sclass
        out[f"{prefix}/{component}/{node}/{obj}/config"] = doc
    out[f"{prefix}/select/{node}/mode_override/config"] = {
        "name": "Mode override", "unique_id": f"{node}_mode_override", "object_id": f"{node}_mode_override",
        "command_topic": messages.topic(base, dev, messages.MODE_SET), "options": MODE_OPTIONS,
        "state_topic": messages.topic(base, dev, messages.STATUS),
        "value_template": "{{ 'AUTO' if value_json.by in ['plan', 'supervisor', 'failsafe', 'demand-response'] "
                          "else value_json.mode }}",
        "availability_topic": avail, "payload_available": messages.ONLINE,
        "payload_not_available": messages.OFFLINE, "device": device_block(cfg)}
    return out
