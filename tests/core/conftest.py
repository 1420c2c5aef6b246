from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from atsd.config import Config
from atsd.core import house
from atsd.core.comfort import ComfortBand
from atsd.core.forecast import PRICE, TEMP, Forecast
from atsd.core.plan import PlanProblem
from atsd.core.thermal import Building, HeatPump, HeatPumpKind, HeatSource, ThermalModel
from atsd.core.timegrid import Grid

T0 = datetime(2026, 1, 15, 22, 0, tzinfo=UTC)


def make_model(aux_w: float = 6000.0, rated_w: float = 8000.0, gains_w: float = 0.0,
               source: HeatSource = HeatSource.BRINE) -> ThermalModel:
    b = Building(ua_w_per_k=150.0, capacitance_j_per_k=15e6, solar_aperture_m2=0.0, internal_gains_w=gains_w)
    hp = HeatPump(HeatPumpKind.GSHP if source is HeatSource.BRINE else HeatPumpKind.ASHP_WATER, source,
                  rated_w, 4.5, 0.0 if source is HeatSource.BRINE else 7.0, 35.0, aux_heater_w=aux_w,
                  capacity_slope_per_k=0.0 if source is HeatSource.BRINE else 0.025)
    return ThermalModel.with_defaults(b, hp)


def make_problem(prices_eur_per_mwh: np.ndarray, outdoor_c: np.ndarray, *, start_c: float = 21.0,
                 cfg: Config | None = None, step_s: int = 900, start: datetime = T0) -> PlanProblem:
    cfg = cfg or Config()
    n = len(prices_eur_per_mwh)
    grid = Grid(start, step_s, n)
    fc = Forecast(grid, {PRICE: np.asarray(prices_eur_per_mwh, float), TEMP: np.asarray(outdoor_c, float)})
    return house.problem(cfg, fc, start_c)


@pytest.fixture
def model() -> ThermalModel:
    return make_model()


def flat_band(n: int) -> ComfortBand:
    return ComfortBand.flat(n, 20.0, 21.0, 23.0)
