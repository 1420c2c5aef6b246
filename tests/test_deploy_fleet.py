"""Tests for deploy/ of the fleet: its unit passes systemd-analyze verify; the Mosquitto examples hang together."""

from __future__ import annotations

import json
from pathlib import Path

from .test_deploy import INSTALLED_ATSD, REPO, unit_settings, verify_unit

UNIT = REPO / "deploy" / "atsd-fleet.service"
MOSQ = REPO / "deploy" / "mosquitto"


def test_fleet_unit_passes_systemd_analyze_verify(tmp_path: Path):
    verify_unit(UNIT, tmp_path, exec_paths=1)


def test_fleet_unit_declares_the_service_contract():
    s = unit_settings(UNIT)
    assert s["Type"] == ["notify"]
    assert s["Restart"] == ["always"]
    assert s["RestartPreventExitStatus"] == ["78"]
    assert s["ExecStart"] == [f"{INSTALLED_ATSD} fleet --config /etc/atsd/fleet.toml"]
    assert s["DynamicUser"] == ["yes"]
    assert {v.split(":", 1)[0] for v in s["LoadCredential"]} == {"fleet_token", "mqtt_password"}
    assert s["ProtectSystem"] == ["strict"] and s["NoNewPrivileges"] == ["yes"]
    assert "ExecStopPost" not in s  # the fleet drives no heat pump: nothing to make safe


def test_acl_lets_houses_write_only_their_own_documents_and_read_only_their_commands():
    lines = [ln.split() for ln in (MOSQ / "acl").read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    patterns = {(a, t) for kw, a, t in (ln for ln in lines if ln[0] == "pattern")}
    assert patterns == {("write", f"atsd/%u/{leaf}") for leaf in ("availability", "status", "plan", "flexibility",
                                                                    "alerts", "dr/ack")} | \
        {("read", "atsd/%u/dr/set"), ("read", "atsd/%u/mode/set")}
    fleet = lines[lines.index(["user", "fleet"]) + 1:][:3]
    assert fleet == [["topic", "read", "atsd/+/#"], ["topic", "write", "atsd/+/dr/set"],
                     ["topic", "write", "atsd/+/mode/set"]]


def test_dynamic_security_example_gives_each_house_only_its_own_topics():
    doc = json.loads((MOSQ / "dynamic-security.json").read_text())
    roles = {r["rolename"]: r for r in doc["roles"]}
    for client in doc["clients"]:
        if not client["username"].startswith("house-"):
            continue
        (role,) = client["roles"]
        acls = roles[role["rolename"]]["acls"]
        assert acls and all(a["topic"].startswith(f"atsd/{client['username']}/") for a in acls)
        sends = {a["topic"].split("/", 2)[2] for a in acls if a["acltype"] == "publishClientSend"}
        assert not {"dr/set", "mode/set"} & sends
    assert doc["defaultACLAccess"]["publishClientSend"] is False


def test_mosquitto_example_requires_credentials_and_uses_the_acl():
    conf = (MOSQ / "mosquitto.conf").read_text().splitlines()
    assert "allow_anonymous false" in conf
    assert "acl_file /etc/mosquitto/acl" in conf
    assert any(ln.startswith("listener 8883") for ln in conf) and any(ln.startswith("cafile ") for ln in conf)
