"""Fingrid open data: CO2 emission factor, wind power and its forecast, frequency and system state.

``GET {base}/datasets/{id}/data?startTime&endTime&format=json&pageSize&page&sortBy=startTime&sortOrder=asc``
with the ``x-api-key`` header; answer ``{"data": [{"datasetId", "startTime", "endTime", "value"}],
"pagination": {"currentPage", "lastPage"}}``, paged until currentPage == lastPage.
Without an API key nothing is fetched and nothing is logged as an error: grid data is optional.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import httpx
import numpy as np

from atsd.core.timegrid import iso_z, parse_utc, to_epoch_s
from atsd.sources import ErrorKind, RawSeries, SourceError, make_series
from atsd.sources.fetch import RetryPolicy, Sleep, get_text

SOURCE = "fingrid"
CO2_CONSUMPTION = 265  # gCO2/kWh of electricity consumed in Finland, real time (3 min)
WIND_REALTIME = 181  # MW, real time (3 min)
WIND_FORECAST = 245  # MW, forecast updated every 15 min
FREQUENCY = 177  # Hz, real time
SYSTEM_STATE = 209  # power system state: 1 normal, 2 endangered, 3 disturbed, 4 blackout, 5 restoring
MAX_PAGES = 20
AUTH_HINT = ": check [sources.fingrid] api_key"


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        snippet = text.lstrip()[:40].replace("\n", " ")
        raise SourceError(SOURCE, ErrorKind.PARSE, f"answer is not JSON (starts {snippet!r})") from exc


def parse_page(text: str) -> tuple[list[tuple[int, int, float]], int, int]:
    """Rows (start_s, end_s, value) of one page, and (currentPage, lastPage)."""
    doc = _json(text)
    rows = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(rows, list):
        raise SourceError(SOURCE, ErrorKind.PARSE, "answer has no 'data' list")
    out = []
    try:
        for r in rows:
            v = r.get("value")
            out.append(
                (
                    to_epoch_s(parse_utc(r["startTime"])),
                    to_epoch_s(parse_utc(r["endTime"])),
                    float("nan") if v is None else float(v),
                )
            )
        page = doc.get("pagination") or {}
        cur, last = int(page.get("currentPage") or 1), int(page.get("lastPage") or 1)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SourceError(SOURCE, ErrorKind.PARSE, f"malformed row: {exc!r}") from exc
    return out, cur, last


def rows_to_series(rows: list[tuple[int, int, float]], dataset: int, fetched_at: datetime) -> RawSeries:
    """Period values; zero-length rows (instant readings) hold until the next row."""
    if not rows:
        raise SourceError(SOURCE, ErrorKind.NO_DATA, f"dataset {dataset} has no rows in the window")
    starts = np.array(sorted({r[0] for r in rows}), dtype=np.int64)
    lengths = [r[1] - r[0] for r in rows if r[1] > r[0]]
    if lengths:
        step = int(np.median(lengths))
    elif len(starts) > 1:
        step = int(np.median(np.diff(starts)))
    else:
        step = 180
    return make_series(f"{SOURCE}:{dataset}", {r[0]: r[2] for r in rows}, max(60, step), fetched_at)


async def fetch_dataset(
    client: httpx.AsyncClient,
    *,
    base_url: str,
    api_key: str,
    dataset: int,
    start: datetime,
    end: datetime,
    fetched_at: datetime,
    timeout_s: float = 10.0,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Sleep | None = None,
) -> RawSeries:
    rows: list[tuple[int, int, float]] = []
    page = 1
    while True:
        params = {
            "startTime": iso_z(start),
            "endTime": iso_z(end),
            "format": "json",
            "pageSize": "20000",
            "page": str(page),
            "sortBy": "startTime",
            "sortOrder": "asc",
        }
        text = await get_text(
            client,
            SOURCE,
            f"{base_url.rstrip('/')}/datasets/{dataset}/data",
            params=params,
            headers={"x-api-key": api_key},
            timeout_s=timeout_s,
            policy=policy,
            auth_hint=AUTH_HINT,
            sleep=sleep,
        )
        got, cur, last = parse_page(text)
        rows.extend(got)
        if cur >= last or page >= MAX_PAGES:
            break
        page += 1
    return rows_to_series(rows, dataset, fetched_at)


async def fetch_latest(
    client: httpx.AsyncClient,
    *,
    base_url: str,
    api_key: str,
    dataset: int,
    timeout_s: float = 10.0,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Sleep | None = None,
) -> tuple[datetime, float]:
    """The newest value of a dataset and its start time (frequency, system state)."""
    text = await get_text(
        client,
        SOURCE,
        f"{base_url.rstrip('/')}/datasets/{dataset}/data/latest",
        headers={"x-api-key": api_key},
        timeout_s=timeout_s,
        policy=policy,
        auth_hint=AUTH_HINT,
        sleep=sleep,
    )
    doc = _json(text)
    if isinstance(doc, dict) and isinstance(doc.get("data"), list):
        doc = doc["data"][-1] if doc["data"] else None
    if not isinstance(doc, dict) or doc.get("value") is None:
        raise SourceError(SOURCE, ErrorKind.NO_DATA, f"dataset {dataset} has no latest value")
    try:
        return parse_utc(doc["startTime"]), float(doc["value"])
    except (KeyError, TypeError, ValueError) as exc:
        raise SourceError(SOURCE, ErrorKind.PARSE, f"malformed latest value: {exc!r}") from exc
