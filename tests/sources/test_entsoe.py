"""ENTSO-E A44 parser against real documents, the price CSVs and constructed DST days."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atsd.csvdata import read_prices
from atsd.sources import ErrorKind, SourceError
from atsd.sources.entsoe import parse_a44
from atsd.sources.pricecheck import check_day, split_days
from tests.sources.samples import PRICES_15MIN, fixture, sample

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def csv15() -> dict[int, float]:
    s = read_prices(PRICES_15MIN)
    return dict(zip(s.epoch_s.tolist(), s.values["price_eur_per_mwh"].tolist(), strict=True))


def test_real_2026_03_13_14_equals_csv_rows_exactly(csv15: dict[int, float]) -> None:
    raw = parse_a44(sample("entsoe-a44-fi-2026-03-13_14-pt15m-a03.xml"), NOW)
    assert raw.step_s == 900
    assert raw.n == 192
    assert [csv15[int(t)] for t in raw.epoch_s] == raw.values.tolist()


def test_a03_curve_carries_price_forward_to_period_end() -> None:
    raw = parse_a44(sample("entsoe-a44-fi-2026-10-04_06-pt15m-a03.xml"), NOW)
    assert raw.n == 3 * 96
    day2 = raw.values[96:192]
    # The 2026-10-05 period ends at position 92: positions 93-96 repeat it (0.00).
    assert day2[91] == 0.0
    assert (day2[92:] == day2[91]).all()
    # Position 2 of the first day is omitted: it repeats position 1 (9.99).
    assert raw.values[1] == raw.values[0] == 9.99


def test_a03_gap_inside_period_is_carried() -> None:
    raw = parse_a44(sample("entsoe-a44-nl-2025-04-02-pt60m-a03-gap.xml"), NOW)
    assert raw.step_s == 3600
    assert np.isfinite(raw.values).all()
    assert raw.values[20] == raw.values[19]  # position 21 omitted


def test_a01_spring_dst_day_has_23_positions() -> None:
    raw = parse_a44(sample("entsoe-a44-nl-2016-03-27_28-dst-start-pt60m-a01.xml"), NOW)
    days, rejected = split_days(raw)
    by_day = {d.day: len(d.values) for d in days}
    assert by_day == {date(2016, 3, 27): 23, date(2016, 3, 28): 24}
    assert not rejected


@pytest.mark.parametrize(
    ("name", "day", "n"),
    [
        ("entsoe-a44-fi-2025-10-26-pt15m-a03-100q.xml", date(2025, 10, 26), 100),
        ("entsoe-a44-fi-2026-03-29-pt15m-a03-92q.xml", date(2026, 3, 29), 92),
        ("entsoe-a44-fi-2024-10-27-pt60m-a03-25h.xml", date(2024, 10, 27), 25),
    ],
)
def test_dst_day_slot_counts_are_accepted(name: str, day: date, n: int, csv15: dict[int, float]) -> None:
    raw = parse_a44(fixture(name), NOW)
    days = {d.day: d for d in split_days(raw)[0]}
    assert len(days[day].values) == n
    assert check_day(days[day], days.get(date.fromordinal(day.toordinal() - 1))) is None
    if raw.step_s == 900:
        assert [csv15[int(t)] for t in raw.epoch_s] == raw.values.tolist()


def test_acknowledgement_means_no_data() -> None:
    with pytest.raises(SourceError) as exc:
        parse_a44(sample("entsoe-acknowledgement-no-data-nl.xml"), NOW)
    assert exc.value.kind is ErrorKind.NO_DATA
    assert "999" in str(exc.value)


@pytest.mark.parametrize(
    "text",
    [
        sample("entsoe-a44-fi-2026-03-13_14-pt15m-a03.xml")[:5000],
        "<html><body><h1>502 Bad Gateway</h1></body></html>",
        "<html><head><title>Maintenance</title></head><body>ENTSO-E is down<br></body></html>",
        "",
    ],
)
def test_truncated_or_html_answer_is_a_parse_error(text: str) -> None:
    with pytest.raises(SourceError) as exc:
        parse_a44(text, NOW)
    assert exc.value.kind is ErrorKind.PARSE


def test_a01_missing_position_stays_unknown_and_fails_the_day() -> None:
    text = sample("entsoe-a44-nl-2016-03-27_28-dst-start-pt60m-a01.xml")
    cut = text.replace("<position>5</position>", "<position>5</position>", 1)
    start = cut.index("<Point>\n        <position>5</position>")
    end = cut.index("</Point>", start) + len("</Point>")
    raw = parse_a44(cut[:start] + cut[end:], NOW)
    assert np.isnan(raw.values[4])
    days, _ = split_days(raw)
    assert date(2016, 3, 27) not in {d.day for d in days}


def _a03(prices: list[float]) -> str:
    pts, prev = [], None
    for i, p in enumerate(prices, 1):
        if p != prev:
            pts.append(f"<Point><position>{i}</position><price.amount>{p}</price.amount></Point>")
        prev = p
    return (
        '<Publication_MarketDocument xmlns="urn:x:7:0"><TimeSeries><curveType>A03</curveType><Period>'
        "<timeInterval><start>2026-01-14T23:00Z</start><end>2026-01-15T23:00Z</end></timeInterval>"
        f"<resolution>PT15M</resolution>{''.join(pts)}</Period></TimeSeries></Publication_MarketDocument>"
    )


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from([-0.01, 0.0, 1.5, 12.25, 99.99, 4000.0]), min_size=96, max_size=96))
def test_a03_round_trip_restores_every_position(prices: list[float]) -> None:
    raw = parse_a44(_a03(prices), NOW)
    assert raw.values.tolist() == prices


def test_mixed_resolutions_keep_the_finer_one() -> None:
    period = (
        "<Period><timeInterval><start>2025-09-30T22:00Z</start><end>2025-10-01T22:00Z</end></timeInterval>"
        "<resolution>{res}</resolution><Point><position>1</position><price.amount>{p}</price.amount></Point>"
        "</Period>"
    )
    doc = (
        '<Publication_MarketDocument xmlns="urn:x:7:3">'
        f"<TimeSeries><curveType>A03</curveType>{period.format(res='PT60M', p=10)}</TimeSeries>"
        f"<TimeSeries><curveType>A03</curveType>{period.format(res='PT15M', p=11)}</TimeSeries>"
        "</Publication_MarketDocument>"
    )
    raw = parse_a44(doc, NOW)
    assert raw.step_s == 900
    assert raw.n == 96
    assert set(raw.values.tolist()) == {11.0}


def test_hourly_history_is_repeated_onto_quarter_hours_next_to_15_minute_days() -> None:
    doc = (
        '<Publication_MarketDocument xmlns="urn:x:7:3"><TimeSeries><curveType>A01</curveType><Period>'
        "<timeInterval><start>2025-09-30T21:00Z</start><end>2025-09-30T23:00Z</end></timeInterval>"
        "<resolution>PT60M</resolution><Point><position>1</position><price.amount>5</price.amount></Point>"
        "<Point><position>2</position><price.amount>6</price.amount></Point></Period></TimeSeries>"
        "<TimeSeries><curveType>A03</curveType><Period>"
        "<timeInterval><start>2025-09-30T23:00Z</start><end>2025-10-01T00:00Z</end></timeInterval>"
        "<resolution>PT15M</resolution><Point><position>1</position><price.amount>7</price.amount></Point>"
        "</Period></TimeSeries></Publication_MarketDocument>"
    )
    raw = parse_a44(doc, NOW)
    assert raw.step_s == 900
    assert raw.values.tolist() == [5.0] * 4 + [6.0] * 4 + [7.0] * 4
