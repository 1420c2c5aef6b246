"""Glue between a forecast and a plan: the path shared by ``atsd plan``, the daemon and the web API."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import numpy as np

from atsd.config import Config
from atsd.core import house
from atsd.core.forecast import PRICE, TEMP, Forecast
from atsd.core.modes import Mode
from atsd.core.plan import Decision, Plan, PlanProblem, make_plan
from atsd.core.planner import get
from atsd.core.thermal import ThermalModel


class PlanningError(Exception):
    pass


def plan_forecast(cfg: Config, forecast: Forecast, start_c: float, *, planner: str | None = None,
                  now: datetime | None = None, model: ThermalModel | None = None,
                  current_mode: Mode = Mode.NORMAL, current_mode_slots: int = 1_000_000,
                  modes: tuple[Mode, ...] | None = None,
                  events: tuple[tuple[datetime, datetime, str], ...] = ()) -> tuple[Plan, PlanProblem, float]:
    """Plan over the whole forecast grid; returns the plan, its problem and the planning time in ms."""
    if forecast.grid.n == 0:
        raise PlanningError("the forecast is empty")
    for name in (PRICE, TEMP):
        if not np.isfinite(forecast.get(name)).all():
            missing = int((~np.isfinite(forecast.get(name))).sum())
            raise PlanningError(f"forecast series {name} has {missing} unknown slots; fill them before planning")
    if model is None:  # fitted parameters stored by `atsd calibrate --apply` win over the configured ones
        from atsd.calibration import load_overrides

        model = house.thermal_model(cfg, load_overrides(cfg.daemon.state_dir))
    prob = house.problem(cfg, forecast, start_c, model=model, current_mode=current_mode,
                         current_mode_slots=current_mode_slots, modes=modes, events=events, receding=True)
    fn = get(planner or cfg.planner.planner)
    t0 = time.perf_counter()
    decision = fn(prob)
    ms = (time.perf_counter() - t0) * 1000.0
    plan = house_plan(cfg, prob, decision, now or forecast.grid.start)
    return plan, prob, ms


def house_plan(cfg: Config, prob: PlanProblem, decision: Decision, now: datetime) -> Plan:
    return make_plan(prob, decision, cfg.device.device_id, now)


def build_plan(cfg: Config, *, demo: bool, start: datetime | None, hours: int, indoor_c: float | None,
               planner: str | None) -> tuple[Plan, str]:
    """The plan ``atsd plan`` prints: demo data, or the forecast the sources assemble."""
    step_s = cfg.planner.slot_minutes * 60
    label = ""
    if demo:
        from atsd.csvdata import DEMO_LABEL, demo_forecast

        forecast = demo_forecast(start, hours, step_s)
        label = DEMO_LABEL
    else:
        try:
            from atsd.sources.forecasts import forecast_for_cli
        except ImportError as exc:
            raise PlanningError("no forecast sources are installed; use --demo") from exc
        t0 = start or datetime.now(UTC)
        forecast = forecast_for_cli(cfg, t0, t0 + timedelta(hours=hours))
    start_c = indoor_c if indoor_c is not None else cfg.comfort.target_c
    # The demo house is the configured one, never the real house's calibration.
    plan, _prob, _ms = plan_forecast(cfg, forecast, start_c, planner=planner, now=start or forecast.grid.start,
                                     model=house.thermal_model(cfg) if demo else None)
    return plan, label
