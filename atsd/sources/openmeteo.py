"""Open-Meteo weather forecast at the house: temperature, shortwave radiation (GHI), wind speed.

Asked with ``timeformat=unixtime`` so local-time DST ambiguity never arises (ISO times, as in older
answers, are read with ``utc_offset_seconds``). Temperature and wind are instantaneous samples;
radiation is the mean of the **preceding** hour, so its period starts one step before the stamp.
Wind in km/h (the API's default unit) is converted to m/s.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from atsd.core.forecast import GHI, TEMP, WIND
from atsd.core.timegrid import to_epoch_s
from atsd.sources import ErrorKind, RawSeries, SourceError, make_series
from atsd.sources.fetch import RetryPolicy, Sleep, get_text

SOURCE = "openmeteo"
VARIABLES = {"temperature_2m": TEMP, "shortwave_radiation": GHI, "wind_speed_10m": WIND}


def _epochs(times: list[Any], offset_s: int) -> list[int]:
    out = []
    for t in times:
        if isinstance(t, int | float) and not isinstance(t, bool):
            out.append(int(t))
        elif isinstance(t, str):
            local = datetime.fromisoformat(t)
            if local.tzinfo is None:
                local = local.replace(tzinfo=UTC) - timedelta(seconds=offset_s)
            out.append(to_epoch_s(local))
        else:
            raise ValueError(f"bad time {t!r}")
    return out


def parse_forecast(text: str, fetched_at: datetime) -> dict[str, RawSeries]:
    """Series by atsd name (``temp_c``, ``ghi_w_m2``, ``wind_ms``); at least the temperature."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        snippet = text.lstrip()[:40].replace("\n", " ")
        raise SourceError(SOURCE, ErrorKind.PARSE, f"answer is not JSON (starts {snippet!r})") from exc
    if isinstance(doc, dict) and doc.get("error"):
        raise SourceError(SOURCE, ErrorKind.HTTP, f"error: {doc.get('reason', 'no reason given')}")
    hourly = doc.get("hourly") if isinstance(doc, dict) else None
    if not isinstance(hourly, dict) or not hourly.get("time"):
        raise SourceError(SOURCE, ErrorKind.NO_DATA, "answer has no hourly data")
    units = doc.get("hourly_units") or {}
    try:
        epochs = _epochs(hourly["time"], int(doc.get("utc_offset_seconds") or 0))
        step = min(b - a for a, b in itertools.pairwise(epochs)) if len(epochs) > 1 else 3600
        if step <= 0:
            raise ValueError("times do not increase")
        out: dict[str, RawSeries] = {}
        for var, name in VARIABLES.items():
            vals = hourly.get(var)
            if vals is None:
                continue
            if len(vals) != len(epochs):
                raise ValueError(f"{var} has {len(vals)} values for {len(epochs)} times")
            scale = 1 / 3.6 if var == "wind_speed_10m" and units.get(var) == "km/h" else 1.0
            pairs = {}
            for t, v in zip(epochs, vals, strict=True):
                x = float("nan") if v is None else float(v) * scale
                if var == "shortwave_radiation":
                    pairs[t - step] = x  # mean of the preceding hour
                else:
                    pairs[t] = x
            out[name] = make_series(SOURCE, pairs, step, fetched_at, instant=var != "shortwave_radiation")
    except (TypeError, ValueError) as exc:
        raise SourceError(SOURCE, ErrorKind.PARSE, f"malformed hourly data: {exc}") from exc
    if TEMP not in out:
        raise SourceError(SOURCE, ErrorKind.NO_DATA, "answer has no temperature_2m")
    temp = out[TEMP].values
    if not ((temp[temp == temp] > -70) & (temp[temp == temp] < 60)).all():
        raise SourceError(SOURCE, ErrorKind.INVALID, "temperature outside -70..60 °C")
    return out


async def fetch_forecast(
    client: httpx.AsyncClient,
    *,
    base_url: str,
    latitude: float,
    longitude: float,
    forecast_days: int,
    fetched_at: datetime,
    timeout_s: float = 10.0,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Sleep | None = None,
) -> dict[str, RawSeries]:
    params = {
        "latitude": f"{latitude:.4f}",
        "longitude": f"{longitude:.4f}",
        "hourly": ",".join(VARIABLES),
        "forecast_days": str(forecast_days),
        "past_days": "1",
        "wind_speed_unit": "ms",
        "timeformat": "unixtime",
        "timezone": "GMT",
    }
    text = await get_text(
        client, SOURCE, base_url, params=params, timeout_s=timeout_s, policy=policy, sleep=sleep
    )
    return parse_forecast(text, fetched_at)
