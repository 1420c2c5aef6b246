"""ForecastService: the fallback chain, provenance, the cache across restarts, and fetch timing."""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
import respx

from atsd.core.forecast import CO2, GHI, PRICE, TEMP, WIND_POWER
from atsd.core.timegrid import Grid, local_day_grid, to_epoch_s
from atsd.sources.entsoe import parse_a44
from atsd.sources.fetch import RetryPolicy
from atsd.sources.forecasts import ForecastService
from atsd.sources.pricecheck import MARKET_TZ
from tests.sources.samples import (
    ENTSOE_URL,
    FG_URL,
    OM_URL,
    PORSSI_URL,
    fixture,
    make_cfg,
    no_sleep,
    sample,
)

NOW = datetime(2026, 3, 14, 10, tzinfo=UTC)  # 11:00 CET, before tomorrow's prices
ENTSOE_DOC = sample("entsoe-a44-fi-2026-03-13_14-pt15m-a03.xml")
PORSSI_DOC = fixture("porssisahko-latest-2026-03-13_14.json")
EXPECTED = parse_a44(ENTSOE_DOC, NOW)
PORSSI = f"{PORSSI_URL}/latest-prices.json"


def expected_on(grid: Grid) -> np.ndarray:
    by_t = dict(zip(EXPECTED.epoch_s.tolist(), EXPECTED.values.tolist(), strict=True))
    return np.array([by_t[int(t)] for t in grid.epoch_s()])


def service(tmp_path: Path, **kw: object) -> ForecastService:
    return ForecastService(make_cfg(tmp_path, **kw), sleep=no_sleep, policy=RetryPolicy(3, 0.01, 0.01))  # type: ignore[arg-type]


def warnings_about(caplog: pytest.LogCaptureFixture, word: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and word in r.getMessage()]


@respx.mock
async def test_primary_source_gives_prices_with_provenance(tmp_path: Path) -> None:
    respx.get(ENTSOE_URL).mock(return_value=httpx.Response(200, text=ENTSOE_DOC))
    respx.get(PORSSI).mock(return_value=httpx.Response(200, text=PORSSI_DOC))
    async with service(tmp_path) as svc:
        assert await svc.refresh_prices(NOW)
        fc = svc.assemble(NOW, hours=12)
    p = fc.provenance[PRICE]
    assert (p.source, p.fallback, p.estimate, p.resolution_min, p.fetched_at) == (
        "entsoe",
        False,
        False,
        15,
        NOW,
    )
    assert fc.get(PRICE).tolist() == expected_on(fc.grid).tolist()
    assert not fc.is_estimated(PRICE).any()
    assert svc.health()["entsoe"]["last_success"] == "2026-03-14T10:00:00Z"


