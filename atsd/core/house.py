"""Build the core objects of one house from its configuration: model, tariff, rules, problem.

The daemon, the CLI and the simulator all go through these functions, so what a user tries at the
shell is what runs at night.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from atsd.config import U_VALUES, Config
from atsd.core.comfort import ComfortBand, comfort_band
from atsd.core.forecast import GHI, PRICE, TEMP, Forecast
from atsd.core.modes import ALL_MODES, Mode
from atsd.core.plan import PlanProblem, PlanRules
from atsd.core.tariff import Tariff
from atsd.core.thermal import (
    J_PER_KWH,
    Building,
    HeatPump,
    HeatPumpKind,
    HeatSource,
    ThermalModel,
    estimate_capacitance_j_per_k,
    estimate_ua_w_per_k,
)
from atsd.core.timegrid import Grid

# Capacity change per K of source temperature for air-source units (EN 14511 data of typical
# inverter units: roughly 2-3 % per K below the rating point).
AIR_CAPACITY_SLOPE = 0.025


def building(cfg: Config, overrides: dict[str, float] | None = None) -> Building:
    b = cfg.building
    ua = b.ua_w_per_k or estimate_ua_w_per_k(b.floor_area_m2, b.volume_m3, U_VALUES[b.insulation_level],
                                             b.ventilation_ach, b.heat_recovery)
    c_j = (b.capacitance_kwh_per_k * J_PER_KWH if b.capacitance_kwh_per_k
           else estimate_capacitance_j_per_k(b.floor_area_m2))
    aperture = b.solar_aperture_m2
    gains = b.internal_gains_w
    if overrides:  # calibrated parameters from the state directory win over the estimate
        ua = overrides.get("ua_w_per_k", ua)
        c_j = overrides.get("capacitance_kwh_per_k", c_j / J_PER_KWH) * J_PER_KWH
        aperture = overrides.get("solar_aperture_m2", aperture)
        gains = overrides.get("internal_gains_w", gains)
    return Building(ua, c_j, aperture, gains)


def heat_pump(cfg: Config) -> HeatPump:
    h = cfg.heat_pump
    source = HeatSource(h.source)
    rating_source = h.rating_source_c if h.rating_source_c is not None else {
        HeatSource.AIR: 7.0, HeatSource.BRINE: 0.0, HeatSource.EXHAUST_AIR: 20.0}[source]
    slope = h.capacity_slope_per_k
    if slope is None:
        slope = AIR_CAPACITY_SLOPE if source is HeatSource.AIR else 0.0
    return HeatPump(HeatPumpKind(h.type), source, h.rated_heat_kw * 1000.0, h.nominal_cop, rating_source,
                    h.rating_supply_c, h.min_modulation, h.aux_heater_kw * 1000.0, slope, h.min_outdoor_c,
                    h.brine_temp_c, 20.0, h.supply_design_c, h.design_outdoor_c, h.aux_deadband_k)


def thermal_model(cfg: Config, overrides: dict[str, float] | None = None) -> ThermalModel:
    h = cfg.heat_pump
    return ThermalModel.with_defaults(building(cfg, overrides), heat_pump(cfg), h.eco_offset_k, h.boost_offset_k,
                                      h.off_allows_aux, h.boost_allows_aux)


def tariff(cfg: Config) -> Tariff:
    return Tariff(cfg.tariff, cfg.device.tz)


# Actuator presets whose device falls back to NORMAL by itself (a relay timer), so OFF stays bounded
# even if the Pi dies. Mirrors ``atsd.devices.presets.MQTT_PRESETS[...].self_reverting`` (a test keeps
# them equal; core may not import devices).
SELF_REVERTING_PRESETS = frozenset({"shelly", "tasmota", "generic"})


def allowed_modes(cfg: Config) -> tuple[Mode, ...]:
    """Modes the configured actuator can express (SG-Ready has no ECO), from the config alone.

    OFF is offered only when the device reverts by itself or ``allow_unbounded_block = true``.
    The device registry (``atsd.devices.presets.actuator_modes``) knows the presets' exact sets and
    never offers more than this; the daemon passes its set to :func:`problem`.
    """
    a = cfg.actuator
    if a.modes is not None:
        names = set(a.modes)
    elif a.kind == "sgready_gpio":
        names = {"OFF", "NORMAL", "BOOST"}
    elif a.kind == "mqtt" and a.payloads:
        names = set(a.payloads)
    elif a.kind == "modbus" and a.values:
        names = set(a.values)
    else:
        names = {m.value for m in ALL_MODES}
    preset = a.preset or "generic"
    self_reverting = a.kind in ("none", "simulated") or (a.kind == "mqtt" and preset in SELF_REVERTING_PRESETS)
    if not (self_reverting or a.allow_unbounded_block):
        names.discard("OFF")
    names.add("NORMAL")
    return tuple(m for m in ALL_MODES if m.value in names)


def plan_rules(cfg: Config, step_s: int) -> PlanRules:
    s = cfg.supervisor
    dwell_min = cfg.actuator.min_dwell_min if cfg.actuator.min_dwell_min is not None else s.min_dwell_min

    def slots(minutes: float) -> int:
        return max(0, round(minutes * 60 / step_s))

    return PlanRules(max(1, -(-int(dwell_min * 60) // step_s)), slots(s.max_off_block_min),
                     slots(s.min_off_gap_min), s.max_off_blocks_per_day, cfg.planner.comfort_margin_k)


def problem(cfg: Config, forecast: Forecast, start_c: float, *, model: ThermalModel | None = None,
            comfort: ComfortBand | None = None, current_mode: Mode = Mode.NORMAL,
            current_mode_slots: int = 1_000_000, modes: tuple[Mode, ...] | None = None,
            events: tuple[tuple[datetime, datetime, str], ...] = (), receding: bool = False) -> PlanProblem:
    """A planning problem over the forecast's grid. Unknown prices must be filled before this.

    ``receding``: the plan will be replaced before its end (the daemon, `atsd plan`, simulate), so
    heat left at the end is valued rather than required (``end_rule="value"``).

    ``events`` are demand-response windows ``(start, end, "shed" | "boost")``: constraints on the
    modes of the slots they cover (the comfort floor still wins)."""
    grid = forecast.grid
    tz = cfg.device.tz
    m = model or thermal_model(cfg)
    band = comfort or comfort_band(grid, cfg.comfort, tz)
    temp = forecast.get(TEMP)
    ghi = forecast.series.get(GHI)
    drive = m.drive(grid, temp, ghi, band.target_c, band.min_c, band.max_c)
    spot = forecast.get(PRICE)
    price = tariff(cfg).price_eur_per_kwh(grid, spot)
    return PlanProblem(grid, m, drive, spot, price, band, float(start_c), tz,
                       modes or allowed_modes(cfg), plan_rules(cfg, grid.step_s), current_mode, current_mode_slots,
                       forecast.is_estimated(PRICE), forecast.series.get("co2_g_per_kwh"),
                       cfg.planner.co2_weight_eur_per_t,
                       {"cheap_q": cfg.planner.cheap_quantile, "expensive_q": cfg.planner.expensive_quantile,
                        "temp_step_k": cfg.planner.temp_step_k}, _bounds(grid, events),
                       "value" if receding else "start")


def _bounds(grid: Grid, events: tuple[tuple[datetime, datetime, str], ...]) -> tuple[np.ndarray, np.ndarray] | None:
    if not events:
        return None
    from atsd.core.flex import mode_bounds_for_event

    lo = np.zeros(grid.n, dtype=int)
    hi = np.full(grid.n, Mode.BOOST.rank, dtype=int)
    times = grid.times()
    for start, end, kind in events:
        elo, ehi = mode_bounds_for_event(grid.n, times, start, end, kind, grid.step_s)
        lo, hi = np.maximum(lo, elo), np.minimum(hi, ehi)
    return lo, np.maximum(hi, lo)


def fill_missing(values: np.ndarray) -> np.ndarray:
    """Carry the last finite value forward (and the first backward) over gaps."""
    v = np.asarray(values, dtype=np.float64).copy()
    ok = np.isfinite(v)
    if not ok.any():
        return v
    idx = np.where(ok, np.arange(len(v)), 0)
    np.maximum.accumulate(idx, out=idx)
    v = v[idx]
    first = int(np.flatnonzero(ok)[0])
    v[:first] = v[first]
    return v

