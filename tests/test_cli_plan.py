from __future__ import annotations

import json
import subprocess
import sys

from atsd.cli import main


def test_plan_demo_json_follows_the_plan_document(capsys):
    assert main(["plan", "--demo", "--hours", "24", "--json", "--planner", "greedy"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["slot_minutes"] == 15
    assert len(doc["schedule"]) == 96
    assert "demo data" in doc["data_note"]
    assert doc["estimated_cost"] == round(sum(s["cost_eur"] for s in doc["schedule"]), 2) or \
        abs(doc["estimated_cost"] - sum(s["cost_eur"] for s in doc["schedule"])) < 0.02
    assert all(s["mode"] in ("OFF", "ECO", "NORMAL", "BOOST") for s in doc["schedule"])
    assert min(s["expected_indoor_temp"] for s in doc["schedule"]) >= doc["comfort"]["min_c"]


def test_plan_table_is_labelled_demo_and_in_local_time(capsys):
    assert main(["plan", "--demo", "--hours", "24", "--start", "2026-01-20T06:00:00Z", "--planner", "greedy"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("** demo data")
    assert "times in Europe/Helsinki" in out
    assert "\n08:00" in out  # 06:00Z is 08:00 in Helsinki


def test_python_dash_m_atsd_runs():
    r = subprocess.run([sys.executable, "-m", "atsd", "--version"], capture_output=True, text=True, check=True)
    assert r.stdout.startswith("atsd ")


def test_bad_hours_is_a_usage_error(capsys):
    assert main(["plan", "--demo", "--hours", "500"]) == 2
