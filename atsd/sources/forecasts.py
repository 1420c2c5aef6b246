"""Forecast assembly: fetch, check, cache and merge every series onto the planner's UTC grid.

A dead link must never stop the heating and a wrong price must never be believed, so each series
walks a fallback chain and says where it came from (``Provenance``: source, fetched at, resolution,
``fallback`` true whenever the primary source did not supply it, ``estimate`` when any slot is made up):

- price: the sources of ``[sources] price_order`` that are usable (enabled, with a token where one is
  needed, serving the price area); the first is the primary. Then the on-disk cache, then the price
  estimate (daily profile of the last known days). Prices are checked per CET market day
  (:mod:`atsd.sources.pricecheck`); a rejected or missing day is never cached. The primary and the first
  alternate are both fetched and cross-checked; a disagreement is logged once and the primary wins.
- weather (``temp_c``, ``ghi_w_m2``, ``wind_ms``): Open-Meteo, then cache, then persistence blended with
  the diurnal profile (radiation estimate: 0 W/m², which never promises free solar heat).
- grid (``co2_g_per_kwh``, ``wind_power_mw``): Fingrid when an API key is set, then cache; CO2 has no
  published forecast, so future slots are a labelled estimate from recent days and the wind forecast.

API for the daemon (every method takes ``now``, an aware UTC datetime; the service never reads the clock)::

    async with ForecastService(cfg) as svc:    # owns one httpx.AsyncClient; loads the cache in a thread
        await svc.refresh_prices(now)           # -> bool: a new price day was accepted
        await svc.refresh_weather(now)          # -> bool
        await svc.refresh_grid(now)             # -> bool (no request, no log without a Fingrid key)
        fc = svc.assemble(now, hours=48, outdoor_c=None)   # Forecast on cfg.planner.slot_minutes
        svc.next_price_poll(now)                # -> datetime: now while today is missing; 13:00 CET
                                                #    until tomorrow's prices arrive; then tomorrow 13:00 CET
        svc.next_weather_poll(now)              # -> datetime: hourly (5 min after a failure, backing off)
        svc.next_grid_poll(now)                 # -> datetime: every 15 min (a day ahead without a key)
        svc.health()                            # -> {source: {enabled, note, last_success, last_attempt,
                                                #    last_error, last_error_at, consecutive_failures,
                                                #    banned_until, fallback_in_use}}
        svc.grid_status()                       # -> {frequency_hz, system_state, stress, ...} (maybe empty)

Constructor options for tests and the daemon: ``cache_dir`` (True: ``[sources] cache_dir`` or
``<state_dir>/cache``; a Path; None: memory only), ``client`` (an httpx.AsyncClient the caller owns),
``sleep`` (the retry wait, e.g. the virtual clock's), ``policy`` (:class:`RetryPolicy`), ``rng``.

The refresh methods never raise for a source failure: they log one line per failure episode (and one
when the source recovers), keep what they had, and can run concurrently. ``assemble`` only reads memory
and returns every PRICE and TEMP slot finite; call it from the event loop (about 10 ms for 96 h on a PC),
not from another thread while a refresh may be changing what it reads. httpx logs each request at
INFO; the tokens in those lines are replaced by ``***``, but a daemon will usually set the ``httpx``
logger to WARNING.
``forecast_for_cli(cfg, start, end)`` is the synchronous wrapper used by ``atsd plan``/``atsd forecast``;
never call it from inside a running event loop.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from atsd.config import Config, read_secret
from atsd.core.forecast import CO2, GHI, PRICE, TEMP, WIND, WIND_POWER, Forecast, Provenance
from atsd.core.timegrid import (
    Grid,
    from_epoch_s,
    iso_z,
    parse_utc,
    resample_linear,
    resample_step,
    to_epoch_s,
)
from atsd.sources import ErrorKind, RawSeries, SourceError, entsoe, fingrid, openmeteo, spotfi
from atsd.sources.cache import Cache
from atsd.sources.estimates import estimate_co2, fill_prices, fill_weather
from atsd.sources.fetch import RetryPolicy, Sleep
from atsd.sources.pricecheck import (
    MARKET_TZ,
    PriceDay,
    check_day,
    cross_check,
    day_bounds_s,
    market_day,
    split_days,
)

log = logging.getLogger(__name__)

PRICE_SOURCES = ("entsoe", "porssisahko", "spothinta", "elering")
PRICE_HISTORY_DAYS = 14  # accepted days kept in the cache (the estimate uses the last 7)
PRICE_RETRY_S = 300  # between polls while tomorrow's prices are awaited
PRICE_RETRY_MAX_S = 1800
WEATHER_EVERY_S = 3600
GRID_EVERY_S = 900
GRID_HISTORY_S = 3 * 86400
CACHE_PRICES = "prices"
CACHE_WEATHER = "weather"
CACHE_GRID = "grid"


@dataclass
class SourceHealth:
    """What the status page shows per source."""

    name: str
    enabled: bool = True
    note: str = ""
    last_success: datetime | None = None
    last_attempt: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    consecutive_failures: int = 0
    banned_until: datetime | None = None
    fallback_in_use: bool = False

    def as_json(self) -> dict[str, object]:
        def t(x: datetime | None) -> str | None:
            return iso_z(x) if x else None

        return {
            "enabled": self.enabled,
            "note": self.note,
            "last_success": t(self.last_success),
            "last_attempt": t(self.last_attempt),
            "last_error": self.last_error,
            "last_error_at": t(self.last_error_at),
            "consecutive_failures": self.consecutive_failures,
            "banned_until": t(self.banned_until),
            "fallback_in_use": self.fallback_in_use,
        }


def default_cache_dir(cfg: Config) -> Path:
    return cfg.sources.cache_dir or cfg.daemon.state_dir / "cache"


class ForecastService:
    """Fetchers, checks, cache and fallback chain behind one object (see the module docstring)."""

    def __init__(
        self,
        cfg: Config,
        *,
        cache_dir: Path | bool | None = True,
        client: httpx.AsyncClient | None = None,
        sleep: Sleep | None = None,
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
    ):
        self.cfg = cfg
        self.tz = cfg.device.tz
        self.area = cfg.device.price_area
        self.step_s = cfg.planner.slot_minutes * 60
        directory = default_cache_dir(cfg) if cache_dir is True else (cache_dir or None)
        self.cache = Cache(directory if isinstance(directory, Path) else None)
        self._client = client
        self._own_client = client is None
        self._sleep = sleep
        self._policy = policy or RetryPolicy()
        self._rng = rng or random.Random()
        src = cfg.sources
        self._token = read_secret(src.entsoe.token, src.entsoe.token_file, "ATSD_ENTSOE_TOKEN")
        self._fingrid_key = read_secret(src.fingrid.api_key, src.fingrid.api_key_file, "ATSD_FINGRID_API_KEY")
        self._health: dict[str, SourceHealth] = {}
        self.price_order: list[str] = []
        for name in src.price_order:
            h = self._health[name] = SourceHealth(name)
            why = self._price_unusable(name)
            if why:
                h.enabled, h.note = False, why
            else:
                self.price_order.append(name)
        self._health["openmeteo"] = SourceHealth(
            "openmeteo",
            enabled=src.openmeteo.enabled,
            note="" if src.openmeteo.enabled else "disabled in config",
        )
        fg_note = (
            ""
            if src.fingrid.enabled and self._fingrid_key
            else "disabled in config"
            if not src.fingrid.enabled
            else "no api_key: no grid data (set [sources.fingrid] api_key, api_key_file "
            "or ATSD_FINGRID_API_KEY)"
        )
        self._health["fingrid"] = SourceHealth("fingrid", enabled=not fg_note, note=fg_note)
        # Accepted price days by live source, and those loaded from the disk cache.
        self._days: dict[str, dict[date, PriceDay]] = {n: {} for n in self.price_order}
        self._cached_days: dict[date, PriceDay] = {}
        self._weather: dict[str, RawSeries] = {}
        self._weather_cached: dict[str, RawSeries] = {}
        self._grid: dict[int, RawSeries] = {}
        self._grid_cached: dict[int, RawSeries] = {}
        self._grid_status: dict[str, object] = {}
        self._said: set[str] = set()  # rejections and disagreements already logged
        self._locks = {k: asyncio.Lock() for k in ("prices", "weather", "grid")}
        self._attempt: dict[str, datetime] = {}
        self._failures: dict[str, int] = {"prices": 0, "weather": 0, "grid": 0}

    # -- lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> ForecastService:
        if self._client is None:
            self._client = httpx.AsyncClient(
                headers={"User-Agent": "atsd (heat-pump optimizer)"}, follow_redirects=True
            )
            self._own_client = True
        await asyncio.to_thread(self.load_cache)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("ForecastService is used outside 'async with'")
        return self._client

    def _price_unusable(self, name: str) -> str:
        src = self.cfg.sources
        if name == "entsoe":
            if not src.entsoe.enabled:
                return "disabled in config"
            if not self._token:
                return "no token (set [sources.entsoe] token, token_file or ATSD_ENTSOE_TOKEN)"
            if self.area not in entsoe.EIC:
                return f"no EIC code for price_area {self.area}"
            return ""
        sub = getattr(src, name)
        if not sub.enabled:
            return "disabled in config"
        if self.area not in spotfi.AREAS[name]:
            return f"does not publish {self.area} prices"
        return ""

    # -- episodes --------------------------------------------------------------------------------

    def _fail(self, name: str, err: SourceError, now: datetime) -> None:
        h = self._health[name]
        if h.consecutive_failures == 0:
            log.warning(
                "%s; using the next source in the chain until it answers again.",
                err,
                extra={"device_id": self.cfg.device.device_id},
            )
        h.consecutive_failures += 1
        h.last_error, h.last_error_at = str(err), now
        if err.kind is ErrorKind.RATE_LIMIT:
            h.banned_until = now + timedelta(seconds=err.retry_after_s or 60.0)

    def _ok(self, name: str, now: datetime) -> None:
        h = self._health[name]
        if h.consecutive_failures:
            log.info(
                "%s answers again after %d failed attempt(s).",
                name,
                h.consecutive_failures,
                extra={"device_id": self.cfg.device.device_id},
            )
        h.consecutive_failures = 0
        h.last_success = now

    def _say_once(self, key: str, level: int, msg: str) -> None:
        if key not in self._said:
            self._said.add(key)
            log.log(level, msg, extra={"device_id": self.cfg.device.device_id})

    async def _guard(self, name: str, now: datetime, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run one fetch; a SourceError is recorded (one log line per episode) and becomes None."""
        h = self._health[name]
        h.last_attempt = now
        try:
            result = await coro
        except SourceError as exc:
            self._fail(name, exc, now)
            return None
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug in a parser must not stop the heating: log it fully, once
            if h.consecutive_failures == 0:
                log.exception("%s: unexpected error while fetching", name)
            self._fail(
                name, SourceError(name, ErrorKind.PARSE, f"unexpected {type(exc).__name__}: {exc}"), now
            )
            return None
        self._ok(name, now)
        return result

    def _banned(self, name: str, now: datetime) -> bool:
        until = self._health[name].banned_until
        return until is not None and now < until

    # -- prices ----------------------------------------------------------------------------------

    def price_day(self, d: date) -> PriceDay | None:
        """The accepted day by chain priority (live sources in order, then the cache)."""
        for name in self.price_order:
            day = self._days[name].get(d)
            if day is not None:
                return day
        return self._cached_days.get(d)

    def _fetch_price(
        self, name: str, now: datetime, start: datetime, end: datetime
    ) -> Coroutine[Any, Any, RawSeries]:
        src, kw = self.cfg.sources, self._fetch_kw()
        if name == "entsoe":
            assert self._token is not None
            return entsoe.fetch_prices(
                self.client,
                base_url=src.entsoe.base_url,
                token=self._token,
                area=self.area,
                start=start,
                end=end,
                fetched_at=now,
                **kw,
            )
        if name == "porssisahko":
            return spotfi.fetch_porssisahko(
                self.client, base_url=src.porssisahko.base_url, fetched_at=now, vat=self.cfg.tariff.vat, **kw
            )
        if name == "spothinta":
            return spotfi.fetch_spothinta(
                self.client, base_url=src.spothinta.base_url, area=self.area, fetched_at=now, **kw
            )
        return spotfi.fetch_elering(
            self.client,
            base_url=src.elering.base_url,
            area=self.area,
            start=start,
            end=end,
            fetched_at=now,
            **kw,
        )

    def _fetch_kw(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"timeout_s": self.cfg.sources.timeout_s, "policy": self._policy}
        if self._sleep is not None:
            kw["sleep"] = self._sleep
        return kw

    def _accept(self, name: str, raw: RawSeries) -> tuple[int, int]:
        """Check each market day of ``raw``; keep the good ones. Returns (accepted, rejected)."""
        days, rejects = split_days(raw)
        bad = 0
        for r in rejects:
            if r.edge:
                log.debug("%s", r)
            else:
                bad += 1
                self._say_once(f"reject:{r}", logging.WARNING, f"{r}.")
        good = 0
        for day in sorted(days, key=lambda d: d.day):
            prev = self._days[name].get(day.day - timedelta(days=1)) or self.price_day(
                day.day - timedelta(days=1)
            )
            why = check_day(day, prev)
            if why:
                bad += 1
                self._say_once(
                    f"reject:{name}:{day.day}:{why}",
                    logging.WARNING,
                    f"{name}: prices of market day {day.day} rejected: {why}.",
                )
                continue
            self._days[name][day.day] = day
            good += 1
        return good, bad

    async def refresh_prices(
        self, now: datetime, start: datetime | None = None, end: datetime | None = None
    ) -> bool:
        """Fetch prices for yesterday..tomorrow (CET market days), or the market days of ``start..end``.

        The primary and the first alternate are always asked (for the cross-check); further alternates
        only while a needed day is still missing. Returns True if a new day was accepted.
        """
        async with self._locks["prices"]:
            self._attempt["prices"] = now
            today = market_day(to_epoch_s(now))
            first = market_day(to_epoch_s(start)) if start else today - timedelta(days=1)
            if start is None and sum(1 for k in self._all_days() if k < today) < 3:
                first = today - timedelta(days=7)  # fresh install: history for the estimate
            last = market_day(to_epoch_s(end) - 1) if end else today + timedelta(days=1)
            w0, w1 = from_epoch_s(day_bounds_s(first)[0]), from_epoch_s(day_bounds_s(last)[1])
            needed = {today} if start is None else set()
            if start is None and now >= self._poll_start(today):
                needed.add(today + timedelta(days=1))
            before = {(n, d) for n in self.price_order for d in self._days[n]}
            for i, name in enumerate(self.price_order):
                missing = any(all(d not in self._days[n] for n in self.price_order) for d in needed)
                if i >= 2 and not missing:
                    break
                if self._banned(name, now):
                    continue
                raw = await self._guard(name, now, self._fetch_price(name, now, w0, w1))
                if raw is None:
                    continue
                good, bad = self._accept(name, raw)
                if good == 0 and bad:
                    self._fail(
                        name, SourceError(name, ErrorKind.INVALID, "every price day failed the checks"), now
                    )
            self._cross_check()
            self._prune(min(today, first))
            after = {(n, d) for n in self.price_order for d in self._days[n]}
            new = bool(after - before)
            ok = any(self._health[n].last_success == now for n in self.price_order)
            self._failures["prices"] = 0 if ok else self._failures["prices"] + 1
            if new:
                await asyncio.to_thread(self._save_prices, today)
            return new

    def _prune(self, today: date) -> None:
        """Forget days older than the history the estimate and the cache keep (a daemon runs for months)."""
        oldest = today - timedelta(days=PRICE_HISTORY_DAYS)
        for days in (*self._days.values(), self._cached_days):
            for d in [d for d in days if d < oldest]:
                del days[d]
        if len(self._said) > 500:
            self._said.clear()

    def _cross_check(self) -> None:
        if len(self.price_order) < 2:
            return
        primary = self.price_order[0]
        for d, day in self._days[primary].items():
            for other in self.price_order[1:]:
                o = self._days[other].get(d)
                if o is None:
                    continue
                msg = cross_check(day, o)
                if msg:
                    self._say_once(f"disagree:{other}:{d}", logging.WARNING, msg + ".")

    def _all_days(self) -> set[date]:
        out = set(self._cached_days)
        for n in self.price_order:
            out.update(self._days[n])
        return out

    def _save_prices(self, today: date) -> None:
        keep = {
            d: self.price_day(d) for d in self._all_days() if d >= today - timedelta(days=PRICE_HISTORY_DAYS)
        }
        doc = {
            "area": self.area,
            "days": {
                d.isoformat(): {
                    "source": day.source,
                    "fetched_at": iso_z(day.fetched_at),
                    "start_s": day.start_s,
                    "step_s": day.step_s,
                    "values": [float(x) for x in day.values],
                }
                for d, day in sorted(keep.items())
                if day is not None
            },
        }
        self.cache.save(CACHE_PRICES, doc)

    # -- weather and grid ------------------------------------------------------------------------

    async def refresh_weather(self, now: datetime) -> bool:
        """Fetch Open-Meteo at the device's coordinates (yesterday and ``forecast_days`` ahead)."""
        om = self.cfg.sources.openmeteo
        if not om.enabled:
            return False
        async with self._locks["weather"]:
            self._attempt["weather"] = now
            got = await self._guard(
                "openmeteo",
                now,
                openmeteo.fetch_forecast(
                    self.client,
                    base_url=om.base_url,
                    latitude=self.cfg.device.latitude,
                    longitude=self.cfg.device.longitude,
                    forecast_days=om.forecast_days,
                    fetched_at=now,
                    **self._fetch_kw(),
                ),
            )
            if got is None:
                self._failures["weather"] += 1
                return False
            self._failures["weather"] = 0
            self._weather = got
            await asyncio.to_thread(self._save_weather)
            return True

    def _save_weather(self) -> None:
        self.cache.save(
            CACHE_WEATHER,
            {
                "lat": self.cfg.device.latitude,
                "lon": self.cfg.device.longitude,
                "series": {k: _series_doc(v) for k, v in self._weather.items()},
            },
        )

    async def refresh_grid(self, now: datetime) -> bool:
        """Fetch Fingrid CO2 (265), wind power (181) and its forecast (245), frequency and system state."""
        fg = self.cfg.sources.fingrid
        if not self._health["fingrid"].enabled or self._fingrid_key is None:
            return False
        api_key: str = self._fingrid_key
        async with self._locks["grid"]:
            self._attempt["grid"] = now
            start, end = now - timedelta(seconds=GRID_HISTORY_S), now + timedelta(days=3)

            async def all_sets() -> dict[int, RawSeries]:
                out: dict[int, RawSeries] = {}
                for ds, t1 in (
                    (fingrid.CO2_CONSUMPTION, now),
                    (fingrid.WIND_REALTIME, now),
                    (fingrid.WIND_FORECAST, end),
                ):
                    try:
                        out[ds] = await fingrid.fetch_dataset(
                            self.client,
                            base_url=fg.base_url,
                            api_key=api_key,
                            dataset=ds,
                            start=start,
                            end=t1,
                            fetched_at=now,
                            **self._fetch_kw(),
                        )
                    except SourceError as exc:
                        if exc.kind is not ErrorKind.NO_DATA:
                            raise
                status: dict[str, object] = {}
                for ds, key in ((fingrid.FREQUENCY, "frequency_hz"), (fingrid.SYSTEM_STATE, "system_state")):
                    try:
                        t, v = await fingrid.fetch_latest(
                            self.client,
                            base_url=fg.base_url,
                            api_key=api_key,
                            dataset=ds,
                            **{**self._fetch_kw(), "policy": RetryPolicy(attempts=1)},
                        )
                        status[key], status[f"{key}_at"] = v, iso_z(t)
                    except SourceError as exc:
                        if exc.kind in (ErrorKind.AUTH, ErrorKind.RATE_LIMIT):
                            raise
                if "system_state" in status:
                    status["stress"] = status["system_state"] != 1.0
                self._grid_status = status
                return out

            got = await self._guard("fingrid", now, all_sets())
            if got is None:
                self._failures["grid"] += 1
                return False
            self._failures["grid"] = 0
            self._grid.update(got)
            await asyncio.to_thread(
                self.cache.save,
                CACHE_GRID,
                {"series": {str(k): _series_doc(v) for k, v in self._grid.items()}},
            )
            return True

    def grid_status(self) -> dict[str, object]:
        """Latest grid frequency (Hz), power system state (1 normal .. 5) and ``stress`` (state >= 2)."""
        return dict(self._grid_status)

    # -- cache -----------------------------------------------------------------------------------

    def load_cache(self) -> None:
        """Read the disk cache (blocking; ``__aenter__`` runs it in a thread). Damaged files are ignored."""
        doc = self.cache.load(CACHE_PRICES)
        if doc and doc.get("area") == self.area:
            for key, d in (doc.get("days") or {}).items():
                try:
                    day = PriceDay(
                        date.fromisoformat(key),
                        int(d["start_s"]),
                        int(d["step_s"]),
                        np.array(d["values"], dtype=np.float64),
                        str(d["source"]),
                        parse_utc(d["fetched_at"]),
                    )
                except (KeyError, TypeError, ValueError):
                    continue
                if day.start_s == day_bounds_s(day.day)[0] and check_day(day, None) is None:
                    self._cached_days[day.day] = day
        doc = self.cache.load(CACHE_WEATHER)
        if doc and doc.get("lat") == self.cfg.device.latitude and doc.get("lon") == self.cfg.device.longitude:
            self._weather_cached = _series_from_docs(doc.get("series"))
        doc = self.cache.load(CACHE_GRID)
        if doc:
            self._grid_cached = {int(k): v for k, v in _series_from_docs(doc.get("series")).items()}

    # -- assembly --------------------------------------------------------------------------------

    def assemble(
        self,
        now: datetime,
        hours: float | None = None,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        step_s: int | None = None,
        outdoor_c: float | None = None,
    ) -> Forecast:
        """The forecast on the planner grid from ``start`` (default ``now``) for ``hours`` (or to ``end``).

        Without ``hours`` or ``end`` the window runs as far as published prices reach (at least one
        hour). ``outdoor_c`` (a sensor reading at ``now``) anchors the temperature estimate.
        Pure: reads only what is held in memory; every PRICE and TEMP slot is finite.
        """
        step = step_s or self.step_s
        t0 = start or now
        if end is None:
            if hours is None:
                held = (self.price_day(d) for d in self._all_days())
                reach = max((day.end_s for day in held if day is not None), default=0)
                end = max(from_epoch_s(reach), t0 + timedelta(hours=1))
            else:
                end = t0 + timedelta(hours=hours)
        grid = Grid.covering(t0, end, step)
        series: dict[str, np.ndarray] = {}
        prov: dict[str, Provenance] = {}
        est: dict[str, np.ndarray] = {}
        series[PRICE], prov[PRICE], est[PRICE] = self._assemble_price(grid)
        for name in (TEMP, GHI, WIND):
            got = self._assemble_weather(grid, name, now, outdoor_c if name == TEMP else None)
            if got is not None:
                series[name], prov[name], est[name] = got
        for name in (CO2, WIND_POWER):
            got = self._assemble_grid(grid, name, now)
            if got is not None:
                series[name], prov[name], est[name] = got
        for name in self.price_order:
            self._health[name].fallback_in_use = prov[PRICE].fallback
        self._health["openmeteo"].fallback_in_use = prov[TEMP].fallback
        return Forecast(grid, series, prov, est)

    def _price_on(self, grid: Grid) -> tuple[np.ndarray, list[str], list[PriceDay]]:
        vals = np.full(grid.n, np.nan)
        labels = [""] * grid.n
        used: list[PriceDay] = []
        if grid.n == 0:
            return vals, labels, used
        d, last = market_day(to_epoch_s(grid.start)), market_day(to_epoch_s(grid.end) - 1)
        while d <= last:
            day = self.price_day(d)
            if day is not None:
                v = resample_step(day.epoch_s(), day.values, day.step_s, grid)
                put = np.isfinite(v) & ~np.isfinite(vals)
                if put.any():
                    vals[put] = v[put]
                    live = any(self._days[n].get(d) is day for n in self.price_order)
                    label = day.source if live else f"cache({day.source})"
                    for i in np.flatnonzero(put):
                        labels[i] = label
                    used.append(day)
            d += timedelta(days=1)
        return vals, labels, used

    def _assemble_price(self, grid: Grid) -> tuple[np.ndarray, Provenance, np.ndarray]:
        vals, labels, used = self._price_on(grid)
        hist = Grid(grid.start - timedelta(days=7), grid.step_s, 7 * 86400 // grid.step_s)
        hist_v, _, _ = self._price_on(hist)
        known_after = np.isfinite(vals)
        # Known days inside the window also teach the profile (e.g. today while tomorrow is missing).
        hist_all = Grid(hist.start, grid.step_s, hist.n + grid.n)
        filled, mask, note = fill_prices(
            grid, vals, self.tz, hist_all, np.concatenate([hist_v, np.where(known_after, vals, np.nan)])
        )
        for i in np.flatnonzero(mask):
            labels[i] = "estimate"
        primary = self.price_order[0] if self.price_order else ""
        notes = [note] if note else []
        if not self.price_order:
            notes.append("no usable price source configured")
        return filled, self._provenance(labels, used, primary, grid, notes), mask

    def _provenance(
        self, labels: list[str], used: list[Any], primary: str, grid: Grid, notes: list[str]
    ) -> Provenance:
        order: list[str] = []
        for lab in labels:
            if lab and lab not in order:
                order.append(lab)
        fetched = [u.fetched_at for u in used]
        steps = [u.step_s for u in used]
        return Provenance(
            source="+".join(order) or "none",
            fetched_at=min(fetched) if fetched else None,
            resolution_min=(min(steps) if steps else grid.step_s) // 60,
            fallback=any(lab != primary for lab in labels),
            estimate="estimate" in order,
            note="; ".join(notes),
        )

    def _assemble_weather(
        self, grid: Grid, name: str, now: datetime, outdoor_c: float | None
    ) -> tuple[np.ndarray, Provenance, np.ndarray] | None:
        live, cached = self._weather.get(name), self._weather_cached.get(name)
        if name != TEMP and live is None and cached is None:
            return None
        vals, labels, used = self._layer(grid, [(live, "openmeteo"), (cached, "cache(openmeteo)")])
        hist = Grid(grid.start - timedelta(days=2), grid.step_s, 2 * 86400 // grid.step_s)
        hist_v, _, _ = self._layer(hist, [(live, ""), (cached, "")])
        notes: list[str] = []
        if name == GHI:
            mask = ~np.isfinite(vals)
            filled = np.where(mask, 0.0, vals)
            if mask.any():
                notes.append("radiation estimate: 0 W/m² where unknown (no solar gain assumed)")
        else:
            anchor = (to_epoch_s(now), outdoor_c) if outdoor_c is not None else None
            filled, mask, note = fill_weather(grid, vals, self.tz, hist, hist_v, anchor, normal=name == TEMP)
            if note:
                notes.append(note)
        for i in np.flatnonzero(mask):
            labels[i] = "estimate"
        if name == WIND:
            filled = np.where(np.isfinite(filled), np.maximum(filled, 0.0), filled)
        return filled, self._provenance(labels, used, "openmeteo", grid, notes), mask

    @staticmethod
    def _layer(
        grid: Grid, layers: list[tuple[RawSeries | None, str]]
    ) -> tuple[np.ndarray, list[str], list[RawSeries]]:
        vals = np.full(grid.n, np.nan)
        labels = [""] * grid.n
        used: list[RawSeries] = []
        for raw, label in layers:
            if raw is None or raw.n == 0:
                continue
            if raw.instant:
                v = resample_linear(raw.epoch_s, raw.values, grid, max_gap_s=max(3 * 3600, 2 * raw.step_s))
            else:
                v = resample_step(raw.epoch_s, raw.values, raw.step_s, grid)
            put = np.isfinite(v) & ~np.isfinite(vals)
            if put.any():
                vals[put] = v[put]
                for i in np.flatnonzero(put):
                    labels[i] = label
                used.append(raw)
        return vals, labels, used

    def _assemble_grid(
        self, grid: Grid, name: str, now: datetime
    ) -> tuple[np.ndarray, Provenance, np.ndarray] | None:
        def pick(ds: int) -> list[tuple[RawSeries | None, str]]:
            return [(self._grid.get(ds), "fingrid"), (self._grid_cached.get(ds), "cache(fingrid)")]

        if name == WIND_POWER:
            layers = pick(fingrid.WIND_REALTIME) + pick(fingrid.WIND_FORECAST)
            if all(r is None for r, _ in layers):
                return None
            vals, labels, used = self._layer(grid, layers)
            return vals, self._provenance(labels, used, "fingrid", grid, []), np.zeros(grid.n, dtype=bool)
        layers = pick(fingrid.CO2_CONSUMPTION)
        if all(r is None for r, _ in layers):
            return None
        vals, labels, used = self._layer(grid, layers)
        hist = Grid(grid.start - timedelta(days=3), grid.step_s, 3 * 86400 // grid.step_s)
        co2_h, _, _ = self._layer(hist, layers)
        wind_h, _, _ = self._layer(hist, pick(fingrid.WIND_REALTIME) + pick(fingrid.WIND_FORECAST))
        wind_f, _, _ = self._layer(grid, pick(fingrid.WIND_FORECAST))
        est, note = estimate_co2(grid, self.tz, hist, co2_h, wind_h, wind_f)
        future = ~np.isfinite(vals) & np.isfinite(est) & (grid.epoch_s() >= to_epoch_s(now) - grid.step_s)
        vals = np.where(future, est, vals)
        for i in np.flatnonzero(future):
            labels[i] = "estimate"
        return vals, self._provenance(labels, used, "fingrid", grid, [note] if future.any() else []), future

    # -- timing and health -----------------------------------------------------------------------

    def _poll_start(self, d: date) -> datetime:
        return datetime.combine(d, self.cfg.sources.price_poll_start_cet, tzinfo=MARKET_TZ).astimezone(UTC)

    def _retry_after(self, kind: str, now: datetime, base_s: float, max_s: float) -> datetime:
        last = self._attempt.get(kind)
        if last is None:
            return now
        k = self._failures[kind]
        wait = base_s if k == 0 else min(max_s, base_s * 2.0 ** (k - 1))
        return max(now, last + timedelta(seconds=wait))

    def next_price_poll(self, now: datetime) -> datetime:
        """When to call :meth:`refresh_prices` next.

        Today's prices missing: now (then every 5 min, backing off to 30 min on failures). Otherwise
        from ``price_poll_start_cet`` (13:00 CET) until tomorrow's prices are held, then tomorrow at
        that time.
        """
        today = market_day(to_epoch_s(now))
        start_today = self._poll_start(today)
        last = self._attempt.get("prices")
        if self.price_day(today) is None:
            return self._retry_after("prices", now, PRICE_RETRY_S, PRICE_RETRY_MAX_S)
        if self.price_day(today + timedelta(days=1)) is not None:
            return self._poll_start(today + timedelta(days=1))
        if now < start_today:
            return start_today
        if last is None or last < start_today:
            return now
        return self._retry_after("prices", now, PRICE_RETRY_S, PRICE_RETRY_MAX_S)

    def next_weather_poll(self, now: datetime) -> datetime:
        """Hourly; after a failure every 5 min, backing off to hourly; disabled: a day from now."""
        if not self.cfg.sources.openmeteo.enabled:
            return now + timedelta(days=1)
        if self._failures["weather"]:
            return self._retry_after("weather", now, 300, WEATHER_EVERY_S)
        return self._retry_after("weather", now, WEATHER_EVERY_S, WEATHER_EVERY_S)

    def next_grid_poll(self, now: datetime) -> datetime:
        """Every 15 minutes with a Fingrid key; without one, a day from now (nothing to do)."""
        if not self._health["fingrid"].enabled:
            return now + timedelta(days=1)
        return self._retry_after("grid", now, GRID_EVERY_S, 4 * GRID_EVERY_S)

    def health(self) -> dict[str, dict[str, object]]:
        """Per source: enabled, note, last success/attempt/error, failures in a row, ban, fallback in use."""
        return {k: h.as_json() for k, h in self._health.items()}


def _series_doc(s: RawSeries) -> dict[str, object]:
    return {
        "source": s.source,
        "fetched_at": iso_z(s.fetched_at),
        "step_s": s.step_s,
        "instant": s.instant,
        "epoch_s": [int(x) for x in s.epoch_s],
        "values": [float(x) if np.isfinite(x) else None for x in s.values],
    }


def _series_from_docs(docs: object) -> dict[str, RawSeries]:
    out: dict[str, RawSeries] = {}
    if not isinstance(docs, dict):
        return out
    for k, d in docs.items():
        try:
            out[str(k)] = RawSeries(
                str(d["source"]),
                np.array(d["epoch_s"], dtype=np.int64),
                np.array([np.nan if x is None else float(x) for x in d["values"]]),
                int(d["step_s"]),
                parse_utc(d["fetched_at"]),
                bool(d["instant"]),
            )
        except (KeyError, TypeError, ValueError):
            continue
    return out


# -- CLI ------------------------------------------------------------------------------------------

CLI_POLICY = RetryPolicy(attempts=2, base_s=1.0, cap_s=4.0)


def forecast_for_cli(
    cfg: Config,
    start: datetime,
    end: datetime | None = None,
    *,
    now: datetime | None = None,
    offline: bool = False,
    client_factory: Callable[[], httpx.AsyncClient] | None = None,
) -> Forecast:
    """Synchronous: fetch (unless ``offline``), fall back, and assemble ``start..end`` on the planner grid.

    Used by ``atsd plan`` and ``atsd forecast``. Reads and updates the same cache as the daemon
    (``[sources] cache_dir``, default ``<state_dir>/cache``); an unwritable cache is only a warning.
    ``end`` None means as far as published prices reach.
    """
    t_now = now or datetime.now(UTC)

    async def run() -> Forecast:
        client = client_factory() if client_factory else None
        async with ForecastService(cfg, client=client, policy=CLI_POLICY) as svc:
            if not offline:
                past = start < t_now - timedelta(days=1)
                await asyncio.gather(
                    svc.refresh_prices(t_now, start if past else None, end if past else None),
                    svc.refresh_weather(t_now),
                    svc.refresh_grid(t_now),
                )
            fc = svc.assemble(t_now, start=start, end=end)
        if client is not None:
            await client.aclose()
        return fc

    return asyncio.run(run())
