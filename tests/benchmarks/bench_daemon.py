"""Daemon targets: start-up to READY, resident memory after an accelerated simulated week, idle CPU.

Run: ``python tests/benchmarks/bench_daemon.py [--week-speed 5000] [--idle-s 60]``. It starts real
``atsd run --demo`` processes on loopback with a NOTIFY_SOCKET of its own, and prints the figures.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ATSD = [sys.executable, "-m", "atsd", "run", "--demo"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(tmp: Path, speed: float) -> tuple[subprocess.Popen[bytes], float]:
    sock_path = tmp / f"notify-{speed}.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(30)
    env = dict(os.environ, NOTIFY_SOCKET=str(sock_path))
    t0 = time.monotonic()
    proc = subprocess.Popen([*ATSD, "--speed", str(speed), "--port", str(free_port()), "--state-dir",
                             str(tmp / f"state-{speed}")], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    while b"READY=1" not in sock.recv(4096):
        pass
    ready_s = time.monotonic() - t0
    sock.close()
    return proc, ready_s


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--week-speed", type=float, default=5000.0)
    ap.add_argument("--idle-s", type=float, default=60.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        proc, ready_s = start(tmp, 1.0)
        print(f"start-up to READY=1: {ready_s:.2f} s (target < 3 s)")
        time.sleep(5)
        c0, t0 = cpu_s(proc.pid), time.monotonic()
        time.sleep(args.idle_s)
        idle = (cpu_s(proc.pid) - c0) / (time.monotonic() - t0) * 100
        print(f"idle CPU at real speed over {args.idle_s:.0f} s: {idle:.2f} % of one core (target < 1 %)")
        print(f"resident memory at real speed: {rss_mb(proc.pid):.1f} MB")
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        proc, _ = start(tmp, args.week_speed)
        week_s = 7 * 86400 / args.week_speed
        time.sleep(week_s)
        print(f"resident memory after a simulated week at {args.week_speed:g}x ({week_s:.0f} s): "
              f"{rss_mb(proc.pid):.1f} MB (target < 80 MB)")
        t1 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(15)
        print(f"SIGTERM to exit: {time.monotonic() - t1:.2f} s, exit status {rc}")
        db = tmp / f"state-{args.week_speed}" / "history.db"
        print(f"history after the week: {db.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
