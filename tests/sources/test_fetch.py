"""Timeouts, retries with backoff and jitter, and the translation of HTTP failures into SourceError."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import httpx
import pytest
import respx

from atsd.sources import ErrorKind, SourceError
from atsd.sources.entsoe import fetch_prices
from atsd.sources.fetch import RetryPolicy, get_text, retry_after_s
from tests.sources.samples import ENTSOE_URL, sample

URL = "https://api.test/x"
NOW = datetime(2026, 3, 14, 10, tzinfo=UTC)


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, s: float) -> None:
        self.calls.append(s)


@respx.mock
async def test_server_error_is_retried_with_growing_jittered_waits() -> None:
    route = respx.get(URL).mock(
        side_effect=[httpx.Response(503), httpx.Response(503), httpx.Response(200, text="ok")]
    )
    sleeps = Sleeps()
    async with httpx.AsyncClient() as c:
        text = await get_text(
            c, "x", URL, policy=RetryPolicy(3, 2.0, 30.0), sleep=sleeps, rng=random.Random(1)
        )
    assert text == "ok"
    assert route.call_count == 3
    assert 1.0 <= sleeps.calls[0] <= 2.0
    assert 2.0 <= sleeps.calls[1] <= 4.0


@respx.mock
async def test_timeouts_end_in_a_timeout_error_after_every_attempt() -> None:
    route = respx.get(URL).mock(side_effect=httpx.ReadTimeout("slow"))
    async with httpx.AsyncClient() as c:
        with pytest.raises(SourceError) as exc:
            await get_text(c, "x", URL, timeout_s=3, sleep=Sleeps())
    assert exc.value.kind is ErrorKind.TIMEOUT
    assert route.call_count == 3
    assert isinstance(exc.value.__cause__, httpx.TimeoutException)


@respx.mock
async def test_connection_refused_is_a_network_error() -> None:
    respx.get(URL).mock(side_effect=httpx.ConnectError("refused"))
    async with httpx.AsyncClient() as c:
        with pytest.raises(SourceError) as exc:
            await get_text(c, "x", URL, sleep=Sleeps())
    assert exc.value.kind is ErrorKind.NETWORK


@respx.mock
async def test_429_is_not_retried_and_carries_retry_after() -> None:
    route = respx.get(URL).mock(return_value=httpx.Response(429, headers={"Retry-After": "120"}))
    async with httpx.AsyncClient() as c:
        with pytest.raises(SourceError) as exc:
            await get_text(c, "x", URL, sleep=Sleeps())
    assert exc.value.kind is ErrorKind.RATE_LIMIT
    assert exc.value.retry_after_s == 120
    assert route.call_count == 1


def test_retry_after_http_date_is_ignored() -> None:
    assert retry_after_s("Wed, 21 Oct 2026 07:28:00 GMT") is None
    assert retry_after_s("30") == 30


@respx.mock
async def test_entsoe_429_bans_for_ten_minutes_at_least() -> None:
    respx.get(ENTSOE_URL).mock(return_value=httpx.Response(429, headers={"Retry-After": "60"}))
    async with httpx.AsyncClient() as c:
        with pytest.raises(SourceError) as exc:
            await fetch_prices(
                c,
                base_url=ENTSOE_URL,
                token="t0k",
                area="FI",
                start=NOW,
                end=NOW,
                fetched_at=NOW,
                sleep=Sleeps(),
            )
    assert exc.value.retry_after_s == 600


@respx.mock
async def test_entsoe_401_names_the_setting_and_hides_the_token() -> None:
    route = respx.get(ENTSOE_URL).mock(return_value=httpx.Response(401, text="<html>Unauthorized</html>"))
    async with httpx.AsyncClient() as c:
        with pytest.raises(SourceError) as exc:
            await fetch_prices(
                c,
                base_url=ENTSOE_URL,
                token="s3cr3t",
                area="FI",
                start=NOW,
                end=NOW,
                fetched_at=NOW,
                sleep=Sleeps(),
            )
    assert exc.value.kind is ErrorKind.AUTH
    assert route.call_count == 1
    assert "[sources.entsoe] token" in str(exc.value)
    assert "s3cr3t" not in str(exc.value)


@respx.mock
async def test_entsoe_400_acknowledgement_is_explained() -> None:
    respx.get(ENTSOE_URL).mock(
        return_value=httpx.Response(400, text=sample("entsoe-acknowledgement-no-data-nl.xml"))
    )
    async with httpx.AsyncClient() as c:
        with pytest.raises(SourceError) as exc:
            await fetch_prices(
                c, base_url=ENTSOE_URL, token="t", area="FI", start=NOW, end=NOW, fetched_at=NOW
            )
    assert "No matching data" in str(exc.value)


@respx.mock
async def test_entsoe_request_parameters() -> None:
    route = respx.get(ENTSOE_URL).mock(
        return_value=httpx.Response(200, text=sample("entsoe-a44-fi-2026-03-13_14-pt15m-a03.xml"))
    )
    async with httpx.AsyncClient() as c:
        raw = await fetch_prices(
            c,
            base_url=ENTSOE_URL,
            token="t",
            area="FI",
            start=datetime(2026, 3, 12, 23, tzinfo=UTC),
            end=datetime(2026, 3, 14, 23, tzinfo=UTC),
            fetched_at=NOW,
        )
    q = route.calls.last.request.url.params
    assert (q["documentType"], q["in_Domain"], q["out_Domain"]) == (
        "A44",
        "10YFI-1--------U",
        "10YFI-1--------U",
    )
    assert q["contract_MarketAgreement.type"] == "A01"
    assert (q["periodStart"], q["periodEnd"]) == ("202603122300", "202603142300")
    assert raw.n == 192
