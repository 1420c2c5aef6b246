"""The daemon end to end: in-process on a virtual clock, and as a real process with signals and systemd."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import aiomqtt
import pytest

from atsd.clock import VirtualClock
from atsd.config import Config, DaemonConfig, WebConfig
from atsd.core.modes import Mode
from atsd.daemon import Daemon
from atsd.demo import DEMO_START, demo_config
from atsd.messages import DemandResponseEvent
from atsd.store import Store

from .conftest import free_port

ATSD = [sys.executable, "-m", "atsd"]


def fast_cfg(tmp_path: Path, **daemon: object) -> Config:
    base = Config(web=WebConfig(enabled=False), daemon=DaemonConfig(tick_s=60.0, flush_interval_s=1800.0))
    cfg = demo_config(base, tmp_path)
    return dataclasses.replace(cfg, daemon=dataclasses.replace(cfg.daemon, **daemon)) if daemon else cfg


async def run_for(d: Daemon, clock: VirtualClock, hours: float) -> int:
    start = clock.now()
    task = asyncio.create_task(d.run())
    with clock.hold():  # real waits (network timeouts) must not let simulated time run ahead
        await asyncio.wait_for(d.ready.wait(), 30)
    await clock.sleep_until(start + timedelta(hours=hours))
    d.request_stop()
    return await asyncio.wait_for(task, 30)


async def test_simulated_day_plans_switches_records_and_totals_match_history(tmp_path):
    cfg = fast_cfg(tmp_path)
    clock = VirtualClock(DEMO_START - timedelta(hours=6), auto_advance=True)  # 18:00 local
    d = Daemon(cfg, clock, demo=True)
    assert await run_for(d, clock, 18) == 0  # until noon the next day
    house = d.devices.links.objects[("simulated-house",)]
    assert d.stats.replans >= 72  # at least one plan per 15-minute slot
    assert house.switches >= 2  # it followed a plan that switches
    assert house.mode is Mode.NORMAL  # and left the heat pump in NORMAL on stop
    with Store.open(tmp_path) as st:
        decisions = st.decisions(DEMO_START, DEMO_START + timedelta(days=2))
        assert len(decisions) >= 12 * 60 - 5  # one per 60-s tick (at least since local midnight)
        assert {x.mode for x in decisions} - {"NORMAL"}  # the plan's modes, not only the fail-safe
        indoor = [r.value for r in st.readings(DEMO_START, DEMO_START + timedelta(days=2), ["indoor_c"])]
        assert min(indoor) >= cfg.comfort.min_c - cfg.supervisor.force_normal_below_k - 0.05
        totals = st.totals(DEMO_START - timedelta(hours=6), DEMO_START + timedelta(days=2))
        cost = totals.readings["cost_eur"].sum
        energy = totals.readings["energy_kwh"].sum
    # the day rolled over at local midnight: today's figures are those since then
    assert cost > 0 and energy > 0
    midnight = DEMO_START  # 00:00 in Helsinki
    with Store.open(tmp_path) as st:
        today = st.totals(midnight, midnight + timedelta(days=1)).readings["cost_eur"].sum
    assert d.today.cost_eur == pytest.approx(today, rel=1e-9, abs=1e-9)
    assert house.energy_kwh == pytest.approx(energy, rel=0.02)
    m = d.snapshot()["measured"]
    assert 0.5 < m["days"] < 1 and m["days_needed"] == 7
    assert m["measured_energy_kwh"] > 0 and m["predicted_energy_kwh"] > 0
    # plant = model: what was predicted is what was measured, give or take the supervisor and tick timing
    assert abs(m["measured_mean_temp_c"] - m["predicted_mean_temp_c"]) < 0.3


async def test_override_and_demand_response_pass_through_the_supervisor(tmp_path):
    cfg = fast_cfg(tmp_path)
    clock = VirtualClock(DEMO_START, auto_advance=True, autojump_threshold_s=0.0)
    d = Daemon(cfg, clock, demo=True)
    task = asyncio.create_task(d.run())
    await clock.sleep_until(DEMO_START + timedelta(hours=2))
    res = await d.override_mode(Mode.OFF, clock.now() + timedelta(hours=5), "test")
    assert res["status"] == "partial"  # OFF is capped at the 2-hour block
    await clock.sleep(600)
    assert d.last_verdict.mode is Mode.OFF
    await clock.sleep(3 * 3600)
    assert d.last_verdict.mode is not Mode.OFF  # the block ended
    ev = DemandResponseEvent("e1", clock.now() + timedelta(minutes=15), 60, "shed")
    before = [s.mode for s in d.current_plan.slots if ev.start <= s.start < ev.end]
    res = await d.handle_demand_response(ev)
    assert res["status"] in ("accepted", "partial"), res
    during = [s.mode for s in d.current_plan.slots if ev.start <= s.start < ev.end]
    assert during != before and any(m.rank <= Mode.ECO.rank for m in during)  # the plan changed in its window
    await clock.sleep_until(ev.end)
    assert d.decisions[0]["by"] in ("demand-response", "supervisor", "plan")
    too_long = DemandResponseEvent("e2", clock.now(), 6 * 60, "shed")
    assert (await d.handle_demand_response(too_long))["status"] == "refused"
    d.request_stop()
    assert await asyncio.wait_for(task, 30) == 0


async def test_second_daemon_refuses_to_start(tmp_path):
    cfg = fast_cfg(tmp_path)
    clock = VirtualClock(DEMO_START, auto_advance=True, autojump_threshold_s=0.0)
    first = Daemon(cfg, clock, demo=True)
    task = asyncio.create_task(first.run())
    await clock.sleep(120)
    second = Daemon(cfg, clock, demo=True)
    assert await second.run() == 75
    first.request_stop()
    assert await asyncio.wait_for(task, 30) == 0


class FailingForecasts:
    """Every source down: refreshes report nothing new, assembling falls back to estimates."""

    def __init__(self, cfg: Config) -> None:
        from atsd.sources.forecasts import ForecastService

        cfg = dataclasses.replace(cfg, sources=dataclasses.replace(
            cfg.sources, entsoe=dataclasses.replace(cfg.sources.entsoe, base_url="http://127.0.0.1:9/api"),
            porssisahko=dataclasses.replace(cfg.sources.porssisahko, base_url="http://127.0.0.1:9"),
            spothinta=dataclasses.replace(cfg.sources.spothinta, base_url="http://127.0.0.1:9"),
            elering=dataclasses.replace(cfg.sources.elering, base_url="http://127.0.0.1:9"),
            openmeteo=dataclasses.replace(cfg.sources.openmeteo, base_url="http://127.0.0.1:9/v1/forecast"),
            timeout_s=1.0))
        self.svc = ForecastService(cfg, cache_dir=cfg.daemon.state_dir / "cache")

    def __getattr__(self, name: str) -> object:
        return getattr(self.svc, name)

    async def __aenter__(self) -> FailingForecasts:
        await self.svc.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.svc.__aexit__(*exc)


async def test_all_sources_failing_keeps_the_control_loop_running(tmp_path):
    cfg = fast_cfg(tmp_path)
    clock = VirtualClock(DEMO_START, auto_advance=True, autojump_threshold_s=0.0)
    d = Daemon(cfg, clock, demo=True, forecasts=FailingForecasts(cfg))
    assert await run_for(d, clock, 3) == 0
    assert d.stats.ticks >= 170
    assert d.current_forecast is not None and d.current_forecast.provenance["spot_eur_per_mwh"].estimate


def _notify_socket(tmp_path: Path) -> tuple[socket.socket, str]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.2)
    return sock, path


def _wait_for(sock: socket.socket, needle: str, timeout_s: float, seen: list[str]) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            seen.append(sock.recv(4096).decode())
        except TimeoutError:
            continue
        if any(needle in m for m in seen):
            return True
    return False


def mqtt_config(tmp_path: Path, port: int, broker_port: int) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(f"""
[device]
device_id = "house-t"
[mqtt]
enabled = true
host = "127.0.0.1"
port = {broker_port}
[[sensors]]
name = "room"
kind = "simulated"
role = "indoor"
[actuator]
kind = "mqtt"
topic = "hp/mode/set"
[actuator.payloads]
OFF = "off"
ECO = "eco"
NORMAL = "normal"
BOOST = "boost"
[sources.entsoe]
base_url = "http://127.0.0.1:9/api"
[sources.porssisahko]
base_url = "http://127.0.0.1:9"
[sources.spothinta]
base_url = "http://127.0.0.1:9"
[sources.elering]
base_url = "http://127.0.0.1:9"
[sources.openmeteo]
base_url = "http://127.0.0.1:9/v1/forecast"
[web]
bind = "127.0.0.1"
port = {port}
[daemon]
state_dir = "{tmp_path / 'state'}"
tick_s = 5.0
require_clock_sync = false
""")
    return p


def test_ready_watchdog_then_sigterm_leaves_normal_on_the_broker(tmp_path, mosquitto):
    sock, path = _notify_socket(tmp_path)
    port = free_port()
    conf = mqtt_config(tmp_path, port, mosquitto.port)
    received: list[str] = []

    async def watch(ready: asyncio.Event) -> None:
        async with aiomqtt.Client("127.0.0.1", mosquitto.port) as c:
            await c.subscribe("hp/mode/set", qos=1)
            await c.subscribe("atsd/house-t/#", qos=1)
            ready.set()
            async for m in c.messages:
                received.append(f"{m.topic}={m.payload.decode()}")

    async def scenario() -> int:
        ready = asyncio.Event()
        watcher = asyncio.create_task(watch(ready))
        await ready.wait()
        env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="10000000", PYTHONUNBUFFERED="1")
        t0 = time.monotonic()
        with (tmp_path / "daemon.log").open("wb") as log:
            proc = subprocess.Popen([*ATSD, "run", "--config", str(conf)], env=env,  # noqa: ASYNC220
                                    stdout=subprocess.DEVNULL, stderr=log)
        seen: list[str] = []
        try:
            assert await asyncio.to_thread(_wait_for, sock, "READY=1", 30, seen), seen
            startup_s = time.monotonic() - t0
            assert await asyncio.to_thread(_wait_for, sock, "WATCHDOG=1", 30, seen), seen
            proc.send_signal(signal.SIGTERM)
            t1 = time.monotonic()
            rc = await asyncio.to_thread(proc.wait, 10)
            stop_s = time.monotonic() - t1
        finally:
            if proc.poll() is None:
                proc.kill()
        await asyncio.sleep(0.3)
        watcher.cancel()
        assert stop_s < 5, stop_s
        assert any("STOPPING=1" in m for m in seen) or await asyncio.to_thread(_wait_for, sock, "STOPPING=1", 2, seen)
        print(f"start-up to READY: {startup_s:.2f} s, stop: {stop_s:.2f} s")
        return rc

    rc = asyncio.run(scenario())
    assert rc == 0
    commands = [r.split("=", 1)[1] for r in received if r.startswith("hp/mode/set=")]
    assert commands and commands[-1] == "normal"
    assert "atsd/house-t/availability=offline" in received
    assert any(r.startswith("atsd/house-t/status=") for r in received)


def test_kill_9_then_restart_keeps_history_and_supervisor_state(tmp_path):
    state = tmp_path / "state"
    port = free_port()
    args = [*ATSD, "run", "--demo", "--speed", "120", "--state-dir", str(state), "--port", str(port)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (state / "supervisor.json").exists():
            time.sleep(0.2)
        time.sleep(3)  # a few accelerated minutes: at least one flush of the history
    finally:
        proc.kill()  # kill -9: no goodbye, no flush
        proc.wait(10)
    saved = json.loads((state / "supervisor.json").read_text())
    db = sqlite3.connect(state / "history.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(4)
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err[-2000:]
    assert "Restored the supervisor's state" in err
    restored = json.loads((state / "supervisor.json").read_text())
    # the mode held across the restart keeps its start time (the dwell clock did not reset)
    if restored["mode"] == saved["mode"] and saved["since"]:
        assert restored["since"] == saved["since"]


async def test_status_publisher_reconnects_after_the_broker_restarts(tmp_path, mosquitto):
    cfg = fast_cfg(tmp_path)
    cfg = dataclasses.replace(cfg, mqtt=dataclasses.replace(cfg.mqtt, enabled=True, port=mosquitto.port),
                              device=dataclasses.replace(cfg.device, device_id="house-r"))
    clock = VirtualClock(DEMO_START, auto_advance=True, autojump_threshold_s=0.0)
    d = Daemon(cfg, clock, demo=True)
    task = asyncio.create_task(d.run())
    with clock.hold():  # real waits: simulated time stands still meanwhile
        await asyncio.wait_for(d.ready.wait(), 30)
        assert await d.publisher.wait_connected(15), d.publisher.last_error
        connects = d.publisher.connects
        await asyncio.to_thread(mosquitto.restart)
        for _ in range(300):
            if d.publisher.connects > connects and d.publisher.connected.is_set():
                break
            await asyncio.sleep(0.05)
        assert d.publisher.connects > connects, d.publisher.last_error
    await clock.sleep(600)
    async with aiomqtt.Client("127.0.0.1", mosquitto.port) as c:
        await c.subscribe("atsd/house-r/status", qos=1)
        msg = await asyncio.wait_for(anext(aiter(c.messages)), 5)
        assert json.loads(msg.payload)["device_id"] == "house-r"
    d.request_stop()
    assert await asyncio.wait_for(task, 30) == 0


async def test_real_clock_runs_its_wall_clock_jobs_on_apscheduler(tmp_path):
    from atsd.clock import RealClock

    cfg = fast_cfg(tmp_path, calibrate_weekly=True)
    d = Daemon(cfg, RealClock(), demo=True)
    task = asyncio.create_task(d.run())
    await asyncio.wait_for(d.ready.wait(), 30)
    jobs = {j.id: j.next_run_time for j in d.scheduler.get_jobs()}
    d.request_stop()
    assert await asyncio.wait_for(task, 30) == 0
    assert set(jobs) == {"prices", "weather", "grid", "flush", "retention", "calibration"}
    local = {k: v.astimezone(cfg.device.tz) for k, v in jobs.items()}
    assert (local["retention"].hour, local["retention"].minute) == (3, 30)
    assert local["calibration"].weekday() == 6


async def test_writes_through_the_daemons_api_reach_the_supervisor(tmp_path):
    import aiohttp

    from .conftest import free_port

    cfg = fast_cfg(tmp_path)
    port = free_port()
    cfg = dataclasses.replace(cfg, web=dataclasses.replace(cfg.web, enabled=True, bind="127.0.0.1", port=port,
                                                           token="s3cret"))
    clock = VirtualClock(DEMO_START, auto_advance=True)
    d = Daemon(cfg, clock, demo=True)
    task = asyncio.create_task(d.run())
    auth = {"Authorization": "Bearer s3cret"}
    with clock.hold():
        await asyncio.wait_for(d.ready.wait(), 30)
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as http:
            async with http.post("/api/override", json={"mode": "BOOST", "minutes": 60}, headers=auth) as r:
                override = (r.status, await r.json())
            async with http.post("/api/demand-response", json={"duration_min": 60, "kind": "shed",
                                                              "start": "2026-01-19T23:00:00Z"}, headers=auth) as r:
                dr = (r.status, await r.json())
            async with http.post("/api/comfort-risk", json={"schedule": [
                    {"start": "2026-01-19T22:00:00Z", "mode": "OFF"}], "end": "2026-01-20T00:00:00Z"}) as r:
                risk = (r.status, await r.json())
    await clock.sleep(120)
    mode_after = d.last_verdict.mode
    d.request_stop()
    assert await asyncio.wait_for(task, 30) == 0
    assert override[0] == 200 and override[1]["status"] == "accepted", override
    assert mode_after is Mode.BOOST  # the override passed the supervisor and reached the plant
    assert dr[0] in (200, 409) and dr[1]["status"] in ("accepted", "partial", "refused"), dr
    assert risk[0] == 200 and "comfort_score" in risk[1], risk


async def test_the_daemon_serves_its_page_api_and_metrics(tmp_path):
    import aiohttp

    from .conftest import free_port

    cfg = fast_cfg(tmp_path)
    port = free_port()
    cfg = dataclasses.replace(cfg, web=dataclasses.replace(cfg.web, enabled=True, bind="127.0.0.1", port=port))
    clock = VirtualClock(DEMO_START, auto_advance=True)
    d = Daemon(cfg, clock, demo=True)
    task = asyncio.create_task(d.run())
    with clock.hold():
        await asyncio.wait_for(d.ready.wait(), 30)
        async with aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{port}"
            async with http.get(f"{base}/api/status") as r:
                status = await r.json()
            async with http.get(f"{base}/metrics") as r:
                metrics = await r.text()
            async with http.get(f"{base}/api/plan") as r:
                plan = await r.json()
            async with http.get(f"{base}/") as r:
                page = await r.text()
            async with http.get(f"{base}/api/history?from=2026-01-19T00:00:00Z&to=2026-01-21T00:00:00Z") as r:
                history = await r.json()
    d.request_stop()
    assert await asyncio.wait_for(task, 30) == 0
    assert status["mode"] in ("OFF", "ECO", "NORMAL", "BOOST") and status["device"]["device_id"] == "atsd-house"
    assert 'atsd_ticks_total{device_id="atsd-house"}' in metrics
    assert len(plan["schedule"]) == 192
    assert 'id="chart"' in page
    assert history["rows"] and all("indoor_c" in r for r in history["rows"])  # measured so far
