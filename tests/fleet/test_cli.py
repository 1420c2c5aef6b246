"""``atsd fleet`` as a process: refuses to start without a token (78), serves, stops on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.conftest import MosquittoBroker, free_port

REPO = Path(__file__).resolve().parents[2]


def run_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ATSD_FLEET_TOKEN", "CREDENTIALS_DIRECTORY")}
    env["PYTHONPATH"] = str(REPO)
    return env


def test_fleet_without_a_token_exits_78_and_says_why(tmp_path: Path, mosquitto: MosquittoBroker):
    cfg = tmp_path / "fleet.toml"
    cfg.write_text(f'[mqtt]\nhost = "127.0.0.1"\nport = {mosquitto.port}\n\n[fleet]\nport = 0\n')
    proc = subprocess.run([sys.executable, "-m", "atsd", "fleet", "--config", str(cfg)], capture_output=True,
                          text=True, timeout=30, env=run_env())
    assert proc.returncode == 78, proc.stderr
    assert "[fleet] needs token" in proc.stderr


def test_fleet_serves_and_stops_on_sigterm(tmp_path: Path, mosquitto: MosquittoBroker):
    port = free_port()
    (tmp_path / "token").write_text("s3cret\n")
    cfg = tmp_path / "fleet.toml"
    cfg.write_text(f'[mqtt]\nhost = "127.0.0.1"\nport = {mosquitto.port}\n\n'
                   f'[fleet]\nport = {port}\ntoken_file = "{tmp_path / "token"}"\n')
    proc = subprocess.Popen([sys.executable, "-m", "atsd", "fleet", "--config", str(cfg)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=run_env())
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in line, line
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/houses", headers={"Authorization": "Bearer s3cret"})
        with urllib.request.urlopen(req, timeout=5) as r:
            assert json.load(r)["count"] >= 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
