"""Helpers of the sources tests: paths of the real API samples and built fixtures, a config, a no-op sleep."""

from __future__ import annotations

import json
from pathlib import Path

from atsd.config import Config, parse

# Copies of the shared real samples travel with the tests (tests/data/README.md), so a fresh checkout
# runs them wherever it is cloned.
TEST_DATA = Path(__file__).resolve().parent.parent / "data"
SAMPLES = TEST_DATA / "api-samples"
FIXTURES = Path(__file__).parent / "fixtures"
PRICES_15MIN = TEST_DATA / "fi-prices-15min-test-days.csv"
PRICES_HOURLY = TEST_DATA / "fi-prices-2023-01-24_26-hourly.csv"

ENTSOE_URL = "https://entsoe.test/api"
PORSSI_URL = "https://porssi.test/v2"
SPOT_URL = "https://spot.test"
ELERING_URL = "https://elering.test/api"
OM_URL = "https://om.test/v1/forecast"
FG_URL = "https://fingrid.test/api"


def sample(name: str) -> str:
    return (SAMPLES / name).read_text(encoding="utf-8")


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def make_cfg(
    tmp_path: Path,
    *,
    token: str | None = "secret-token",
    fingrid_key: str | None = None,
    order: tuple[str, ...] = ("entsoe", "porssisahko"),
    slot_minutes: int = 15,
    **extra: object,
) -> Config:
    data: dict[str, object] = {
        "planner": {"slot_minutes": slot_minutes},
        "sources": {
            "price_order": list(order),
            "cache_dir": str(tmp_path / "cache"),
            "timeout_s": 2.0,
            "entsoe": {"base_url": ENTSOE_URL, **({"token": token} if token else {})},
            "porssisahko": {"base_url": PORSSI_URL},
            "spothinta": {"base_url": SPOT_URL},
            "elering": {"base_url": ELERING_URL},
            "openmeteo": {"base_url": OM_URL},
            "fingrid": {"base_url": FG_URL, **({"api_key": fingrid_key} if fingrid_key else {})},
        },
        "daemon": {"state_dir": str(tmp_path / "state")},
    }
    data.update(extra)
    return parse(json.loads(json.dumps(data)))


async def no_sleep(_s: float) -> None:
    return None
