"""Benchmark: one real Mosquitto, many simulated houses, the fleet service as its own process.

For each fleet size (default 10, 100, 1000 houses, added to the same broker in steps) it reports the
broker's message rate in steady state (PUBLISH in counted at the simulated houses, out and all
packets from the broker's ``$SYS``), the fleet service's
resident memory and CPU, and the time from a demand-response dispatch to the house's last
acknowledgement (the fleet's own ``last_ack_after_s``, and the API client's wall time until the
dispatch is complete). Houses are light in-process clients speaking the contract
(:class:`atsd.fleet.simhouse.SimHouse`, a status every ``--status-interval`` seconds; a real
daemon publishes one per control tick, 30-60 s); ``--daemons N`` adds real ``atsd run --demo``
daemons. Loopback only; it stops by itself (``--max-s``) and kills what it started.

    PYTHONPATH=. python tests/benchmarks/bench_fleet.py [--sizes 10,100,1000] [--daemons 2]
        [--status-interval 5] [--events 3] [--window-s 10] [--max-s 600]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt

from atsd.fleet.simhouse import SimHouse
from tests.conftest import free_port, wait_for_port

REPO = Path(__file__).resolve().parents[2]
TOKEN = "bench-token"
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
CONNECT_BATCH = 50


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class SysCounters:
    """The broker's cumulative message counters, from ``$SYS`` (published every second here)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.values: dict[str, int] = {}
        self.updated = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        async with aiomqtt.Client("127.0.0.1", self.port, identifier="bench-sys") as c:
            await c.subscribe([("$SYS/broker/messages/+", 0), ("$SYS/broker/publish/messages/+", 0)])
            async for m in c.messages:
                with contextlib.suppress(ValueError):
                    key = str(m.topic).removeprefix("$SYS/broker/").replace("messages/", "").replace("/", "_")
                    self.values[key] = int(bytes(m.payload).decode())  # type: ignore[arg-type]
                    self.updated.set()

    async def snapshot(self) -> tuple[float, dict[str, int]]:
        """``publish_sent``: PUBLISH packets out; ``received``/``sent``: packets of every type."""
        self.updated.clear()
        await asyncio.wait_for(self.updated.wait(), 5)
        await asyncio.sleep(0.05)  # the counters of the same second
        return time.monotonic(), dict(self.values)


def start_daemon(i: int, port: int, state: Path, log: Path) -> subprocess.Popen[bytes]:
    d = state / f"demo-{i}"
    d.mkdir(parents=True, exist_ok=True)
    cfg = d / "config.toml"
    cfg.write_text(f'[device]\ndevice_id = "demo-{i}"\ntags = ["all", "demo"]\n\n'
                   f'[mqtt]\nenabled = true\nhost = "127.0.0.1"\nport = {port}\nusername = "demo-{i}"\n'
                   f'password = "unused"\naccept_commands = true\n')
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "atsd", "run", "--demo", "--speed", "60", "--config", str(cfg),
                                 "--state-dir", str(d / "state"), "--port", str(free_port())],
                                stdout=out, stderr=out, env=env)


def start_broker(conf: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=out, stderr=out)


def start_fleet(tmp: Path, port: int, web_port: int, log: Path) -> subprocess.Popen[bytes]:
    (tmp / "token").write_text(TOKEN)
    fcfg = tmp / "fleet.toml"
    fcfg.write_text(f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\nclient_id = "bench-fleet"\n\n'
                    f'[fleet]\nport = {web_port}\ntoken_file = "{tmp / "token"}"\noffline_after_s = 300\n')
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "atsd", "fleet", "--config", str(fcfg), "--log-level", "WARNING"],
                                stdout=subprocess.DEVNULL, stderr=out, env={**os.environ, "PYTHONPATH": str(REPO)})


async def wait_houses(http: aiohttp.ClientSession, base: str, n: int, timeout_s: float) -> float:
    t0 = time.monotonic()
    while True:
        async with http.get(f"{base}/healthz") as r:
            doc = await r.json()
        if doc["houses"] >= n:
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout_s:
            raise TimeoutError(f"the fleet sees {doc['houses']} houses, not {n}, after {timeout_s:.0f} s")
        await asyncio.sleep(0.2)


