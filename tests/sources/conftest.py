"""Fixtures of the sources tests (helpers and paths live in ``samples.py``)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_env_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's real tokens."""
    for name in ("ATSD_ENTSOE_TOKEN", "ATSD_FINGRID_API_KEY", "CREDENTIALS_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)
