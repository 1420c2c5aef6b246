"""What atsd needs to know about each BOPTEST test case: point names, the mode table, the house guess.

Built from ``testcases/bestest_hydronic_heat_pump/doc/index.html`` (inputs, outputs, forecasts and the
baseline controller of ``ibpsa/project1-boptest``), ``models/config.json`` (floor area 192 m², step
3600 s), ``models/kpis.json`` (electric power = fan + heat pump + emission pump) and ``models/days.json``
(``peak_heat_day`` and ``typical_heat_day``; a scenario is 7 days of warm-up then 14 days of test).

The mode table is the whole actuator: a mode either overwrites nothing (NORMAL, the test case's own
baseline controller, like SG-Ready state 2), pins the compressor speed (OFF) or moves the zone
setpoint by an offset from the baseline's own setpoint, clamped into the comfort band. Each ``_u``
goes with its ``_activate`` = 1; inputs not named are left to the baseline (``_activate`` absent).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from atsd.core.modes import Mode

KELVIN = 273.15


@dataclass(frozen=True)
class ModeAction:
    """One row of the mode table: a fixed compressor speed, or a setpoint offset from the baseline's."""

    speed: float | None = None  # pins the compressor modulation (0..1)
    setpoint_offset_k: float | None = None  # moves the zone setpoint; clamped to [lower, upper] bound


@dataclass(frozen=True)
class CaseTable:
    name: str
    area_m2: float
    zone_temp: str  # measurement, K
    outdoor_temp: str  # measurement, K
    ghi: str  # measurement, W/m²: global horizontal irradiance (for the solar aperture)
    power: tuple[str, ...]  # measurements whose sum is the electric power (W), as kpis.json says
    heat_pump_power: str  # the heat pump's own electric power (W)
    speed_input: str  # overwritable compressor modulation
    setpoint_input: str  # overwritable zone setpoint, K
    lower: str = "LowerSetp[1]"  # forecast, K: comfort minimum (changes with occupancy)
    upper: str = "UpperSetp[1]"
    occupancy: str = "Occupancy[1]"
    temp_forecast: str = "TDryBul"
    ghi_forecast: str = "HGloHor"
    prices: dict[str, str] = field(default_factory=lambda: {
        "constant": "PriceElectricPowerConstant", "dynamic": "PriceElectricPowerDynamic",
        "highly_dynamic": "PriceElectricPowerHighlyDynamic"})
    emissions: str = "EmissionsElectricPower"
    # The baseline controller's setpoint: comfort minimum plus an offset (occupied / unoccupied).
    baseline_offset_occupied_k: float = 0.2
    baseline_offset_unoccupied_k: float = 5.5
    modes: dict[Mode, ModeAction] = field(default_factory=dict)
    # atsd's first guess of the plant before calibration (config keys of [heat_pump]).
    heat_pump: dict[str, object] = field(default_factory=dict)

    def baseline_setpoint_k(self, lower_k: float, occupied: bool) -> float:
        return lower_k + (self.baseline_offset_occupied_k if occupied else self.baseline_offset_unoccupied_k)

    def overwrites(self, mode: Mode, lower_k: float, upper_k: float, occupied: bool) -> dict[str, float]:
        """The ``/advance`` inputs that express ``mode`` now (empty for NORMAL)."""
        action = self.modes.get(mode, ModeAction())
        u: dict[str, float] = {}
        if action.speed is not None:
            u[self.speed_input] = action.speed
            u[self.speed_input.removesuffix("_u") + "_activate"] = 1.0
        if action.setpoint_offset_k is not None:
            t = self.baseline_setpoint_k(lower_k, occupied) + action.setpoint_offset_k
            u[self.setpoint_input] = min(max(t, lower_k), upper_k)
            u[self.setpoint_input.removesuffix("_u") + "_activate"] = 1.0
        return u

    @property
    def supported(self) -> tuple[Mode, ...]:
        return tuple(m for m in (Mode.OFF, Mode.ECO, Mode.NORMAL, Mode.BOOST) if m in self.modes)


# | mode   | overwrites                                     | meaning                                        |
# | NORMAL | nothing                                        | the baseline PI controller (SG-Ready state 2)  |
# | OFF    | oveHeaPumY_u = 0                               | compressor blocked (SG-Ready state 1)          |
# | ECO    | oveTSet_u = baseline setpoint − 1 K, ≥ LowerSetp | the baseline's PI holds a lower setpoint     |
# | BOOST  | oveTSet_u = baseline setpoint + 2 K, ≤ UpperSetp | pre-charge the floor slab                    |
BESTEST_HYDRONIC_HEAT_PUMP = CaseTable(
    name="bestest_hydronic_heat_pump",
    area_m2=192.0,
    zone_temp="reaTZon_y",
    outdoor_temp="weaSta_reaWeaTDryBul_y",
    ghi="weaSta_reaWeaHGloHor_y",
    power=("reaPFan_y", "reaPHeaPum_y", "reaPPumEmi_y"),
    heat_pump_power="reaPHeaPum_y",
    speed_input="oveHeaPumY_u",
    setpoint_input="oveTSet_u",
    modes={Mode.NORMAL: ModeAction(), Mode.OFF: ModeAction(speed=0.0),
           Mode.ECO: ModeAction(setpoint_offset_k=-1.0), Mode.BOOST: ModeAction(setpoint_offset_k=2.0)},
    # 15 kW air-to-water unit (Carrier 30AW015 performance data) on floor heating.
    heat_pump={"type": "ashp_water", "rated_heat_kw": 15.0, "nominal_cop": 4.5, "rating_supply_c": 35.0,
               "supply_design_c": 35.0, "design_outdoor_c": -10.0, "min_outdoor_c": -20.0, "aux_heater_kw": 0.0,
               "eco_offset_k": 1.0, "boost_offset_k": 2.0},
)

CASES: dict[str, CaseTable] = {c.name: c for c in (BESTEST_HYDRONIC_HEAT_PUMP,)}
SCENARIOS = ("peak_heat_day", "typical_heat_day")
PRICES = ("constant", "dynamic", "highly_dynamic")


def case(name: str) -> CaseTable:
    try:
        return CASES[name]
    except KeyError:
        raise ValueError(f"atsd has no mode table for BOPTEST test case {name!r}; known: {', '.join(CASES)}") from None
