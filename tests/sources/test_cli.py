"""``atsd forecast`` and ``forecast_for_cli`` (the path of ``atsd plan``), with every API mocked."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
import respx

from atsd.cli import main
from atsd.core.forecast import PRICE, TEMP
from atsd.sources.forecasts import forecast_for_cli
from tests.sources.samples import ENTSOE_URL, OM_URL, PORSSI_URL, fixture, make_cfg, sample


def write_config(tmp_path: Path) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(f"""
[planner]
slot_minutes = 15
[sources]
cache_dir = "{tmp_path / "cache"}"
price_order = ["entsoe", "porssisahko"]
[sources.entsoe]
token = "cli-token"
base_url = "{ENTSOE_URL}"
[sources.porssisahko]
base_url = "{PORSSI_URL}"
[sources.openmeteo]
base_url = "{OM_URL}"
""")
    return p


def mock_all() -> None:
    respx.get(ENTSOE_URL).mock(
        return_value=httpx.Response(200, text=sample("entsoe-a44-fi-2026-03-13_14-pt15m-a03.xml"))
    )
    respx.get(f"{PORSSI_URL}/latest-prices.json").mock(return_value=httpx.Response(503))
    respx.get(OM_URL).mock(
        return_value=httpx.Response(200, text=fixture("open-meteo-unixtime-helsinki-2023-01-24.json"))
    )


@respx.mock
def test_forecast_json_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mock_all()
    rc = main(
        [
            "forecast",
            "--config",
            str(write_config(tmp_path)),
            "--start",
            "2026-03-14T00:00:00Z",
            "--hours",
            "6",
            "--json",
        ]
    )
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["slots"]) == 24
    assert doc["slots"][0]["start"] == "2026-03-14T00:00:00Z"
    # 2026-03-14T00:00Z is position 5 of the CET day that began 2026-03-13T23:00Z (A03 carried forward).
    from atsd.sources.entsoe import parse_a44

    raw = parse_a44(sample("entsoe-a44-fi-2026-03-13_14-pt15m-a03.xml"), datetime(2026, 3, 14, tzinfo=UTC))
    i0 = int(np.searchsorted(raw.epoch_s, int(datetime(2026, 3, 14, tzinfo=UTC).timestamp())))
    assert [s["spot_eur_per_mwh"] for s in doc["slots"]] == raw.values[i0 : i0 + 24].tolist()
    price = doc["provenance"]["price"]
    assert {"source", "fetched_at", "resolution_min", "fallback"} <= set(price)
    assert (price["source"], price["fallback"], price["resolution_min"]) == ("entsoe", False, 15)
    assert doc["provenance"]["weather"]["source"] == "estimate"
    assert doc["provenance"]["weather"]["fallback"]
    assert all(isinstance(s["temp_c"], float) for s in doc["slots"])


@respx.mock
def test_forecast_table_names_provenance(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mock_all()
    assert (
        main(
            [
                "forecast",
                "--config",
                str(write_config(tmp_path)),
                "--start",
                "2026-03-14T00:00:00Z",
                "--hours",
                "2",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "spot_eur_per_mwh: entsoe (15 min" in out
    assert "temp_c: estimate" in out


def test_forecast_demo_needs_no_network(capsys: pytest.CaptureFixture[str]) -> None:
    with respx.mock(assert_all_mocked=True):
        assert main(["forecast", "--demo", "--hours", "3", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["slots"]) == 12


@respx.mock
def test_forecast_for_cli_gives_a_plannable_forecast_offline(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path, slot_minutes=60)
    start = datetime(2026, 3, 14, 0, tzinfo=UTC)
    fc = forecast_for_cli(cfg, start, start + timedelta(hours=48), now=start, offline=True)
    assert fc.grid.n == 48
    assert fc.grid.step_s == 3600
    assert np.isfinite(fc.get(PRICE)).all()
    assert np.isfinite(fc.get(TEMP)).all()
    assert fc.is_estimated(PRICE).all()
    assert fc.provenance[PRICE].estimate


@respx.mock
def test_atsd_plan_runs_on_fetched_prices_and_estimated_weather(tmp_path: Path) -> None:
    from atsd.config import load
    from atsd.planning import build_plan

    mock_all()
    cfg = load(write_config(tmp_path))
    plan, _label = build_plan(
        cfg, demo=False, start=datetime(2026, 3, 14, tzinfo=UTC), hours=12, indoor_c=None, planner="greedy"
    )
    assert len(plan.slots) == 48
    assert plan.slots[0].spot_eur_per_mwh == pytest.approx(parse_first_price())


def parse_first_price() -> float:
    from atsd.sources.entsoe import parse_a44

    raw = parse_a44(sample("entsoe-a44-fi-2026-03-13_14-pt15m-a03.xml"), datetime(2026, 3, 14, tzinfo=UTC))
    return float(
        raw.values[int(np.searchsorted(raw.epoch_s, int(datetime(2026, 3, 14, tzinfo=UTC).timestamp())))]
    )