BROKEN = {
    "truncated XML": httpx.Response(200, text=ENTSOE_DOC[:3000]),
    "HTML error page": httpx.Response(
        200,
        text="<!DOCTYPE html><html><body>Service temporarily unavailable<br></body></html>",
        headers={"content-type": "text/html"},
    ),
    "401": httpx.Response(401, text="Unauthorized"),
    "429 with Retry-After": httpx.Response(429, headers={"Retry-After": "30"}),
    "503": httpx.Response(503),
    "timeout": httpx.ConnectTimeout("timed out"),
    "empty body": httpx.Response(200, text=""),
    "acknowledgement": httpx.Response(200, text=sample("entsoe-acknowledgement-no-data-nl.xml")),
    "out-of-range prices": httpx.Response(
        200,
        text=ENTSOE_DOC.replace(
            "<price.amount>2.07</price.amount>", "<price.amount>4200.5</price.amount>"
        ).replace("<price.amount>26.26</price.amount>", "<price.amount>-612</price.amount>"),
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
@respx.mock
async def test_broken_primary_falls_back_with_one_log_line(
    case: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    answer = BROKEN[case]
    route = respx.get(ENTSOE_URL)
    route.mock(side_effect=answer) if isinstance(answer, Exception) else route.mock(return_value=answer)
    respx.get(PORSSI).mock(return_value=httpx.Response(200, text=PORSSI_DOC))
    caplog.set_level(logging.DEBUG)
    async with service(tmp_path) as svc:
        await svc.refresh_prices(NOW)
        fc = svc.assemble(NOW, hours=12)
    p = fc.provenance[PRICE]
    assert (p.source, p.fallback, p.estimate) == ("porssisahko", True, False)
    assert fc.get(PRICE).tolist() == expected_on(fc.grid).tolist()
    episode = [m for m in warnings_about(caplog, "entsoe") if "using the next source" in m]
    assert len(episode) == 1  # one line for the episode, however many retries
    assert route.call_count == (3 if case in ("503", "timeout") else 1)  # only transient errors are retried
    assert "secret-token" not in caplog.text
    assert svc.health()["entsoe"]["consecutive_failures"] == 1


@respx.mock
async def test_failure_episode_logs_once_and_recovery_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    route = respx.get(ENTSOE_URL).mock(return_value=httpx.Response(503))
    respx.get(PORSSI).mock(return_value=httpx.Response(200, text=PORSSI_DOC))
    caplog.set_level(logging.INFO)
    async with service(tmp_path) as svc:
        for k in range(3):
            await svc.refresh_prices(NOW + timedelta(minutes=5 * k))
        assert route.call_count == 9  # three refreshes × three attempts
        route.mock(return_value=httpx.Response(200, text=ENTSOE_DOC))
        await svc.refresh_prices(NOW + timedelta(minutes=20))
        fc = svc.assemble(NOW + timedelta(minutes=20), hours=6)
    assert len(warnings_about(caplog, "entsoe: 503")) == 1
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("entsoe answers")] == [
        "entsoe answers again after 3 failed attempt(s)."
    ]
    assert fc.provenance[PRICE].source == "entsoe"
    assert not fc.provenance[PRICE].fallback


@respx.mock
async def test_429_ban_is_respected_for_ten_minutes(tmp_path: Path) -> None:
    route = respx.get(ENTSOE_URL).mock(return_value=httpx.Response(429, headers={"Retry-After": "5"}))
    respx.get(PORSSI).mock(return_value=httpx.Response(200, text=PORSSI_DOC))
    async with service(tmp_path) as svc:
        await svc.refresh_prices(NOW)
        await svc.refresh_prices(NOW + timedelta(minutes=9))
        assert route.call_count == 1
        assert svc.health()["entsoe"]["banned_until"] == "2026-03-14T10:10:00Z"
        await svc.refresh_prices(NOW + timedelta(minutes=11))
        assert route.call_count == 2


@respx.mock
async def test_disagreeing_sources_are_logged_once_and_primary_wins(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    doc = json.loads(PORSSI_DOC)
    for r in doc["prices"]:
        r["price"] = round(r["price"] * 1.3 + 0.5, 3)
    respx.get(ENTSOE_URL).mock(return_value=httpx.Response(200, text=ENTSOE_DOC))
    respx.get(PORSSI).mock(return_value=httpx.Response(200, text=json.dumps(doc)))
    async with service(tmp_path) as svc:
        await svc.refresh_prices(NOW)
        await svc.refresh_prices(NOW + timedelta(minutes=5))
        fc = svc.assemble(NOW, hours=12)
    assert len(warnings_about(caplog, "disagree on 2026-03-14")) == 1
    assert fc.provenance[PRICE].source == "entsoe"
    assert fc.get(PRICE).tolist() == expected_on(fc.grid).tolist()


@respx.mock
async def test_rejected_day_never_becomes_cached_truth(tmp_path: Path) -> None:
    # ENTSO-E's 2026-03-14 carries an impossible price; porssisahko's copy of that day is good.
    bad = ENTSOE_DOC.replace("<price.amount>26.26</price.amount>", "<price.amount>9999</price.amount>")
    respx.get(ENTSOE_URL).mock(return_value=httpx.Response(200, text=bad))
    respx.get(PORSSI).mock(return_value=httpx.Response(200, text=PORSSI_DOC))
    async with service(tmp_path) as svc:
        await svc.refresh_prices(NOW)
    days = json.loads((tmp_path / "cache" / "prices.json").read_text())["days"]
    assert days["2026-03-13"]["source"] == "entsoe"
    assert days["2026-03-14"]["source"] == "porssisahko"
    assert 9999 not in days["2026-03-14"]["values"]


@respx.mock
async def test_cache_survives_a_restart_when_every_source_is_down(tmp_path: Path) -> None:
    entsoe = respx.get(ENTSOE_URL).mock(return_value=httpx.Response(200, text=ENTSOE_DOC))
    porssi = respx.get(PORSSI).mock(return_value=httpx.Response(200, text=PORSSI_DOC))
    async with service(tmp_path) as svc:
        await svc.refresh_prices(NOW)
    entsoe.mock(side_effect=httpx.ConnectError("down"))
    porssi.mock(return_value=httpx.Response(503))
    later = NOW + timedelta(hours=2)
    async with service(tmp_path) as svc2:  # a new process: only the disk remains
        await svc2.refresh_prices(later)
        fc = svc2.assemble(later, hours=8)
    p = fc.provenance[PRICE]
    assert (p.source, p.fallback, p.estimate, p.fetched_at) == ("cache(entsoe)", True, False, NOW)
    assert fc.get(PRICE).tolist() == expected_on(fc.grid).tolist()


@respx.mock
async def test_half_written_cache_is_ignored_and_estimate_keeps_heating(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    respx.get(ENTSOE_URL).mock(side_effect=httpx.ConnectError("down"))
    respx.get(PORSSI).mock(side_effect=httpx.ConnectError("down"))
    respx.get(OM_URL).mock(side_effect=httpx.ConnectError("down"))
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "prices.json").write_text('{"version":1,"area":"FI","days":{"2026-03-14":{"source":"ents')
    async with service(tmp_path) as svc:
        await svc.refresh_prices(NOW)
        await svc.refresh_weather(NOW)
        fc = svc.assemble(NOW, hours=24)
    assert warnings_about(caplog, "damaged")
    assert (cache / "prices.json.corrupt").exists()
    assert np.isfinite(fc.get(PRICE)).all()
    assert fc.is_estimated(PRICE).all()
    assert np.isfinite(fc.get(TEMP)).all()
    assert fc.is_estimated(TEMP).all()
    assert fc.provenance[PRICE].estimate
    assert fc.provenance[PRICE].fallback
    assert fc.provenance[PRICE].source == "estimate"
    assert "flat" in fc.provenance[PRICE].note


def test_atomic_write_keeps_the_old_file_when_the_rename_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from atsd.sources.cache import Cache

    c = Cache(tmp_path)
    assert c.save("prices", {"days": {"a": 1}})

    def power_cut(*_a: object) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "replace", power_cut)
    assert not c.save("prices", {"days": {"b": 2}})
    monkeypatch.undo()
    assert c.load("prices") == {"days": {"a": 1}, "version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["prices.json"]  # no temp file left behind


@respx.mock
async def test_missing_tomorrow_is_a_labelled_profile_estimate(tmp_path: Path) -> None:
    respx.get(ENTSOE_URL).mock(return_value=httpx.Response(200, text=ENTSOE_DOC))
    respx.get(PORSSI).mock(return_value=httpx.Response(200, text=PORSSI_DOC))
    async with service(tmp_path) as svc:
        await svc.refresh_prices(NOW)
        fc = svc.assemble(NOW, hours=36)
    est = fc.is_estimated(PRICE)
    first_est = int(np.argmax(est))
    assert fc.grid.time(first_est) == datetime(2026, 3, 14, 23, tzinfo=UTC)
    assert est[first_est:].all()
    assert np.isfinite(fc.get(PRICE)).all()
    p = fc.provenance[PRICE]
    assert (p.source, p.fallback, p.estimate) == ("entsoe+estimate", True, True)
    # Local noon of 2026-03-15 is the mean of local noon on the 13th and the 14th.
    i = fc.grid.index_of(datetime(2026, 3, 15, 10, tzinfo=UTC))
    by_t = dict(zip(EXPECTED.epoch_s.tolist(), EXPECTED.values.tolist(), strict=True))
    noon = [by_t[to_epoch_s(datetime(2026, 3, d, 10, tzinfo=UTC))] for d in (13, 14)]
    assert fc.get(PRICE)[i] == pytest.approx(sum(noon) / 2)


@pytest.mark.parametrize(("step_min", "n"), [(15, 100), (60, 25)])
@respx.mock
async def test_autumn_dst_local_day_is_complete(tmp_path: Path, step_min: int, n: int) -> None:
    respx.get(ENTSOE_URL).mock(
        return_value=httpx.Response(200, text=fixture("entsoe-a44-fi-2025-10-26-pt15m-a03-100q.xml"))
    )
    respx.get(PORSSI).mock(
        return_value=httpx.Response(200, text=fixture("porssisahko-latest-2025-10-26-dst.json"))
    )
    now = datetime(2025, 10, 26, 5, tzinfo=UTC)
    cfg = make_cfg(tmp_path, slot_minutes=step_min)
    async with ForecastService(cfg, sleep=no_sleep) as svc:
        await svc.refresh_prices(now)
        g = local_day_grid(date(2025, 10, 26), cfg.device.tz, step_min * 60)
        fc = svc.assemble(now, start=g.start, end=g.end)
    assert fc.grid.n == n
    assert not fc.is_estimated(PRICE).any()
    assert fc.provenance[PRICE].source == "entsoe"
    assert not fc.provenance[PRICE].fallback


@respx.mock
async def test_weather_from_open_meteo_and_estimate_beyond(tmp_path: Path) -> None:
    respx.get(OM_URL).mock(
        return_value=httpx.Response(200, text=fixture("open-meteo-unixtime-helsinki-2023-01-24.json"))
    )
    now = datetime(2023, 1, 25, 10, tzinfo=UTC)
    async with service(tmp_path, order=("porssisahko",)) as svc:
        assert await svc.refresh_weather(now)
        fc = svc.assemble(now, hours=48)
    temp, est = fc.get(TEMP), fc.is_estimated(TEMP)
    assert np.isfinite(temp).all()
    assert est.any()
    assert not est[:4].any()
    assert fc.provenance[TEMP].source == "openmeteo+estimate"
    assert fc.provenance[TEMP].fallback
    assert np.isfinite(fc.get(GHI)).all()
    q = svc.health()["openmeteo"]
    assert q["consecutive_failures"] == 0
    assert q["last_success"] == "2023-01-25T10:00:00Z"


@respx.mock
async def test_weather_estimate_anchors_on_the_outdoor_sensor(tmp_path: Path) -> None:
    respx.get(OM_URL).mock(return_value=httpx.Response(503))
    async with service(tmp_path) as svc:
        await svc.refresh_weather(NOW)
        fc = svc.assemble(NOW, hours=6, outdoor_c=-12.0)
    assert fc.get(TEMP)[0] == pytest.approx(-12.0, abs=0.1)
    assert fc.is_estimated(TEMP).all()


@respx.mock(assert_all_mocked=True)
async def test_fingrid_without_key_does_nothing_and_logs_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with service(tmp_path) as svc:
        assert not await svc.refresh_grid(NOW)
        fc = svc.assemble(NOW, hours=2)
    assert CO2 not in fc.series
    assert not warnings_about(caplog, "fingrid")
    assert "no api_key" in svc.health()["fingrid"]["note"]
    assert svc.next_grid_poll(NOW) == NOW + timedelta(days=1)


@respx.mock
async def test_fingrid_pages_key_header_and_co2_estimate(tmp_path: Path) -> None:
    r265 = respx.get(f"{FG_URL}/datasets/265/data").mock(
        side_effect=[
            httpx.Response(200, text=fixture("fingrid-265-page1.json")),
            httpx.Response(200, text=fixture("fingrid-265-page2.json")),
        ]
    )
    respx.get(f"{FG_URL}/datasets/181/data").mock(
        return_value=httpx.Response(200, text=fixture("fingrid-181.json"))
    )
    respx.get(f"{FG_URL}/datasets/245/data").mock(
        return_value=httpx.Response(200, text=fixture("fingrid-245.json"))
    )
    respx.get(f"{FG_URL}/datasets/177/data/latest").mock(
        return_value=httpx.Response(
            200,
            json={
                "datasetId": 177,
                "startTime": "2024-08-31T00:00:00.000Z",
                "endTime": "2024-08-31T00:03:00.000Z",
                "value": 49.97,
            },
        )
    )
    respx.get(f"{FG_URL}/datasets/209/data/latest").mock(return_value=httpx.Response(404))
    now = datetime(2024, 8, 31, tzinfo=UTC)
    async with service(tmp_path, fingrid_key="fg-key") as svc:
        assert await svc.refresh_grid(now)
        fc = svc.assemble(now - timedelta(hours=12), start=now - timedelta(hours=12), hours=36)
    assert r265.call_count == 2
    assert r265.calls.last.request.headers["x-api-key"] == "fg-key"
    assert r265.calls.last.request.url.params["page"] == "2"
    co2, est = fc.get(CO2), fc.is_estimated(CO2)
    assert np.isfinite(co2).all()
    assert not est[:48].any()
    assert est[48:].all()
    assert fc.provenance[CO2].source == "fingrid+estimate"
    assert fc.provenance[CO2].estimate
    assert np.isfinite(fc.get(WIND_POWER)).all()
    assert svc.grid_status()["frequency_hz"] == 49.97


@respx.mock
async def test_next_price_poll_follows_publication_across_dst(tmp_path: Path) -> None:
    both = fixture("entsoe-a44-fi-2026-03-29-pt15m-a03-92q.xml")  # market days 2026-03-28 and 03-29 (DST)
    cut = both.index("<TimeSeries>", both.index("<TimeSeries>") + 1)
    today_only = both[:cut] + "</Publication_MarketDocument>"
    entsoe = respx.get(ENTSOE_URL).mock(return_value=httpx.Response(200, text=today_only))
    porssi = respx.get(PORSSI).mock(return_value=httpx.Response(503))
    morning = datetime(2026, 3, 28, 7, tzinfo=UTC)
    async with service(tmp_path) as svc:
        assert svc.next_price_poll(morning) == morning  # nothing known: poll now
        await svc.refresh_prices(morning)
        poll_start = datetime(2026, 3, 28, 13, tzinfo=MARKET_TZ)
        assert svc.next_price_poll(morning) == poll_start  # today known: wait for 13:00 CET
        t = poll_start + timedelta(minutes=30)
        assert svc.next_price_poll(t) == t  # not asked since 13:00: now
        await svc.refresh_prices(t)
        assert svc.next_price_poll(t) == t + timedelta(minutes=5)  # tomorrow still missing
        entsoe.mock(return_value=httpx.Response(503))
        for k in (1, 2, 3):
            await svc.refresh_prices(t + timedelta(minutes=5 * k))
        last = t + timedelta(minutes=15)
        assert svc.next_price_poll(last) == last + timedelta(minutes=20)  # backing off: 5, 10, 20 min
        entsoe.mock(return_value=httpx.Response(200, text=both))
        await svc.refresh_prices(last + timedelta(minutes=20))
        # Tomorrow (the 23-hour day) is held: next poll tomorrow at 13:00 CEST, which is 11:00Z.
        assert svc.next_price_poll(last + timedelta(minutes=20)) == datetime(2026, 3, 29, 11, tzinfo=UTC)
        assert len(svc.price_day(date(2026, 3, 29)).values) == 92  # type: ignore[union-attr]
    assert porssi.call_count >= 1


def test_service_never_reads_the_clock() -> None:
    src = (Path(__file__).parents[2] / "atsd" / "sources" / "forecasts.py").read_text()
    body = src.split("# -- CLI")[0]
    assert "datetime.now" not in body
    assert "time.time" not in body


@respx.mock
async def test_third_source_is_asked_only_while_a_needed_day_is_missing(tmp_path: Path) -> None:
    respx.get(ENTSOE_URL).mock(return_value=httpx.Response(503))
    respx.get(PORSSI).mock(return_value=httpx.Response(200, text="{}"))
    elering = respx.get("https://elering.test/api/nps/price").mock(
        return_value=httpx.Response(200, text=fixture("elering-nps-price-2026-03-13_14.json"))
    )
    async with service(tmp_path, order=("entsoe", "porssisahko", "elering")) as svc:
        await svc.refresh_prices(NOW)
        fc = svc.assemble(NOW, hours=12)
        assert elering.call_count == 1
        assert fc.provenance[PRICE].source == "elering"
        assert fc.provenance[PRICE].fallback
        assert svc.health()["entsoe"]["fallback_in_use"] is True
        respx.get(PORSSI).mock(return_value=httpx.Response(200, text=PORSSI_DOC))
        await svc.refresh_prices(NOW + timedelta(minutes=10))
        assert elering.call_count == 1  # today is now held by porssisahko: no need to ask further


@respx.mock
async def test_token_from_environment_or_file_and_without_one_the_next_source_is_primary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    respx.get(PORSSI).mock(return_value=httpx.Response(200, text=PORSSI_DOC))
    entsoe = respx.get(ENTSOE_URL).mock(return_value=httpx.Response(200, text=ENTSOE_DOC))
    async with service(tmp_path, token=None) as svc:
        await svc.refresh_prices(NOW)
        fc = svc.assemble(NOW, hours=4)
    assert entsoe.call_count == 0
    assert "no token" in svc.health()["entsoe"]["note"]
    assert fc.provenance[PRICE].source == "porssisahko"
    assert not fc.provenance[PRICE].fallback
    monkeypatch.setenv("ATSD_ENTSOE_TOKEN", "from-env")
    async with service(tmp_path, token=None) as svc:
        await svc.refresh_prices(NOW)
    assert entsoe.calls.last.request.url.params["securityToken"] == "from-env"
    monkeypatch.delenv("ATSD_ENTSOE_TOKEN")
    (tmp_path / "tok").write_text("from-file\n")
    cfg = make_cfg(tmp_path, token=None)
    import dataclasses

    cfg = dataclasses.replace(
        cfg,
        sources=dataclasses.replace(
            cfg.sources, entsoe=dataclasses.replace(cfg.sources.entsoe, token_file=tmp_path / "tok")
        ),
    )
    async with ForecastService(cfg, sleep=no_sleep) as svc:
        await svc.refresh_prices(NOW)
    assert entsoe.calls.last.request.url.params["securityToken"] == "from-file"


def spothinta_doc() -> str:
    """spot-hinta.fi's format (EUR/kWh, 4 decimals, local time with offset) for the sample's two days."""
    from zoneinfo import ZoneInfo

    hel = ZoneInfo("Europe/Helsinki")
    rows = [
        {
            "Rank": 0,
            "DateTime": datetime.fromtimestamp(int(t), hel).isoformat(),
            "PriceNoTax": round(v / 1000, 4),
            "PriceWithTax": round(v * 1.255 / 1000, 4),
        }
        for t, v in zip(EXPECTED.epoch_s, EXPECTED.values, strict=True)
    ]
    return json.dumps(rows)


def out_of_range_porssi() -> str:
    doc = json.loads(PORSSI_DOC)
    for r in doc["prices"][::40]:
        r["price"] = 612.5  # c/kWh with VAT: 4880 EUR/MWh, above the market's 4000 limit
    return json.dumps(doc)


KEYLESS_BROKEN = {
    "HTML error page": httpx.Response(200, text="<html><body>502 Bad Gateway</body></html>"),
    "empty JSON": httpx.Response(200, text="{}"),
    "empty price list": httpx.Response(200, text='{"prices": []}'),
    "503": httpx.Response(503),
    "timeout": httpx.ReadTimeout("slow"),
    "out-of-range prices": httpx.Response(200, text=out_of_range_porssi()),
}


@pytest.mark.parametrize("case", list(KEYLESS_BROKEN))
@respx.mock
async def test_broken_keyless_primary_falls_back_to_the_next_keyless_source(
    case: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    answer = KEYLESS_BROKEN[case]
    route = respx.get(PORSSI)
    route.mock(side_effect=answer) if isinstance(answer, Exception) else route.mock(return_value=answer)
    respx.get("https://spot.test/TodayAndDayForward").mock(
        return_value=httpx.Response(200, text=spothinta_doc())
    )
    async with service(tmp_path, token=None, order=("entsoe", "porssisahko", "spothinta")) as svc:
        await svc.refresh_prices(NOW)
        fc = svc.assemble(NOW, hours=12)
    p = fc.provenance[PRICE]
    assert (p.source, p.fallback, p.estimate) == ("spothinta", True, False)
    assert np.allclose(fc.get(PRICE), expected_on(fc.grid), atol=0.051)
    assert warnings_about(caplog, "porssisahko")


@respx.mock
async def test_broken_open_meteo_falls_back_to_the_cached_forecast(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    route = respx.get(OM_URL).mock(
        return_value=httpx.Response(200, text=fixture("open-meteo-unixtime-helsinki-2023-01-24.json"))
    )
    now = datetime(2023, 1, 25, 10, tzinfo=UTC)
    async with service(tmp_path) as svc:
        await svc.refresh_weather(now)
        first = svc.assemble(now, hours=12)
    route.mock(return_value=httpx.Response(200, text="<html>Bad Gateway</html>"))
    async with service(tmp_path) as svc2:
        assert not await svc2.refresh_weather(now + timedelta(hours=1))
        fc = svc2.assemble(now, hours=12)
    p = fc.provenance[TEMP]
    assert (p.source, p.fallback, p.estimate, p.fetched_at) == ("cache(openmeteo)", True, False, now)
    assert fc.get(TEMP).tolist() == first.get(TEMP).tolist()
    assert len(warnings_about(caplog, "openmeteo: answer is not JSON")) == 1


@respx.mock
async def test_fingrid_wrong_key_is_one_line_naming_the_setting(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    route = respx.get(url__startswith=FG_URL).mock(return_value=httpx.Response(401, text="Access Denied"))
    async with service(tmp_path, fingrid_key="wrong") as svc:
        for k in range(3):
            assert not await svc.refresh_grid(NOW + timedelta(minutes=15 * k))
        fc = svc.assemble(NOW, hours=2)
    assert route.call_count == 3  # one per refresh: a 401 is never retried
    assert CO2 not in fc.series
    lines = warnings_about(caplog, "fingrid")
    assert len(lines) == 1
    assert "[sources.fingrid] api_key" in lines[0]
    assert "wrong" not in caplog.text
