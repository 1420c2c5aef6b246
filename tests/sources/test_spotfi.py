"""Keyless price APIs: units and VAT back to spot EUR/MWh, and their broken answers."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from atsd.config import FINNISH_VAT
from atsd.csvdata import read_prices
from atsd.sources import ErrorKind, SourceError
from atsd.sources.entsoe import parse_a44
from atsd.sources.pricecheck import split_days
from atsd.sources.spotfi import parse_elering, parse_porssisahko, parse_spothinta, vat_fraction
from tests.sources.samples import PRICES_HOURLY, fixture, sample

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


def test_vat_follows_the_finnish_date() -> None:
    assert vat_fraction(date(2024, 8, 31), FINNISH_VAT) == pytest.approx(0.24)
    assert vat_fraction(date(2024, 9, 1), FINNISH_VAT) == pytest.approx(0.255)
    assert vat_fraction(date(2023, 1, 25), FINNISH_VAT) == pytest.approx(0.10)


def test_porssisahko_converts_back_to_the_entsoe_prices_exactly() -> None:
    porssi = parse_porssisahko(fixture("porssisahko-latest-2026-03-13_14.json"), NOW)
    entsoe = parse_a44(sample("entsoe-a44-fi-2026-03-13_14-pt15m-a03.xml"), NOW)
    by_t = dict(zip(porssi.epoch_s.tolist(), porssi.values.tolist(), strict=True))
    assert [by_t[t] for t in entsoe.epoch_s.tolist()] == entsoe.values.tolist()
    days, rejected = split_days(porssi)
    assert [d.day for d in days] == [date(2026, 3, 13), date(2026, 3, 14)]
    assert len(rejected) == 1
    assert rejected[0].edge


def test_porssisahko_uses_the_vat_of_the_slot_date_in_finnish_time() -> None:
    # 2024-08-31T21:00Z is 2024-09-01 00:00 in Helsinki: 25.5 %; one slot earlier is still 24 %.
    text = (
        '{"prices":[{"price":12.55,"startDate":"2024-08-31T21:00:00.000Z","endDate":"2024-08-31T21:15:00.000Z"},'
        '{"price":12.4,"startDate":"2024-08-31T20:45:00.000Z","endDate":"2024-08-31T21:00:00.000Z"}]}'
    )
    raw = parse_porssisahko(text, NOW)
    assert raw.values.tolist() == [100.0, 100.0]


def test_porssisahko_autumn_dst_day_has_100_quarter_hours() -> None:
    raw = parse_porssisahko(fixture("porssisahko-latest-2025-10-26-dst.json"), NOW)
    days = {d.day: len(d.values) for d in split_days(raw)[0]}
    assert days[date(2025, 10, 26)] == 100


def test_spothinta_real_answer_equals_the_csv() -> None:
    raw = parse_spothinta(sample("spot-hinta-fi-today-2023-01-25.json"), NOW)
    csv = read_prices(PRICES_HOURLY)
    ref = dict(zip(csv.epoch_s.tolist(), csv.values["price_eur_per_mwh"].tolist(), strict=True))
    assert raw.step_s == 3600
    assert raw.n == 24
    for t, v in zip(raw.epoch_s.tolist(), raw.values.tolist(), strict=True):
        assert v == pytest.approx(ref[t], abs=0.051)  # 4 decimals of EUR/kWh


def test_elering_is_already_spot_eur_per_mwh() -> None:
    raw = parse_elering(fixture("elering-nps-price-2026-03-13_14.json"), NOW, "FI")
    entsoe = parse_a44(sample("entsoe-a44-fi-2026-03-13_14-pt15m-a03.xml"), NOW)
    assert raw.values.tolist() == entsoe.values.tolist()
    assert raw.step_s == 900


@pytest.mark.parametrize(
    ("parser", "text", "kind"),
    [
        (parse_porssisahko, "{}", ErrorKind.PARSE),
        (parse_porssisahko, '{"prices": []}', ErrorKind.NO_DATA),
        (parse_porssisahko, "<!DOCTYPE html><html>Service Unavailable</html>", ErrorKind.PARSE),
        (
            parse_porssisahko,
            '{"prices": [{"price": "x", "startDate": "2026-01-01T00:00Z"}]}',
            ErrorKind.PARSE,
        ),
        (parse_spothinta, "[]", ErrorKind.NO_DATA),
        (parse_spothinta, "{}", ErrorKind.NO_DATA),
        (parse_spothinta, '[{"DateTime": "2026-01-01T00:00:00", "PriceNoTax": 0.01}]', ErrorKind.PARSE),
        (parse_spothinta, '{"prices":', ErrorKind.PARSE),
    ],
)
def test_broken_keyless_answers_raise_source_error(parser: object, text: str, kind: ErrorKind) -> None:
    with pytest.raises(SourceError) as exc:
        parser(text, NOW)  # type: ignore[operator]
    assert exc.value.kind is kind


def test_elering_without_the_area_is_no_data() -> None:
    with pytest.raises(SourceError) as exc:
        parse_elering('{"success": true, "data": {"ee": []}}', NOW, "FI")
    assert exc.value.kind is ErrorKind.NO_DATA
