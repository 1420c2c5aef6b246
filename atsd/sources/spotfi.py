"""Keyless price APIs, so that Finland never depends on one provider: porssisahko.net, spot-hinta.fi, Elering.

Each answer is converted here to spot EUR/MWh before any tax, the unit of ENTSO-E:

- porssisahko.net ``/latest-prices.json``: c/kWh **including VAT**, 15-minute, UTC, unsorted.
  EUR/MWh = c/kWh × 10 / (1 + VAT), VAT of the slot's date in Finnish local time, rounded to 0.01
  (the API's 3 decimals of c/kWh identify the 2-decimal spot price exactly). Whether porssisahko adds
  VAT to negative prices is unverified; like sahkotin.fi, VAT is assumed on every price, and the
  cross-check against ENTSO-E would log a disagreement if that were wrong.
- spot-hinta.fi ``/TodayAndDayForward?region=FI``: EUR/kWh, ``PriceNoTax`` used (× 1000), times local
  with offset, 15-minute (hourly on request). Only 4 decimals: 0.1 EUR/MWh steps.
- Elering ``/nps/price?start&end``: ``{"data": {"fi": [{"timestamp", "price"}]}}``, EUR/MWh without VAT.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import numpy as np

from atsd.config import FINNISH_VAT, VatConfig
from atsd.core.timegrid import iso_z, parse_utc, to_epoch_s
from atsd.sources import ErrorKind, RawSeries, SourceError, make_series
from atsd.sources.fetch import RetryPolicy, Sleep, get_text

FINNISH_TZ = ZoneInfo("Europe/Helsinki")
# Areas each keyless API serves (porssisahko is Finnish only; Elering publishes the Baltics and FI).
AREAS = {
    "porssisahko": frozenset({"FI"}),
    "spothinta": frozenset(
        {"FI", "EE", "LV", "LT", "SE1", "SE2", "SE3", "SE4", "NO1", "NO2", "NO3", "NO4", "NO5", "DK1", "DK2"}
    ),
    "elering": frozenset({"FI", "EE", "LV", "LT"}),
}


def vat_fraction(day: date, table: Sequence[VatConfig] = FINNISH_VAT) -> float:
    """VAT in force on a local date, as a fraction (0.255)."""
    rate = table[0].percent
    for v in table:
        if v.since <= day:
            rate = v.percent
    return rate / 100.0


def _json(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        snippet = text.lstrip()[:40].replace("\n", " ")
        raise SourceError(source, ErrorKind.PARSE, f"answer is not JSON (starts {snippet!r})") from exc


def _step_from(epochs: list[int], source: str, default: int = 900) -> int:
    if len(epochs) < 2:
        return default
    diffs = np.diff(np.array(sorted(epochs)))
    step = int(diffs.min())
    if step not in (900, 3600):
        raise SourceError(source, ErrorKind.PARSE, f"unexpected step of {step} s between prices")
    return step


def parse_porssisahko(text: str, fetched_at: datetime, vat: Sequence[VatConfig] = FINNISH_VAT) -> RawSeries:
    src = "porssisahko"
    doc = _json(text, src)
    rows = doc.get("prices") if isinstance(doc, dict) else None
    if not isinstance(rows, list):
        raise SourceError(src, ErrorKind.PARSE, "answer has no 'prices' list")
    if not rows:
        raise SourceError(src, ErrorKind.NO_DATA, "answer lists no prices")
    out: dict[int, float] = {}
    steps: set[int] = set()
    try:
        for r in rows:
            t0, t1 = parse_utc(r["startDate"]), parse_utc(r["endDate"])
            steps.add(int((t1 - t0).total_seconds()))
            c_per_kwh_vat = float(r["price"])
            day = t0.astimezone(FINNISH_TZ).date()
            out[to_epoch_s(t0)] = round(c_per_kwh_vat * 10.0 / (1.0 + vat_fraction(day, vat)), 2)
    except (KeyError, TypeError, ValueError) as exc:
        raise SourceError(src, ErrorKind.PARSE, f"malformed price row: {exc!r}") from exc
    if len(steps) != 1 or next(iter(steps)) not in (900, 3600):
        raise SourceError(src, ErrorKind.PARSE, f"mixed or unexpected slot lengths {sorted(steps)} s")
    return make_series(src, out, steps.pop(), fetched_at)


def parse_spothinta(text: str, fetched_at: datetime) -> RawSeries:
    src = "spothinta"
    rows = _json(text, src)
    if isinstance(rows, dict) and not rows:
        raise SourceError(src, ErrorKind.NO_DATA, "empty answer")
    if not isinstance(rows, list):
        raise SourceError(src, ErrorKind.PARSE, "answer is not a list of prices")
    if not rows:
        raise SourceError(src, ErrorKind.NO_DATA, "answer lists no prices")
    out: dict[int, float] = {}
    try:
        for r in rows:
            t = datetime.fromisoformat(r["DateTime"])
            if t.tzinfo is None:
                raise ValueError(f"DateTime {r['DateTime']!r} has no offset")
            out[to_epoch_s(t)] = round(float(r["PriceNoTax"]) * 1000.0, 2)
    except (KeyError, TypeError, ValueError) as exc:
        raise SourceError(src, ErrorKind.PARSE, f"malformed price row: {exc!r}") from exc
    return make_series(src, out, _step_from(list(out), src), fetched_at)


def parse_elering(text: str, fetched_at: datetime, area: str = "FI") -> RawSeries:
    src = "elering"
    doc = _json(text, src)
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, dict):
        raise SourceError(src, ErrorKind.PARSE, "answer has no 'data' table")
    rows = data.get(area.lower())
    if not rows:
        raise SourceError(src, ErrorKind.NO_DATA, f"no prices for {area}")
    out: dict[int, float] = {}
    try:
        for r in rows:
            out[int(r["timestamp"])] = float(r["price"])
    except (KeyError, TypeError, ValueError) as exc:
        raise SourceError(src, ErrorKind.PARSE, f"malformed price row: {exc!r}") from exc
    return make_series(src, out, _step_from(list(out), src, 3600), fetched_at)


async def fetch_porssisahko(
    client: httpx.AsyncClient,
    *,
    base_url: str,
    fetched_at: datetime,
    timeout_s: float = 10.0,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Sleep | None = None,
    vat: Sequence[VatConfig] = FINNISH_VAT,
) -> RawSeries:
    text = await get_text(
        client,
        "porssisahko",
        base_url.rstrip("/") + "/latest-prices.json",
        timeout_s=timeout_s,
        policy=policy,
        sleep=sleep,
    )
    return parse_porssisahko(text, fetched_at, vat)


async def fetch_spothinta(
    client: httpx.AsyncClient,
    *,
    base_url: str,
    area: str,
    fetched_at: datetime,
    timeout_s: float = 10.0,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Sleep | None = None,
) -> RawSeries:
    text = await get_text(
        client,
        "spothinta",
        base_url.rstrip("/") + "/TodayAndDayForward",
        params={"region": area},
        timeout_s=timeout_s,
        policy=policy,
        sleep=sleep,
    )
    return parse_spothinta(text, fetched_at)


async def fetch_elering(
    client: httpx.AsyncClient,
    *,
    base_url: str,
    area: str,
    start: datetime,
    end: datetime,
    fetched_at: datetime,
    timeout_s: float = 10.0,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Sleep | None = None,
) -> RawSeries:
    params = {"start": iso_z(start), "end": iso_z(end)}
    text = await get_text(
        client,
        "elering",
        base_url.rstrip("/") + "/nps/price",
        params=params,
        timeout_s=timeout_s,
        policy=policy,
        sleep=sleep,
    )
    return parse_elering(text, fetched_at, area)
