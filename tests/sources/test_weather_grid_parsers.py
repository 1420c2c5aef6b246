"""Open-Meteo and Fingrid parsers on real and constructed answers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from atsd.core.forecast import GHI, TEMP, WIND
from atsd.core.timegrid import parse_utc, to_epoch_s
from atsd.sources import ErrorKind, SourceError
from atsd.sources.fingrid import parse_page, rows_to_series
from atsd.sources.openmeteo import parse_forecast
from tests.sources.samples import fixture, sample

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


def test_open_meteo_iso_answer_radiation_is_the_preceding_hour_and_wind_in_ms() -> None:
    out = parse_forecast(sample("open-meteo-forecast-temp-radiation-52.52N-13.42E-2023-01-01.json"), NOW)
    temp, ghi, wind = out[TEMP], out[GHI], out[WIND]
    t0 = to_epoch_s(parse_utc("2023-01-01T00:00Z"))
    assert temp.epoch_s[0] == t0
    assert temp.instant
    assert ghi.epoch_s[0] == t0 - 3600
    assert not ghi.instant
    import json

    doc = json.loads(sample("open-meteo-forecast-temp-radiation-52.52N-13.42E-2023-01-01.json"))
    assert wind.values[0] == pytest.approx(doc["hourly"]["wind_speed_10m"][0] / 3.6)


def test_open_meteo_unixtime_answer() -> None:
    out = parse_forecast(fixture("open-meteo-unixtime-helsinki-2023-01-24.json"), NOW)
    assert out[TEMP].n == 72
    assert out[TEMP].epoch_s[0] == to_epoch_s(parse_utc("2023-01-24T00:00Z"))


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("{}", ErrorKind.NO_DATA),
        ('{"error": true, "reason": "Latitude must be in range"}', ErrorKind.HTTP),
        ("<html>502</html>", ErrorKind.PARSE),
        (
            sample("open-meteo-forecast-wind-54.22N-9.70E-2025-12-22.json"),
            ErrorKind.NO_DATA,
        ),  # no temperature
    ],
)
def test_open_meteo_broken_answers(text: str, kind: ErrorKind) -> None:
    with pytest.raises(SourceError) as exc:
        parse_forecast(text, NOW)
    assert exc.value.kind is kind


def test_fingrid_pages_and_rows() -> None:
    rows1, cur1, last1 = parse_page(fixture("fingrid-265-page1.json"))
    rows2, cur2, last2 = parse_page(fixture("fingrid-265-page2.json"))
    assert (cur1, last1, cur2, last2) == (1, 2, 2, 2)
    s = rows_to_series(rows1 + rows2, 265, NOW)
    assert s.n == 72
    assert s.step_s == 3600


def test_fingrid_empty_json_is_a_parse_error() -> None:
    with pytest.raises(SourceError) as exc:
        parse_page("{}")
    assert exc.value.kind is ErrorKind.PARSE
