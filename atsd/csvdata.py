"""Read the CSV data contracts of the design (prices, weather) and the bundled demo data.

prices: ``time_utc,price_eur_per_mwh`` (15- or 60-minute rows); weather: ``time_utc,temp_c[,ghi_w_m2]``
(hourly is enough). Timestamps are ISO-8601 UTC period starts. Errors name the file, line and column.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import numpy as np

from atsd.core.forecast import GHI, PRICE, TEMP, Forecast, Provenance
from atsd.core.timegrid import Grid, parse_utc, resample_linear, resample_step, to_epoch_s


class DataError(Exception):
    pass


@dataclass(frozen=True)
class Series:
    """A raw series: period starts (epoch s), values, and the step between rows."""

    epoch_s: np.ndarray
    values: dict[str, np.ndarray]
    step_s: int
    name: str

    @property
    def start(self) -> datetime:
        return datetime.fromtimestamp(int(self.epoch_s[0]), tz=UTC)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=int(self.epoch_s[-1] - self.epoch_s[0]) + self.step_s)


def read_csv(path: Path | str, required: tuple[str, ...], text: str | None = None) -> Series:
    name = str(path)
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise DataError(f"{name}: cannot read: {exc.strerror}") from exc
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        raise DataError(f"{name}: empty file")
    header = [h.strip() for h in rows[0]]
    if not header or header[0] != "time_utc":
        raise DataError(f"{name}: line 1: first column must be time_utc (got {header[:1]})")
    for col in required:
        if col not in header:
            raise DataError(f"{name}: line 1: missing column {col!r} (have {', '.join(header)})")
    cols = {h: i for i, h in enumerate(header)}
    times = np.empty(len(rows) - 1, dtype=np.int64)
    vals = {h: np.empty(len(rows) - 1) for h in header[1:]}
    for ln, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise DataError(f"{name}: line {ln}: expected {len(header)} columns, got {len(row)}")
        try:
            times[ln - 2] = to_epoch_s(parse_utc(row[0]))
        except ValueError as exc:
            raise DataError(f"{name}: line {ln}: time_utc {row[0]!r}: {exc}") from None
        for h in header[1:]:
            cell = row[cols[h]].strip()
            try:
                vals[h][ln - 2] = float(cell) if cell else np.nan
            except ValueError:
                raise DataError(f"{name}: line {ln}: column {h}: not a number ({cell!r})") from None
    if len(times) == 0:
        raise DataError(f"{name}: no data rows")
    if np.any(np.diff(times) <= 0):
        bad = int(np.flatnonzero(np.diff(times) <= 0)[0]) + 3
        raise DataError(f"{name}: line {bad}: timestamps must increase")
    step = int(np.min(np.diff(times))) if len(times) > 1 else 3600
    return Series(times, vals, step, name)


def read_prices(path: Path | str, column: str = "price_eur_per_mwh") -> Series:
    return read_csv(path, (column,))


def read_weather(path: Path | str) -> Series:
    return read_csv(path, ("temp_c",))


def forecast_from_series(grid: Grid, prices: Series, weather: Series, source: str,
                         price_column: str = "price_eur_per_mwh") -> Forecast:
    """Prices (period means) and weather (instantaneous temperatures, hourly GHI means) on ``grid``."""
    spot = resample_step(prices.epoch_s, prices.values[price_column], prices.step_s, grid)
    temp = resample_linear(weather.epoch_s, weather.values["temp_c"], grid)
    series = {PRICE: spot, TEMP: temp}
    prov = {PRICE: Provenance(source, None, prices.step_s // 60), TEMP: Provenance(source, None, weather.step_s // 60)}
    if "ghi_w_m2" in weather.values:
        series[GHI] = resample_step(weather.epoch_s, weather.values["ghi_w_m2"], weather.step_s, grid)
        prov[GHI] = Provenance(source, None, weather.step_s // 60)
    return Forecast(grid, series, prov)


DEMO_LABEL = ("demo data: real FI day-ahead prices of 2026-01-19..26 with Helsinki-Vantaa temperatures "
              "of 2023-02-19..26 (a cold week) moved onto those dates")


def demo_series() -> tuple[Series, Series]:
    pkg = resources.files("atsd") / "data"
    prices = read_csv("demo-prices.csv", ("price_eur_per_mwh",), (pkg / "demo-prices.csv").read_text("utf-8"))
    weather = read_csv("demo-weather.csv", ("temp_c",), (pkg / "demo-weather.csv").read_text("utf-8"))
    return prices, weather


def demo_forecast(start: datetime | None, hours: int, step_s: int) -> Forecast:
    """A window of the bundled demo week; times outside it wrap around onto the same week."""
    prices, weather = demo_series()
    data_start = prices.start
    span = int((prices.end - data_start).total_seconds())
    t0 = start or (data_start + timedelta(days=1))
    offset = (to_epoch_s(t0) - to_epoch_s(data_start)) % span
    # Shift the data by whole weeks so that the requested window falls inside it.
    shift = to_epoch_s(t0) - offset - to_epoch_s(data_start)
    grid = Grid.covering(t0, t0 + timedelta(hours=hours), step_s)
    reps = 2 + hours * 3600 // span
    p_t = np.concatenate([prices.epoch_s + shift + j * span for j in range(reps)])
    p_v = np.concatenate([prices.values["price_eur_per_mwh"]] * reps)
    w_t = np.concatenate([weather.epoch_s + shift + j * span for j in range(reps)])
    w_v = np.concatenate([weather.values["temp_c"]] * reps)
    fc = forecast_from_series(grid, Series(p_t, {"price_eur_per_mwh": p_v}, prices.step_s, "demo"),
                              Series(w_t, {"temp_c": w_v}, weather.step_s, "demo"), "demo")
    prov = {k: Provenance("demo", None, p.resolution_min, fallback=False, estimate=False, note=DEMO_LABEL)
            for k, p in fc.provenance.items()}
    return Forecast(fc.grid, fc.series, prov)
