"""The shell around :mod:`atsd.core.calibrate`: read history, store fitted parameters, decide replacements.

History comes from a CSV (``time_utc,indoor_c,outdoor_c[,ghi_w_m2][,heat_w][,elec_w][,mode]``, see
``docs/calibration.md``) or from the daemon's SQLite history. A fit the user applies (``atsd calibrate
--apply``) or the daemon's weekly re-fit accepts is written atomically to
``<state_dir>/calibration.json``; the planner reads it back through :func:`load_overrides`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import math
import os
import tempfile
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from atsd.config import Config
from atsd.core.calibrate import Calibration, CalibrationRefused, History, Limits, fit, score
from atsd.core.modes import Mode
from atsd.core.thermal import J_PER_KWH, HeatPump
from atsd.core.timegrid import Grid, from_epoch_s, iso_z, resample_step, to_epoch_s
from atsd.csvdata import DataError, read_csv

log = logging.getLogger(__name__)

FILENAME = "calibration.json"
FORMAT_VERSION = 1
RMSE_TOLERANCE = 1e-3
OVERRIDE_KEYS = ("ua_w_per_k", "capacitance_kwh_per_k", "solar_aperture_m2", "internal_gains_w")


# -- reading history ----------------------------------------------------------------------------


def history_from_csv(path: Path | str, step_s: int | None = None, heat_pump: HeatPump | None = None,
                     design_heat_w: float | None = None) -> tuple[History, Grid, list[str]]:
    """Read the calibration CSV onto a regular UTC grid; returns the history, its grid and notes.

    ``indoor_c`` and ``outdoor_c`` are readings at ``time_utc``; ``ghi_w_m2``, ``heat_w`` (thermal W
    into the house) and ``elec_w`` (the heat pump's electric W) are means over the row's period.
    ``mode`` is OFF/ECO/NORMAL/BOOST (or its rank 0..3). Without ``heat_w``, ``elec_w`` times the
    configured COP model (``heat_pump``) gives the heat; with neither, the fit is relay-only.
    """
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"{name}: cannot read: {exc.strerror}") from exc
    text = _modes_to_ranks(name, text)
    series = read_csv(name, ("indoor_c", "outdoor_c"), text)
    src_step = series.step_s
    step = step_s or min(max(src_step, 300), 3600)
    e0 = int(series.epoch_s[0])
    start = e0 - e0 % step
    n = int(-(-(int(series.epoch_s[-1]) + src_step - start) // step))
    grid = Grid(from_epoch_s(start), step, n)
    v = series.values
    notes: list[str] = []
    indoor = _readings_at_boundaries(series.epoch_s, v["indoor_c"], grid, src_step)
    outdoor = resample_step(series.epoch_s, v["outdoor_c"], src_step, grid)
    ghi = resample_step(series.epoch_s, v["ghi_w_m2"], src_step, grid) if "ghi_w_m2" in v else None
    heat = resample_step(series.epoch_s, v["heat_w"], src_step, grid) if "heat_w" in v else None
    if (heat is None or not np.isfinite(heat).any()) and "elec_w" in v:
        if heat_pump is None or design_heat_w is None:
            raise DataError(f"{name}: elec_w needs the heat pump's COP model (a config)")
        elec = resample_step(series.epoch_s, v["elec_w"], src_step, grid)
        heat = heat_from_electric(heat_pump, design_heat_w, outdoor, indoor, elec)
        notes.append("heat = elec_w × the configured COP model (an estimate: UA and C inherit its error)")
    ranks = None
    if "mode" in v:
        raw = resample_step(series.epoch_s, v["mode"], src_step, grid)
        ranks = np.where(np.isfinite(raw) & (np.abs(raw - np.round(raw)) < 1e-9), np.nan_to_num(raw), -1).astype(int)
    return History(step, indoor, outdoor, ghi, heat, ranks), grid, notes


def _modes_to_ranks(name: str, text: str) -> str:
    """The CSV reader takes numbers only: turn a ``mode`` column of names into ranks."""
    rows = list(csv.reader(text.splitlines()))
    if not rows or "mode" not in [h.strip() for h in rows[0]]:
        return text
    col = [h.strip() for h in rows[0]].index("mode")
    for ln, row in enumerate(rows[1:], start=2):
        if col < len(row):
            cell = row[col].strip()
            if cell and not cell.lstrip("-").isdigit():
                try:
                    row[col] = str(Mode.parse(cell).rank)
                except ValueError as exc:
                    raise DataError(f"{name}: line {ln}: column mode: {exc}") from None
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def _readings_at_boundaries(epoch_s: np.ndarray, values: np.ndarray, grid: Grid, src_step: int) -> np.ndarray:
    """Readings interpolated to each slot start; NaN where no reading lies within one source step."""
    ok = np.isfinite(values)
    x = epoch_s[ok].astype(np.float64)
    y = values[ok]
    out = np.full(grid.n, np.nan)
    if len(x) == 0:
        return out
    t = grid.epoch_s().astype(np.float64)
    j = np.clip(np.searchsorted(x, t), 1, max(1, len(x) - 1))
    if len(x) == 1:
        near = np.abs(t - x[0]) < 1
        out[near] = y[0]
        return out
    left, right = x[j - 1], x[j]
    inside = (t >= x[0]) & (t <= x[-1]) & (right - left <= 1.5 * src_step)
    out[inside] = np.interp(t[inside], x, y)
    return out


def heat_from_electric(hp: HeatPump, design_heat_w: float, outdoor_c: np.ndarray, indoor_c: np.ndarray,
                       elec_w: np.ndarray) -> np.ndarray:
    """Thermal heat from electric power with the COP model (supply temperature depends on the heat: iterate)."""
    indoor = np.where(np.isfinite(indoor_c), indoor_c, 21.0)
    source = hp.source_c(np.nan_to_num(outdoor_c))
    heat = elec_w * 3.0
    for _ in range(6):
        supply = hp.supply_c(indoor, np.nan_to_num(heat), design_heat_w)
        heat = elec_w * hp.cop(source, supply)
    return np.asarray(np.where(np.isfinite(outdoor_c), heat, np.nan), dtype=np.float64)


def with_setpoints(h: History, grid: Grid, cfg: Config) -> History:
    """A relay-only history gains each mode's thermostat setpoint per slot, from the configuration
    (comfort target and schedule, ECO and BOOST offsets), so the fit can model a heat pump that holds it."""
    if not h.relay_only or h.mode_rank is None:
        return h
    from atsd.core import house
    from atsd.core.comfort import comfort_band

    band = comfort_band(grid, cfg.comfort, cfg.device.tz)
    out = house.fill_missing(h.outdoor_c)
    if not np.isfinite(out).all():
        return h
    d = house.thermal_model(cfg).drive(grid, out, None, band.target_c, band.min_c, band.max_c)
    return dataclasses.replace(h, setpoint_c=d.comp_set_c.copy())


# Reading names of the daemon's history, by what they measure (the defaults when the config names
# no sensor for a role): indoor/outdoor °C, heat delivered and the heat pump's electric power in W.
DB_NAMES = {"indoor": "indoor_c", "outdoor": "outdoor_c", "heat": "heat_w", "power": "elec_w", "ghi": "ghi_w_m2"}
DB_DEFAULT_DAYS = 30
DECISION_GAP_S = 600.0  # a slot whose last decision is older than this has an unknown mode


def db_names(cfg: Config | None) -> dict[str, str]:
    """Reading names per quantity in the daemon's history: it records the combined indoor and outdoor
    values as ``indoor_c`` / ``outdoor_c`` and the heat pump's electric power as ``elec_w``."""
    return dict(DB_NAMES)


def history_from_db(path: Path | str, start: datetime | None, end: datetime | None, step_s: int = 900,
                    cfg: Config | None = None, heat_pump: HeatPump | None = None,
                    design_heat_w: float | None = None) -> tuple[History, Grid, list[str]]:
    """History from the daemon's SQLite database (``atsd.store``) between ``start`` and ``end``.

    Defaults: the last :data:`DB_DEFAULT_DAYS` days up to the newest record. Readings come from the
    store's 15-minute aggregates, the mode from its decisions.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such history database (the daemon writes <state_dir>/history.db)")
    try:
        from atsd import store as store_mod  # type: ignore[attr-defined,unused-ignore]
    except ImportError as exc:
        raise DataError(f"{p}: reading the daemon's history needs atsd.store, which this installation "
                        "does not have; export a CSV instead (docs/calibration.md)") from exc
    try:
        st = store_mod.Store(p)
    except store_mod.StoreError as exc:
        raise DataError(str(exc)) from exc
    try:
        return history_from_store(st, start, end, step_s, db_names(cfg), heat_pump, design_heat_w)
    except store_mod.StoreError as exc:
        raise DataError(str(exc)) from exc
    finally:
        st.close()


def history_from_store(st: Any, start: datetime | None, end: datetime | None, step_s: int,
                       names: Mapping[str, str], heat_pump: HeatPump | None = None,
                       design_heat_w: float | None = None) -> tuple[History, Grid, list[str]]:
    """The history on a ``step_s`` grid from a store's ``aggregates``, ``decisions`` and ``latest_record_time``.

    An aggregate is a mean over its bucket; the indoor temperature at a slot boundary is the mean of
    the two buckets around it.
    """
    if end is None:
        end = st.latest_record_time()
        if end is None:
            raise DataError("the history database is empty")
    if start is None:
        start = end - timedelta(days=DB_DEFAULT_DAYS)
    grid = Grid.covering(start, end, step_s)
    t0 = to_epoch_s(grid.start)
    series: dict[str, np.ndarray] = {}
    want = {v: k for k, v in names.items()}
    sums: dict[str, np.ndarray] = {k: np.zeros(grid.n) for k in names}
    counts: dict[str, np.ndarray] = {k: np.zeros(grid.n) for k in names}
    for agg in st.aggregates(grid.start, grid.end, list(want)):
        key = want.get(agg.name)
        i = (to_epoch_s(agg.start) - t0) // step_s
        if key is None or not 0 <= i < grid.n or not math.isfinite(agg.mean):
            continue
        sums[key][i] += agg.mean * agg.count
        counts[key][i] += agg.count
    for key in names:
        with np.errstate(invalid="ignore", divide="ignore"):
            series[key] = np.where(counts[key] > 0, sums[key] / np.maximum(counts[key], 1), np.nan)
    if not np.isfinite(series["indoor"]).any() or not np.isfinite(series["outdoor"]).any():
        raise DataError(f"the history has no {names['indoor']!r} or no {names['outdoor']!r} readings between "
                        f"{iso_z(grid.start)} and {iso_z(grid.end)}")
    slot_mean = series["indoor"]
    indoor = np.full(grid.n, np.nan)
    indoor[1:] = 0.5 * (slot_mean[:-1] + slot_mean[1:])
    notes: list[str] = []
    heat = series["heat"] if np.isfinite(series["heat"]).any() else None
    if heat is None and np.isfinite(series["power"]).any() and heat_pump is not None and design_heat_w:
        heat = heat_from_electric(heat_pump, design_heat_w, series["outdoor"], indoor, series["power"])
        notes.append("heat = electric power × the configured COP model (an estimate: UA and C inherit its error)")
    ghi = series["ghi"] if np.isfinite(series["ghi"]).any() else None
    ranks = np.full(grid.n, -1)
    decisions = st.decisions(grid.start - timedelta(seconds=DECISION_GAP_S), grid.end)
    if decisions:
        d_t = np.array([d.ts.timestamp() for d in decisions])
        d_rank = np.array([_rank_or_unknown(d.mode) for d in decisions])
        mid = grid.epoch_s().astype(np.float64) + step_s / 2
        j = np.searchsorted(d_t, mid, side="right") - 1
        ok = (j >= 0) & (mid - d_t[np.clip(j, 0, None)] <= DECISION_GAP_S)
        ranks = np.where(ok, d_rank[np.clip(j, 0, None)], -1)
    # Before the first and after the last reading is not a gap: the window just reaches past the data.
    have = np.flatnonzero(np.isfinite(slot_mean) | np.isfinite(series["outdoor"]))
    a, b = int(have[0]), int(have[-1]) + 1
    h = History(step_s, indoor[a:b], series["outdoor"][a:b], None if ghi is None else ghi[a:b],
                None if heat is None else heat[a:b], ranks[a:b])
    return h, grid.slice(a, b), notes


def _rank_or_unknown(text: str) -> int:
    try:
        return Mode.parse(text).rank
    except ValueError:
        return -1


# -- storing and loading ------------------------------------------------------------------------


def calibration_doc(cal: Calibration, grid: Grid, *, fitted_at: datetime, source: str, cfg: Config | None,
                    notes: list[str] | None = None) -> dict[str, Any]:
    """The JSON document of ``atsd calibrate --json`` and of ``calibration.json``."""
    doc: dict[str, Any] = dict(cal.as_json())
    overrides = cal.overrides()
    all_notes = [*cal.as_json()["notes"], *(notes or [])]  # type: ignore[misc]
    if cal.model_estimate and cfg is not None:
        from atsd.core import house

        tau_s = cal.tau_h.value * 3600.0
        rate = cal.heat_rate_k_per_h
        if cal.relay_model == "thermostat" and "OFF" in rate and len(rate) > 1:
            # The compressor's heating rate (K/h, gains removed) and its configured capacity give
            # C, and C with the fitted τ gives UA: a model estimate resting on the rated capacity.
            comp_k_per_h = max(v.value for v in rate.values()) - rate["OFF"].value
            rated_w = house.heat_pump(cfg).rated_heat_w
            c_j = rated_w / (comp_k_per_h / 3600.0)
            overrides = {"capacitance_kwh_per_k": c_j / J_PER_KWH, "ua_w_per_k": c_j / tau_s}
            all_notes.append(f"UA and C derived from the fitted heating rate and the configured rated heat "
                             f"output ({rated_w / 1000:.1f} kW): a model estimate")
        else:
            # The configured UA with the fitted time constant gives the capacitance.
            ua_cfg = house.building(cfg).ua_w_per_k
            overrides = {"capacitance_kwh_per_k": tau_s * ua_cfg / J_PER_KWH}
            all_notes.append(f"capacitance derived from the fitted time constant and the configured UA "
                             f"({ua_cfg:.0f} W/K): a model estimate")
        if "OFF" in rate:  # in OFF only the internal (and mean solar) gains heat the house
            overrides["internal_gains_w"] = rate["OFF"].value / 3600.0 * overrides["capacitance_kwh_per_k"] * J_PER_KWH
    doc.update({
        "version": FORMAT_VERSION,
        "fitted_at": iso_z(fitted_at),
        "source": source,
        "history": {"start": iso_z(grid.start), "end": iso_z(grid.end), "slot_minutes": grid.step_s // 60},
        "overrides": {k: round(v, 4) for k, v in overrides.items()},
        "notes": all_notes,
    })
    return doc


def path_in(state_dir: Path | str) -> Path:
    return Path(state_dir) / FILENAME


def save(state_dir: Path | str, doc: Mapping[str, Any]) -> Path:
    """Write ``calibration.json`` atomically (temp file in the same directory, fsync, rename)."""
    d = Path(state_dir)
    d.mkdir(parents=True, exist_ok=True)
    target = path_in(d)
    fd, tmp = tempfile.mkstemp(prefix=".calibration-", suffix=".json.tmp", dir=d)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def load_doc(state_dir: Path | str) -> dict[str, Any] | None:
    """The stored calibration document, or None when there is none (or it is unreadable: logged)."""
    p = path_in(state_dir)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("Ignoring the stored calibration %s: it cannot be read (%s); planning with the configured "
                    "building parameters.", p, exc)
        return None
    if not isinstance(doc, dict):
        log.warning("Ignoring the stored calibration %s: not a JSON object.", p)
        return None
    return doc


def load_overrides(state_dir: Path | str) -> dict[str, float] | None:
    """Fitted building parameters for ``house.thermal_model(cfg, overrides)``, or None when none are stored."""
    doc = load_doc(state_dir)
    if doc is None:
        return None
    raw = doc.get("overrides")
    if not isinstance(raw, dict):
        return None
    out: dict[str, float] = {}
    for k in OVERRIDE_KEYS:
        v = raw.get(k)
        if isinstance(v, int | float) and math.isfinite(v) and (v > 0 or (k == "solar_aperture_m2" and v >= 0)
                                                                or k == "internal_gains_w"):
            out[k] = float(v)
    return out or None


def rescore(doc: Mapping[str, Any] | None, h: History, cfg: Config) -> float | None:
    """Multi-step RMSE of a stored calibration's parameters on new history (None: cannot score)."""
    if doc is None or h.relay_only:
        return None
    over = doc.get("overrides")
    if not isinstance(over, dict):
        return None
    from atsd.core import house

    b = house.building(cfg, {k: float(v) for k, v in over.items() if k in OVERRIDE_KEYS})
    gains = over.get("internal_gains_w", doc.get("internal_gains_w"))
    try:
        return score(h, b.ua_w_per_k, b.capacitance_kwh_per_k,
                     b.solar_aperture_m2 if h.ghi_w_m2 is not None else 0.0,
                     float(gains) if isinstance(gains, int | float) else None)
    except CalibrationRefused:
        return None


def should_replace(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> bool:
    """Keep the old parameters unless the new fit succeeded and is no worse on the same recent data.

    ``old`` and ``new`` carry ``rmse_c`` measured on the same history (``old`` re-scored with
    :func:`rescore`); a failed fit is ``None`` or has ``"refused"``. A stored fit that cannot be
    scored (no ``rmse_c``) is replaced.
    """
    if new is None or new.get("refused") or not isinstance(new.get("rmse_c"), int | float):
        return False
    if old is None:
        return True
    old_rmse = old.get("rmse_c")
    if not isinstance(old_rmse, int | float) or not math.isfinite(old_rmse):
        return True
    # A relative 0.1 %: refitting the same data must not flip on rounding of the stored parameters.
    return float(new["rmse_c"]) <= float(old_rmse) * (1.0 + RMSE_TOLERANCE)


def refit(cfg: Config, h: History, grid: Grid, *, state_dir: Path | str, now: datetime, source: str,
          limits: Limits | None = None) -> tuple[dict[str, Any], bool, str]:
    """Fit, compare with the stored parameters on the same data, and store the new ones if no worse.

    Returns ``(document, replaced, message)``; the daemon's weekly job and ``atsd calibrate
    --apply`` both go through here. A refusal raises :class:`CalibrationRefused` and stores nothing.
    """
    cal = fit(h, limits)
    doc = calibration_doc(cal, grid, fitted_at=now, source=source, cfg=cfg)
    old = load_doc(state_dir)
    old_rmse = rescore(old, h, cfg)
    if old is not None and old_rmse is None and old.get("model_estimate") == doc["model_estimate"]:
        # Same kind of fit (e.g. two relay-only fits) that cannot be re-scored: compare as stored.
        old_rmse = old.get("rmse_c") if isinstance(old.get("rmse_c"), int | float) else None
    old_scored = None if old is None else {**old, "rmse_c": old_rmse}
    new_scored = {**doc, "rmse_c": rescore(doc, h, cfg) or cal.rmse_c}  # scored the same way as the old
    if should_replace(old_scored, new_scored):
        save(state_dir, doc)
        was = f" (old parameters: RMSE {old_rmse:.3f} K on the same data)" if old_rmse is not None else ""
        return doc, True, f"stored in {path_in(state_dir)}{was}"
    assert old_rmse is not None
    return doc, False, (f"kept the stored parameters: they fit this history better (RMSE {old_rmse:.3f} K "
                        f"vs {cal.rmse_c:.3f} K for the new fit)")


def weekly_refit(cfg: Config, st: Any, now: datetime, days: float = DB_DEFAULT_DAYS) -> tuple[bool, str]:
    """The daemon's weekly job (``[daemon] calibrate_weekly``): fit the last ``days`` of its own
    history and store the result unless the stored parameters fit that history better.

    ``st`` is the daemon's open ``atsd.store.Store``. Blocking: call it through ``asyncio.to_thread``.
    Returns ``(replaced, message)``; a refusal or unusable history keeps the stored parameters.
    """
    from atsd.core import house

    model = house.thermal_model(cfg)
    try:
        h, grid, _notes = history_from_store(st, now - timedelta(days=days), now, cfg.planner.slot_minutes * 60,
                                             db_names(cfg), model.heat_pump, model.design_heat_w)
        h = with_setpoints(h, grid, cfg)
        _doc, replaced, message = refit(cfg, h, grid, state_dir=cfg.daemon.state_dir, now=now,
                                        source="daemon history")
    except (DataError, CalibrationRefused) as exc:
        reason = exc.reason if isinstance(exc, CalibrationRefused) else str(exc)
        return False, f"kept the stored parameters: the weekly re-fit was refused: {reason}"
    return replaced, message


__all__ = ["CalibrationRefused", "DataError", "history_from_csv", "history_from_db", "load_overrides",
           "refit", "save", "should_replace", "weekly_refit"]