async def dispatch(http: aiohttp.ClientSession, base: str, event_id: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    t0 = time.monotonic()
    async with http.post(f"{base}/api/dispatch", headers=headers,
                         json={"tag": "all", "kind": "shed", "duration_min": 30, "event_id": event_id,
                               "ack_timeout_s": 60}) as r:
        doc = await r.json()
        assert r.status == 202, doc
    posted = time.monotonic() - t0
    while True:
        async with http.get(f"{base}/api/dispatch/{event_id}", headers=headers) as r:
            doc = await r.json()
        if doc["complete"]:
            break
        await asyncio.sleep(0.02)
    return {"wall_s": time.monotonic() - t0, "post_s": posted, "last_ack_s": doc["last_ack_after_s"],
            "summary": doc["summary"]}


async def bench(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    sizes = sorted(int(s) for s in args.sizes.split(","))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = sizes[-1] * 2 + 256
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    port = free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nsys_interval 1\n"
                    "max_queued_messages 10000\nlog_dest stderr\nlog_type error\n")
    procs: list[subprocess.Popen[bytes]] = []
    houses: list[SimHouse] = []
    results = []
    log = tmp / "processes.log"
    try:
        procs.append(start_broker(conf, log))
        wait_for_port("127.0.0.1", port)
        broker_pid = procs[0].pid
        web_port = free_port()
        fleet = start_fleet(tmp, port, web_port, log)
        procs.append(fleet)
        wait_for_port("127.0.0.1", web_port, 20)
        for i in range(args.daemons):
            procs.append(start_daemon(i, port, tmp, log))
        base = f"http://127.0.0.1:{web_port}"
        sys_counters = SysCounters(port)
        sys_task = asyncio.create_task(sys_counters.run())
        async with aiohttp.ClientSession() as http:
            if args.daemons:
                await wait_houses(http, base, args.daemons, 120)
            for n in sizes:
                t0 = time.monotonic()
                new = [SimHouse(f"sim-{i:05d}", "127.0.0.1", port, tags=("all", f"g{i % 10}"),
                                power_kw=1.0 + (i % 5) * 0.5, flexibility=i % 2 == 0,
                                status_interval_s=args.status_interval) for i in range(len(houses), n)]
                for k in range(0, len(new), CONNECT_BATCH):
                    await asyncio.gather(*(h.__aenter__() for h in new[k:k + CONNECT_BATCH]))
                houses.extend(new)
                connect_s = time.monotonic() - t0
                await wait_houses(http, base, n + args.daemons, 120)
                await asyncio.sleep(args.status_interval)  # every house on its own status rhythm
                ta, va = await sys_counters.snapshot()
                ca, pa, ba = cpu_s(fleet.pid), sum(h.published for h in houses), cpu_s(broker_pid)
                await asyncio.sleep(args.window_s)
                tb, vb = await sys_counters.snapshot()
                cb, pb, bb = cpu_s(fleet.pid), sum(h.published for h in houses), cpu_s(broker_pid)

                def rate(key: str, va: dict[str, int] = va, vb: dict[str, int] = vb, dt: float = tb - ta) -> float:
                    return (vb.get(key, 0) - va.get(key, 0)) / dt

                # Mosquitto 2.0's publish/messages/received stays 0 here: count the houses' publishes instead.
                steady = {"in_per_s": (pb - pa) / (tb - ta), "out_per_s": rate("publish_sent"),
                          "packets_per_s": rate("received") + rate("sent"),
                          "fleet_cpu_pct": 100 * (cb - ca) / (tb - ta), "broker_cpu_pct": 100 * (bb - ba) / (tb - ta)}
                runs = [await dispatch(http, base, f"bench-{n}-{e}") for e in range(args.events)]
                auth = {"Authorization": f"Bearer {TOKEN}"}
                t_flex = time.monotonic()
                async with http.get(f"{base}/api/flexibility?tag=all", headers=auth) as r:
                    await r.json()
                flex_s = time.monotonic() - t_flex
                t_list = time.monotonic()
                async with http.get(f"{base}/api/houses", headers=auth) as r:
                    body = await r.read()
                list_s = time.monotonic() - t_list
                res = {"houses": n, "daemons": args.daemons, "connect_s": connect_s, **steady,
                       "fleet_rss_mb": rss_mb(fleet.pid), "broker_rss_mb": rss_mb(broker_pid),
                       "bench_rss_mb": rss_mb(os.getpid()),
                       "last_ack_s": statistics.median(r["last_ack_s"] for r in runs),
                       "complete_wall_s": statistics.median(r["wall_s"] for r in runs),
                       "acks": runs[-1]["summary"], "houses_json_kb": len(body) / 1024, "houses_api_s": list_s,
                       "flex_api_s": flex_s}
                results.append(res)
                print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in res.items()}), flush=True)
        sys_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
            await sys_task
    finally:
        for k in range(0, len(houses), CONNECT_BATCH):
            with contextlib.suppress(Exception):
                await asyncio.gather(*(h.__aexit__(None, None, None) for h in houses[k:k + CONNECT_BATCH]),
                                     return_exceptions=True)
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
    return results


def table(results: list[dict[str, Any]]) -> str:
    cols = ["houses", "PUBLISH/s in (houses)", "PUBLISH/s out (broker)", "packets/s (broker)", "broker CPU %",
            "broker RSS MB", "fleet RSS MB", "fleet CPU %", "dispatch to last ack s (fleet)", "until complete via API s",
            "acks answered/missing"]
    lines = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    for r in results:
        a = r["acks"]
        cells = [f"{r['houses']} + {r['daemons']}", f"{r['in_per_s']:.0f}", f"{r['out_per_s']:.0f}",
                 f"{r['packets_per_s']:.0f}", f"{r['broker_cpu_pct']:.1f}", f"{r['broker_rss_mb']:.0f}",
                 f"{r['fleet_rss_mb']:.0f}", f"{r['fleet_cpu_pct']:.1f}",
                 f"{r['last_ack_s']:.3f}", f"{r['complete_wall_s']:.3f}",
                 f"{a['accepted'] + a['partial'] + a['refused']}/{a['missing']}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="10,100,1000", help="fleet sizes, comma-separated (houses are added in steps)")
    p.add_argument("--daemons", type=int, default=2, help="real `atsd run --demo` daemons on the broker too")
    p.add_argument("--status-interval", type=float, default=5.0, help="seconds between a simulated house's status")
    p.add_argument("--events", type=int, default=3, help="dispatches per size (the median is reported)")
    p.add_argument("--window-s", type=float, default=10.0, help="steady-state measuring window")
    p.add_argument("--max-s", type=float, default=600.0, help="stop after this long whatever happens")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="atsd-bench-fleet-") as d:
        try:
            results = asyncio.run(asyncio.wait_for(bench(args, Path(d)), args.max_s))
        except TimeoutError:
            print(f"bench_fleet: stopped after {args.max_s:.0f} s", file=sys.stderr)
            return 1
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
