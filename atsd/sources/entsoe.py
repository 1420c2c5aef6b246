"""ENTSO-E Transparency Platform day-ahead prices (document type A44), EUR/MWh before any tax.

The answer is a ``Publication_MarketDocument``: TimeSeries > Period (timeInterval, resolution PT15M or
PT60M) > Point (position, price.amount), time = period start + (position - 1) × resolution. Periods
are CET/CEST market days (23:00Z-23:00Z in winter). Curve type A03 omits a Point whose price repeats
the previous one, also at the end of a period: the price is carried forward. "No data yet" is an
``Acknowledgement_MarketDocument`` (reason 999), often with HTTP 200, so the root element decides.
Namespaces vary between versions (7:0, 7:3): only local names are matched.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx

from atsd.core.timegrid import parse_utc, to_epoch_s
from atsd.sources import ErrorKind, RawSeries, SourceError, make_series
from atsd.sources.fetch import RetryPolicy, Sleep, get_text

SOURCE = "entsoe"
RATE_LIMIT_BAN_S = 600.0  # a 429 bans the IP and token for 10 minutes

# Bidding zones (EIC codes) by atsd price_area.
EIC = {
    "FI": "10YFI-1--------U",
    "EE": "10Y1001A1001A39I",
    "LV": "10YLV-1001A00074",
    "LT": "10YLT-1001A0008Q",
    "SE1": "10Y1001A1001A44P",
    "SE2": "10Y1001A1001A45N",
    "SE3": "10Y1001A1001A46L",
    "SE4": "10Y1001A1001A47J",
    "NO1": "10YNO-1--------2",
    "NO2": "10YNO-2--------T",
    "NO3": "10YNO-3--------J",
    "NO4": "10YNO-4--------9",
    "NO5": "10Y1001A1001A48H",
    "DK1": "10YDK-1--------W",
    "DK2": "10YDK-2--------M",
}

_DURATION = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?$")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _kids(el: ET.Element, name: str) -> Iterator[ET.Element]:
    return (c for c in el if _local(c.tag) == name)


def _kid(el: ET.Element, name: str) -> ET.Element | None:
    return next(_kids(el, name), None)


def _text(el: ET.Element, path: str) -> str | None:
    cur: ET.Element | None = el
    for part in path.split("/"):
        cur = _kid(cur, part) if cur is not None else None
    return cur.text.strip() if cur is not None and cur.text is not None else None


def resolution_s(text: str) -> int:
    m = _DURATION.match(text.strip())
    if not m or not (m.group(1) or m.group(2)):
        raise ValueError(f"unsupported resolution {text!r}")
    return int(m.group(1) or 0) * 3600 + int(m.group(2) or 0) * 60


def _ack_reason(root: ET.Element) -> str:
    reasons = [f"{_text(r, 'code') or '?'} {_text(r, 'text') or ''}".strip() for r in _kids(root, "Reason")]
    return "; ".join(reasons) or "no reason given"


def parse_a44(text: str, fetched_at: datetime, source: str = SOURCE) -> RawSeries:
    """Prices of an A44 document at its finest resolution (hourly periods are repeated onto it).

    Raises :class:`SourceError`: PARSE for anything that is not a well-formed A44 document, NO_DATA for an
    acknowledgement. A position missing from an A01 curve stays NaN, so that day fails the checks.
    """
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        snippet = text.lstrip()[:40].replace("\n", " ")
        raise SourceError(source, ErrorKind.PARSE, f"answer is not XML ({exc}; starts {snippet!r})") from exc
    kind = _local(root.tag)
    if kind == "Acknowledgement_MarketDocument":
        raise SourceError(source, ErrorKind.NO_DATA, f"no data: {_ack_reason(root)}")
    if kind != "Publication_MarketDocument":
        raise SourceError(source, ErrorKind.PARSE, f"unexpected document {kind!r}")
    periods: list[tuple[int, int, dict[int, float]]] = []  # (step_s, start, {epoch: price})
    try:
        for ts in _kids(root, "TimeSeries"):
            unit = _text(ts, "price_Measure_Unit.name")
            cur = _text(ts, "currency_Unit.name")
            if (unit and unit.upper() != "MWH") or (cur and cur.upper() != "EUR"):
                raise SourceError(source, ErrorKind.PARSE, f"prices in {cur}/{unit}, expected EUR/MWH")
            curve = _text(ts, "curveType") or "A01"
            for period in _kids(ts, "Period"):
                periods.append(_parse_period(period, curve))
    except (ValueError, TypeError) as exc:
        raise SourceError(source, ErrorKind.PARSE, f"malformed A44 document: {exc}") from exc
    if not periods:
        raise SourceError(source, ErrorKind.NO_DATA, "document holds no price periods")
    step = min(p[0] for p in periods)
    out: dict[int, float] = {}
    # Coarser periods first, so that a finer period of the same time wins.
    for p_step, _start, values in sorted(periods, key=lambda p: -p[0]):
        for t, v in values.items():
            for k in range(p_step // step):
                out[t + k * step] = v
    return make_series(source, out, step, fetched_at)


def _parse_period(period: ET.Element, curve: str) -> tuple[int, int, dict[int, float]]:
    start_t = _text(period, "timeInterval/start")
    end_t = _text(period, "timeInterval/end")
    res_t = _text(period, "resolution")
    if not (start_t and end_t and res_t):
        raise ValueError("Period without timeInterval or resolution")
    start, end = to_epoch_s(parse_utc(start_t)), to_epoch_s(parse_utc(end_t))
    step = resolution_s(res_t)
    n = (end - start) // step
    if n <= 0 or (end - start) % step:
        raise ValueError(f"period {start_t}..{end_t} is not a whole number of {res_t}")
    given: dict[int, float] = {}
    for pt in _kids(period, "Point"):
        pos_t, price_t = _text(pt, "position"), _text(pt, "price.amount")
        if pos_t is None or price_t is None:
            raise ValueError("Point without position or price.amount")
        pos = int(pos_t)
        if not 1 <= pos <= n:
            raise ValueError(f"position {pos} outside 1..{n} of period {start_t}")
        given[pos] = float(price_t)
    values: dict[int, float] = {}
    last = float("nan")
    for pos in range(1, n + 1):
        if pos in given:
            last = given[pos]
            values[start + (pos - 1) * step] = last
        elif curve == "A03":
            values[start + (pos - 1) * step] = last  # repeated price omitted: carry forward
        else:
            values[start + (pos - 1) * step] = float("nan")
    return step, start, values


def _on_status(status: int, body: str) -> None:
    if status == 400 and "Acknowledgement_MarketDocument" in body:
        try:
            reason = _ack_reason(ET.fromstring(body))
        except ET.ParseError:
            reason = "unreadable acknowledgement"
        raise SourceError(SOURCE, ErrorKind.HTTP, f"400 Bad Request: {reason}")


def _fmt(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y%m%d%H%M")


async def fetch_prices(
    client: httpx.AsyncClient,
    *,
    base_url: str,
    token: str,
    area: str,
    start: datetime,
    end: datetime,
    fetched_at: datetime,
    timeout_s: float = 10.0,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Sleep | None = None,
) -> RawSeries:
    """Day-ahead prices of ``area`` for the market days overlapping ``start..end`` (UTC)."""
    eic = EIC.get(area)
    if eic is None:
        raise SourceError(SOURCE, ErrorKind.HTTP, f"no EIC code for price_area {area!r}")
    params = {
        "securityToken": token,
        "documentType": "A44",
        "in_Domain": eic,
        "out_Domain": eic,
        "contract_MarketAgreement.type": "A01",  # day-ahead only: no intraday series in the answer
        "periodStart": _fmt(start),
        "periodEnd": _fmt(end),
    }
    try:
        text = await get_text(
            client,
            SOURCE,
            base_url,
            params=params,
            timeout_s=timeout_s,
            policy=policy,
            on_status=_on_status,
            auth_hint=": check [sources.entsoe] token",
            sleep=sleep,
        )
    except SourceError as exc:
        if exc.kind is ErrorKind.RATE_LIMIT:
            # ENTSO-E bans for 10 minutes whatever Retry-After says.
            raise SourceError(
                SOURCE,
                ErrorKind.RATE_LIMIT,
                "429 Too Many Requests: banned for 10 minutes",
                max(RATE_LIMIT_BAN_S, exc.retry_after_s or 0.0),
            ) from exc
        raise
    return parse_a44(text, fetched_at)
