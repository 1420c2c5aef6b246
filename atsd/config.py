"""Configuration: TOML to frozen dataclasses, with errors that name the file, the key and the fix.

This module is the only place that parses configuration. Every section of the product's schema is
declared here, including sections whose code lives elsewhere, so adapters only read typed fields.
Unknown keys are errors with a did-you-mean; every problem in a file is reported at once.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_PATH = Path("/etc/atsd/config.toml")
EX_CONFIG = 78
SECRET_KEYS = frozenset({"token", "password", "api_key"})

# Thermal transmittance of the envelope by insulation level, W/(m²K).
U_VALUES = {"low": 0.5, "medium": 0.3, "high": 0.17}


class ConfigError(Exception):
    """One or more configuration problems; ``str()`` lists each on its own line."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


# --------------------------------------------------------------------------------------------
# Schema. Field order is the order of config.example.toml. Defaults suit a Finnish house.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceConfig:
    device_id: str = "atsd-house"
    name: str = "My house"
    latitude: float = 60.17
    longitude: float = 24.94
    timezone: str = "Europe/Helsinki"
    price_area: str = "FI"
    tags: tuple[str, ...] = ()

    def validate(self) -> list[str]:
        errs = []
        if not self.device_id or any(c in self.device_id for c in "/+# "):
            errs.append(f"device_id must be non-empty without '/', '+', '#' or spaces (got {self.device_id!r})")
        if not -90 <= self.latitude <= 90:
            errs.append(f"latitude must be within -90..90 (got {self.latitude})")
        if not -180 <= self.longitude <= 180:
            errs.append(f"longitude must be within -180..180 (got {self.longitude})")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            errs.append(f"timezone must be an IANA zone like 'Europe/Helsinki' (got {self.timezone!r})")
        if self.price_area not in PRICE_AREAS:
            errs.append(f"price_area must be one of {', '.join(PRICE_AREAS)} (got {self.price_area!r})")
        return errs

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


PRICE_AREAS = ("FI", "EE", "LV", "LT", "SE1", "SE2", "SE3", "SE4", "NO1", "NO2", "NO3", "NO4", "NO5",
               "DK1", "DK2")


@dataclass(frozen=True)
class BuildingConfig:
    insulation_level: Literal["low", "medium", "high"] = "medium"
    floor_area_m2: float = 150.0
    volume_m3: float = 375.0
    ventilation_ach: float = 0.5
    heat_recovery: float = 0.6
    ua_w_per_k: float | None = None
    capacitance_kwh_per_k: float | None = None
    solar_aperture_m2: float = 4.0
    internal_gains_w: float = 400.0

    def validate(self) -> list[str]:
        errs = []
        if self.floor_area_m2 <= 0:
            errs.append(f"floor_area_m2 must be > 0 (got {self.floor_area_m2})")
        if self.volume_m3 <= 0:
            errs.append(f"volume_m3 must be > 0 (got {self.volume_m3})")
        elif self.floor_area_m2 > 0 and not 1.8 <= self.volume_m3 / self.floor_area_m2 <= 8:
            errs.append(f"volume_m3 / floor_area_m2 must be a room height of 1.8..8 m "
                        f"(got {self.volume_m3 / self.floor_area_m2:.2f} m)")
        if not 0 <= self.ventilation_ach <= 5:
            errs.append(f"ventilation_ach must be within 0..5 (got {self.ventilation_ach})")
        if not 0 <= self.heat_recovery < 1:
            errs.append(f"heat_recovery must be within 0..0.95 (got {self.heat_recovery})")
        if self.ua_w_per_k is not None and self.ua_w_per_k <= 0:
            errs.append(f"ua_w_per_k must be > 0 (got {self.ua_w_per_k})")
        if self.capacitance_kwh_per_k is not None and self.capacitance_kwh_per_k <= 0:
            errs.append(f"capacitance_kwh_per_k must be > 0 (got {self.capacitance_kwh_per_k})")
        if self.solar_aperture_m2 < 0:
            errs.append(f"solar_aperture_m2 must be >= 0 (got {self.solar_aperture_m2})")
        return errs


HP_TYPES = ("gshp", "ashp_water", "air_to_air", "exhaust_air")
HP_SOURCE_DEFAULT = {"gshp": "brine", "ashp_water": "air", "air_to_air": "air", "exhaust_air": "exhaust_air"}
# Standard rating points (EN 14511): B0/W35 for brine, A7/W35 for air, A20(exhaust)/W35.
HP_RATING_SOURCE_C = {"brine": 0.0, "air": 7.0, "exhaust_air": 20.0}


@dataclass(frozen=True)
class HeatPumpConfig:
    type: Literal["gshp", "ashp_water", "air_to_air", "exhaust_air"] = "gshp"
    heat_source: Literal["air", "brine", "exhaust_air"] | None = None
    rated_heat_kw: float = 8.0
    nominal_cop: float = 4.5
    rating_source_c: float | None = None
    rating_supply_c: float = 35.0
    min_modulation: float = 0.25
    capacity_slope_per_k: float | None = None
    min_outdoor_c: float = -28.0
    brine_temp_c: float = 0.0
    supply_design_c: float = 40.0
    design_outdoor_c: float = -26.0
    aux_heater_kw: float = 6.0
    aux_deadband_k: float = 1.0
    off_allows_aux: bool = False
    eco_offset_k: float = 1.0
    boost_offset_k: float = 1.5
    boost_allows_aux: bool = False

    def validate(self) -> list[str]:
        errs = []
        if self.rated_heat_kw <= 0:
            errs.append(f"rated_heat_kw must be > 0 (thermal kW; got {self.rated_heat_kw})")
        if not 1.0 < self.nominal_cop <= 8.0:
            errs.append(f"nominal_cop must be within 1..8 (got {self.nominal_cop})")
        if not 0 <= self.min_modulation <= 1:
            errs.append(f"min_modulation must be a fraction 0..1 (got {self.min_modulation})")
        if self.aux_heater_kw < 0:
            errs.append(f"aux_heater_kw must be >= 0 (got {self.aux_heater_kw})")
        if not 0 <= self.eco_offset_k <= 5:
            errs.append(f"eco_offset_k must be within 0..5 K (got {self.eco_offset_k})")
        if not 0 <= self.boost_offset_k <= 5:
            errs.append(f"boost_offset_k must be within 0..5 K (got {self.boost_offset_k})")
        if not 20 <= self.supply_design_c <= 75:
            errs.append(f"supply_design_c must be within 20..75 °C (got {self.supply_design_c})")
        if self.design_outdoor_c >= 10:
            errs.append(f"design_outdoor_c must be below 10 °C (got {self.design_outdoor_c})")
        if self.aux_deadband_k < 0:
            errs.append(f"aux_deadband_k must be >= 0 (got {self.aux_deadband_k})")
        return errs

    @property
    def source(self) -> str:
        return self.heat_source or HP_SOURCE_DEFAULT[self.type]


@dataclass(frozen=True)
class SetbackConfig:
    start: time = time(22, 0)
    end: time = time(6, 0)
    target_c: float = 20.0
    min_c: float | None = None
    days: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

    def validate(self) -> list[str]:
        bad = [d for d in self.days if d not in WEEKDAYS]
        return [f"days must be among {', '.join(WEEKDAYS)} (got {bad})"] if bad else []


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class ComfortConfig:
    min_c: float = 20.0
    target_c: float = 21.0
    max_c: float = 23.0
    frost_c: float = 8.0
    setback: tuple[SetbackConfig, ...] = ()

    def validate(self) -> list[str]:
        errs = []
        if not self.min_c < self.max_c:
            errs.append(f"min_c must be below max_c (got {self.min_c:g} >= {self.max_c:g})")
        elif not self.min_c <= self.target_c <= self.max_c:
            errs.append(f"target_c must be within min_c..max_c ({self.min_c:g}..{self.max_c:g}; "
                        f"got {self.target_c:g})")
        if not 5 <= self.min_c <= 30:
            errs.append(f"min_c must be within 5..30 °C (got {self.min_c:g})")
        if self.frost_c >= self.min_c:
            errs.append(f"frost_c must be below min_c (got {self.frost_c:g} >= {self.min_c:g})")
        for i, s in enumerate(self.setback):
            lo = s.min_c if s.min_c is not None else self.min_c
            if not lo <= s.target_c <= self.max_c:
                errs.append(f"setback[{i}].target_c must be within {lo:g}..{self.max_c:g} (got {s.target_c:g})")
        return errs


@dataclass(frozen=True)
class VatConfig:
    since: date
    percent: float


FINNISH_VAT = (
    VatConfig(date(2013, 1, 1), 24.0),
    VatConfig(date(2022, 12, 1), 10.0),
    VatConfig(date(2023, 5, 1), 24.0),
    VatConfig(date(2024, 9, 1), 25.5),
)


@dataclass(frozen=True)
class TariffConfig:
    margin_c_per_kwh: float = 0.39
    transfer_c_per_kwh: float = 4.00
    transfer_night_c_per_kwh: float | None = None
    night_start: time = time(22, 0)
    night_end: time = time(7, 0)
    transfer_winter_day_c_per_kwh: float | None = None
    winter_months: tuple[int, ...] = (11, 12, 1, 2, 3)
    winter_day_start: time = time(7, 0)
    winter_day_end: time = time(22, 0)
    electricity_tax_c_per_kwh: float = 2.253
    vat: tuple[VatConfig, ...] = FINNISH_VAT
    billing_minutes: Literal[15, 60] = 15
    power_fee_eur_per_kw_month: float = 0.0

    def validate(self) -> list[str]:
        errs = []
        for name in ("margin_c_per_kwh", "transfer_c_per_kwh", "electricity_tax_c_per_kwh"):
            v = getattr(self, name)
            if not -5 <= v <= 100:
                errs.append(f"{name} must be within -5..100 c/kWh (got {v})")
        if not self.vat:
            errs.append("vat must list at least one {since, percent}")
        if list(self.vat) != sorted(self.vat, key=lambda v: v.since):
            errs.append("vat entries must be in date order")
        for v in self.vat:
            if not 0 <= v.percent <= 50:
                errs.append(f"vat percent must be within 0..50 (got {v.percent})")
        if any(not 1 <= m <= 12 for m in self.winter_months):
            errs.append(f"winter_months must be month numbers 1..12 (got {list(self.winter_months)})")
        if self.power_fee_eur_per_kw_month < 0:
            errs.append(f"power_fee_eur_per_kw_month must be >= 0 (got {self.power_fee_eur_per_kw_month})")
        return errs


PLANNERS = ("optimal", "greedy", "thermostat", "cheapest-hours")


@dataclass(frozen=True)
class PlannerConfig:
    slot_minutes: Literal[15, 60] = 15
    horizon_hours: int = 48
    planner: Literal["optimal", "greedy", "thermostat", "cheapest-hours"] = "optimal"
    comfort_margin_k: float = 0.3
    cheap_quantile: float = 0.33
    expensive_quantile: float = 0.67
    temp_step_k: float = 0.05
    co2_weight_eur_per_t: float = 0.0

    def validate(self) -> list[str]:
        errs = []
        if not 6 <= self.horizon_hours <= 96:
            errs.append(f"horizon_hours must be within 6..96 (got {self.horizon_hours})")
        if not 0 <= self.comfort_margin_k <= 2:
            errs.append(f"comfort_margin_k must be within 0..2 K (got {self.comfort_margin_k})")
        if not 0 < self.cheap_quantile < self.expensive_quantile < 1:
            errs.append("cheap_quantile must be below expensive_quantile, both within 0..1 "
                        f"(got {self.cheap_quantile}, {self.expensive_quantile})")
        if not 0.01 <= self.temp_step_k <= 0.5:
            errs.append(f"temp_step_k must be within 0.01..0.5 K (got {self.temp_step_k})")
        if self.co2_weight_eur_per_t < 0:
            errs.append(f"co2_weight_eur_per_t must be >= 0 (got {self.co2_weight_eur_per_t})")
        return errs


@dataclass(frozen=True)
class EntsoeConfig:
    enabled: bool = True
    token: str | None = None
    token_file: Path | None = None
    base_url: str = "https://web-api.tp.entsoe.eu/api"


@dataclass(frozen=True)
class KeylessPriceConfig:
    enabled: bool = True
    base_url: str = ""


@dataclass(frozen=True)
class OpenMeteoConfig:
    enabled: bool = True
    base_url: str = "https://api.open-meteo.com/v1/forecast"
    forecast_days: int = 3


@dataclass(frozen=True)
class FingridConfig:
    enabled: bool = True
    api_key: str | None = None
    api_key_file: Path | None = None
    base_url: str = "https://data.fingrid.fi/api"


@dataclass(frozen=True)
class SourcesConfig:
    price_order: tuple[str, ...] = ("entsoe", "porssisahko", "spothinta", "elering")
    cache_dir: Path | None = None
    timeout_s: float = 10.0
    price_poll_start_cet: time = time(13, 0)
    entsoe: EntsoeConfig = EntsoeConfig()
    porssisahko: KeylessPriceConfig = KeylessPriceConfig(base_url="https://api.porssisahko.net/v2")
    spothinta: KeylessPriceConfig = KeylessPriceConfig(base_url="https://api.spot-hinta.fi")
    elering: KeylessPriceConfig = KeylessPriceConfig(base_url="https://dashboard.elering.ee/api")
    openmeteo: OpenMeteoConfig = OpenMeteoConfig()
    fingrid: FingridConfig = FingridConfig()

    def validate(self) -> list[str]:
        errs = []
        known = ("entsoe", "porssisahko", "spothinta", "elering")
        bad = [p for p in self.price_order if p not in known]
        if bad:
            errs.append(f"price_order must name sources among {', '.join(known)} (got {bad})")
        if not 1 <= self.timeout_s <= 120:
            errs.append(f"timeout_s must be within 1..120 s (got {self.timeout_s})")
        return errs


@dataclass(frozen=True)
class MqttConfig:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    password_file: Path | None = None
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    client_id: str | None = None
    keepalive_s: int = 30
    topic_prefix: str = "atsd"
    accept_commands: bool = False
    ha_discovery: bool = False
    discovery_prefix: str = "homeassistant"

    def validate(self) -> list[str]:
        errs = []
        if not 1 <= self.port <= 65535:
            errs.append(f"port must be within 1..65535 (got {self.port})")
        if self.password and self.password_file:
            errs.append("password and password_file are exclusive: set one")
        if self.accept_commands and not self.username:
            errs.append("accept_commands = true needs broker credentials (username and password)")
        return errs


SENSOR_KINDS = ("onewire", "mqtt", "modbus", "s0", "simulated")
SENSOR_ROLES = ("indoor", "outdoor", "power", "energy", "supply")


@dataclass(frozen=True)
class SensorConfig:
    name: str
    kind: Literal["onewire", "mqtt", "modbus", "s0", "simulated"]
    role: Literal["indoor", "outdoor", "power", "energy", "supply"] = "indoor"
    max_age_s: float = 900.0
    min_value: float | None = None
    max_value: float | None = None
    max_jump_per_min: float | None = None
    # onewire
    sensor_id: str | None = None
    w1_dir: Path = Path("/sys/bus/w1/devices")
    # mqtt
    topic: str | None = None
    field: str | None = None
    preset: str | None = None
    # modbus (also for energy meters)
    host: str | None = None
    port: int = 502
    serial_port: str | None = None
    baudrate: int = 9600
    unit_id: int = 1
    register: int | None = None
    register_type: Literal["holding", "input"] = "holding"
    count: int = 1
    scale: float = 1.0
    signed: bool = False
    # s0 pulses
    pin: int | None = None
    pulses_per_kwh: float = 1000.0

    def validate(self) -> list[str]:
        need = {"onewire": ("sensor_id",), "mqtt": ("topic",), "modbus": ("register",), "s0": ("pin",),
                "simulated": ()}[self.kind]
        errs = [f"kind = {self.kind!r} needs {k}" for k in need if getattr(self, k) is None]
        if self.kind == "modbus" and self.host is None and self.serial_port is None:
            errs.append("kind = 'modbus' needs host (TCP) or serial_port (RTU)")
        if self.kind == "mqtt" and self.field is None and self.preset is None:
            errs.append("kind = 'mqtt' needs field (a JSON path like 'temperature') or preset")
        if self.count not in (1, 2, 4):
            errs.append(f"count must be 1, 2 or 4 registers (got {self.count})")
        if self.max_age_s <= 0:
            errs.append(f"max_age_s must be > 0 (got {self.max_age_s})")
        return errs


ACTUATOR_KINDS = ("sgready_gpio", "modbus", "mqtt", "simulated", "none")


@dataclass(frozen=True)
class ActuatorConfig:
    kind: Literal["sgready_gpio", "modbus", "mqtt", "simulated", "none"] = "none"
    preset: str | None = None
    modes: tuple[str, ...] | None = None
    allow_unbounded_block: bool = False
    min_dwell_min: float | None = None
    max_switches_per_hour: int | None = None
    write_timeout_s: float = 2.0
    # SG-Ready on GPIO: relay 1 and relay 2 (BCM numbers), energised = contact closed
    relay1_pin: int = 17
    relay2_pin: int = 27
    active_high: bool = True
    boost_state: Literal[3, 4] = 3
    # Modbus
    host: str | None = None
    port: int = 502
    serial_port: str | None = None
    baudrate: int = 9600
    unit_id: int = 1
    register: int | None = None
    values: Mapping[str, int] = field(default_factory=dict)
    verify: bool = True
    # MQTT
    topic: str | None = None
    payloads: Mapping[str, str] = field(default_factory=dict)
    qos: int = 1
    toggle_after_s: int = 900

    def validate(self) -> list[str]:
        errs = []
        for key, table in (("values", self.values), ("payloads", self.payloads)):
            bad = [k for k in table if k not in ("OFF", "ECO", "NORMAL", "BOOST")]
            if bad:
                errs.append(f"[actuator.{key}] keys must be modes OFF, ECO, NORMAL, BOOST (got {bad})")
        if self.modes is not None:
            bad = [m for m in self.modes if m not in ("OFF", "ECO", "NORMAL", "BOOST")]
            if bad:
                errs.append(f"modes must be among OFF, ECO, NORMAL, BOOST (got {bad})")
            elif "NORMAL" not in self.modes:
                errs.append("modes must include NORMAL, the fail-safe state")
        if self.kind == "sgready_gpio" and self.relay1_pin == self.relay2_pin:
            errs.append(f"relay1_pin and relay2_pin must differ (both {self.relay1_pin})")
        if self.kind == "modbus":
            if self.host is None and self.serial_port is None and self.preset is None:
                errs.append("kind = 'modbus' needs host (TCP) or serial_port (RTU)")
            if self.register is None and self.preset is None:
                errs.append("kind = 'modbus' needs register and [actuator.values], or a preset")
        if self.kind == "mqtt" and self.preset is None:
            if self.topic is None:
                errs.append("kind = 'mqtt' needs topic and [actuator.payloads], or a preset")
            elif "NORMAL" not in self.payloads:
                errs.append("kind = 'mqtt' needs a NORMAL payload in [actuator.payloads] (the fail-safe)")
        if self.qos not in (0, 1, 2):
            errs.append(f"qos must be 0, 1 or 2 (got {self.qos})")
        if not 60 <= self.toggle_after_s <= 86400:
            errs.append(f"toggle_after_s must be within 60..86400 s (got {self.toggle_after_s})")
        return errs


@dataclass(frozen=True)
class SupervisorConfig:
    min_dwell_min: float = 15.0
    max_switches_per_hour: int = 4
    max_off_block_min: float = 120.0
    min_off_gap_min: float = 60.0
    max_off_blocks_per_day: int = 3
    force_normal_below_k: float = 0.2
    force_boost_below_k: float = 1.0
    release_above_k: float = 0.3
    stale_sensor_min: float = 15.0
    no_sensor_max_off_min: float = 60.0

    def validate(self) -> list[str]:
        errs = []
        if not 0 <= self.min_dwell_min <= 120:
            errs.append(f"min_dwell_min must be within 0..120 (got {self.min_dwell_min})")
        if not 1 <= self.max_switches_per_hour <= 60:
            errs.append(f"max_switches_per_hour must be within 1..60 (got {self.max_switches_per_hour})")
        if not 0 <= self.max_off_block_min <= 24 * 60:
            errs.append(f"max_off_block_min must be within 0..1440 (got {self.max_off_block_min})")
        if self.min_off_gap_min < 0:
            errs.append(f"min_off_gap_min must be >= 0 (got {self.min_off_gap_min})")
        if not 0 <= self.max_off_blocks_per_day <= 24:
            errs.append(f"max_off_blocks_per_day must be within 0..24 (got {self.max_off_blocks_per_day})")
        if not self.force_boost_below_k >= self.force_normal_below_k >= 0:
            errs.append("force_boost_below_k must be >= force_normal_below_k >= 0 "
                        f"(got {self.force_boost_below_k}, {self.force_normal_below_k})")
        if self.release_above_k < 0:
            errs.append(f"release_above_k must be >= 0 (got {self.release_above_k})")
        if self.stale_sensor_min <= 0:
            errs.append(f"stale_sensor_min must be > 0 (got {self.stale_sensor_min})")
        return errs


@dataclass(frozen=True)
class WebConfig:
    enabled: bool = True
    bind: str = "0.0.0.0"
    port: int = 8080
    token: str | None = None
    token_file: Path | None = None
    private: bool = False
    max_body_bytes: int = 65536

    def validate(self) -> list[str]:
        errs = []
        if not 1 <= self.port <= 65535:
            errs.append(f"port must be within 1..65535 (got {self.port})")
        if self.private and not (self.token or self.token_file):
            errs.append("private = true needs token or token_file")
        return errs


@dataclass(frozen=True)
class DaemonConfig:
    state_dir: Path = Path("/var/lib/atsd")
    tick_s: float = 30.0
    flush_interval_s: float = 300.0
    raw_retention_days: int = 30
    aggregate_retention_days: int = 400
    calibrate_weekly: bool = False
    require_clock_sync: bool = True
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    def validate(self) -> list[str]:
        errs = []
        if not 1 <= self.tick_s <= 600:
            errs.append(f"tick_s must be within 1..600 (got {self.tick_s})")
        if not 10 <= self.flush_interval_s <= 3600:
            errs.append(f"flush_interval_s must be within 10..3600 (got {self.flush_interval_s})")
        if self.raw_retention_days < 1 or self.aggregate_retention_days < self.raw_retention_days:
            errs.append("raw_retention_days must be >= 1 and aggregate_retention_days >= raw_retention_days")
        return errs


@dataclass(frozen=True)
class GridConfig:
    demand_response: bool = True
    dr_max_duration_h: float = 4.0
    dr_max_events_per_day: int = 3
    publish_flexibility: bool = True
    shed_on_grid_stress: bool = False

    def validate(self) -> list[str]:
        errs = []
        if not 0 < self.dr_max_duration_h <= 24:
            errs.append(f"dr_max_duration_h must be within 0..24 (got {self.dr_max_duration_h})")
        if not 0 <= self.dr_max_events_per_day <= 24:
            errs.append(f"dr_max_events_per_day must be within 0..24 (got {self.dr_max_events_per_day})")
        return errs


@dataclass(frozen=True)
class FleetConfig:
    bind: str = "127.0.0.1"
    port: int = 8090
    token: str | None = None
    token_file: Path | None = None
    offline_after_s: float = 300.0


@dataclass(frozen=True)
class Config:
    device: DeviceConfig = DeviceConfig()
    building: BuildingConfig = BuildingConfig()
    heat_pump: HeatPumpConfig = HeatPumpConfig()
    comfort: ComfortConfig = ComfortConfig()
    tariff: TariffConfig = TariffConfig()
    planner: PlannerConfig = PlannerConfig()
    sources: SourcesConfig = SourcesConfig()
    mqtt: MqttConfig = MqttConfig()
    sensors: tuple[SensorConfig, ...] = ()
    actuator: ActuatorConfig = ActuatorConfig()
    supervisor: SupervisorConfig = SupervisorConfig()
    web: WebConfig = WebConfig()
    daemon: DaemonConfig = DaemonConfig()
    grid: GridConfig = GridConfig()
    fleet: FleetConfig = FleetConfig()
    path: Path | None = None

    def validate(self) -> list[str]:
        errs = []
        names = [s.name for s in self.sensors]
        dups = sorted({n for n in names if names.count(n) > 1})
        if dups:
            errs.append(f"[[sensors]] names must be unique (repeated: {', '.join(dups)})")
        return errs

    def redacted(self) -> dict[str, Any]:
        """The config as plain data with every secret shown as ``***`` (for logs and ``--print``)."""
        out: dict[str, Any] = _redact(_to_plain(self))
        return out


T = TypeVar("T")


def _to_plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {k: _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, tuple | list):
        return [_to_plain(v) for v in obj]
    if isinstance(obj, Path | date | time):
        return str(obj)
    return obj


def _redact(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: ("***" if k in SECRET_KEYS and v else _redact(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_redact(v) for v in obj]
    return obj


# --------------------------------------------------------------------------------------------
# Generic loader: walks the dataclasses' type hints; collects every problem with its key path.
# --------------------------------------------------------------------------------------------


class _Problems:
    def __init__(self, filename: str):
        self.filename = filename
        self.items: list[str] = []

    def add(self, section: str, key: str | None, message: str) -> None:
        where = f"[{section}] " if section else ""
        if key:
            where += f"{key}: "
        self.items.append(f"{self.filename}: {where}{message}")


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (types.UnionType, typing.Union):
        args = [a for a in get_args(tp) if a is not type(None)]
        return " or ".join(_type_name(a) for a in args)
    if origin is tuple:
        return f"a list of {_type_name(get_args(tp)[0])}"
    if origin is Mapping:
        return "a table"
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             Path: "a path string", time: "a time like \"22:00\"", date: "a date like 2024-09-01"}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return "a table"
    return names.get(tp, getattr(tp, "__name__", str(tp)))


_MISSING = object()


def _convert(value: Any, tp: Any, section: str, key: str, probs: _Problems) -> Any:
    origin = get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return _convert(value, non_none[0], section, key, probs)
    if origin is Literal:
        if value in get_args(tp) and type(value) is type(get_args(tp)[0]):
            return value
        probs.add(section, key, f"must be {_type_name(tp)} (got {value!r})")
        return _MISSING
    if origin is tuple:
        if not isinstance(value, list):
            probs.add(section, key, f"must be {_type_name(tp)} (got {value!r})")
            return _MISSING
        inner = get_args(tp)[0]
        out = []
        for i, v in enumerate(value):
            if isinstance(inner, type) and dataclasses.is_dataclass(inner):
                sub = f"{section}.{key}[{i}]" if section else f"{key}[{i}]"
                out.append(_build(inner, v, sub, probs))
            else:
                out.append(_convert(v, inner, section, f"{key}[{i}]", probs))
        return _MISSING if any(o is _MISSING for o in out) else tuple(out)
    if origin is Mapping:
        vt = get_args(tp)[1]
        if not isinstance(value, dict):
            probs.add(section, key, f"must be a table (got {value!r})")
            return _MISSING
        res = {str(k): _convert(v, vt, f"{section}.{key}", str(k), probs) for k, v in value.items()}
        return _MISSING if any(v is _MISSING for v in res.values()) else types.MappingProxyType(res)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _build(tp, value, f"{section}.{key}" if section else key, probs)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif tp is Path:
        if isinstance(value, str) and value:
            return Path(value)
    elif tp is time:
        if isinstance(value, time):
            return value
        if isinstance(value, str):
            try:
                return time.fromisoformat(value)
            except ValueError:
                pass
    elif tp is date:
        if isinstance(value, date):
            return value
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
    probs.add(section, key, f"must be {_type_name(tp)} (got {value!r})")
    return _MISSING


def _build(cls: type[T], data: Any, section: str, probs: _Problems) -> Any:
    if not isinstance(data, dict):
        probs.add(section, None, f"must be a table (got {data!r})")
        return _MISSING
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "path"}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    ok = True
    for key, value in data.items():
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(fields)}"
            probs.add(section, key, f"unknown key{hint}")
            ok = False
            continue
        conv = _convert(value, hints[key], section, key, probs)
        if conv is _MISSING:
            ok = False
        else:
            kwargs[key] = conv
    for name, f in fields.items():
        if name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            if name not in data:
                probs.add(section, name, f"is required ({_type_name(hints[name])})")
            ok = False
    if not ok:
        return _MISSING
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if validate is not None:
        for msg in validate():
            probs.add(section, None, msg)
    return obj


def parse(data: Mapping[str, Any], filename: str = "config.toml") -> Config:
    """Build a :class:`Config` from parsed TOML; raise :class:`ConfigError` listing every problem."""
    probs = _Problems(filename)
    cfg = _build(Config, dict(data), "", probs)
    if probs.items or cfg is _MISSING:
        raise ConfigError(probs.items or [f"{filename}: invalid configuration"])
    assert isinstance(cfg, Config)
    return cfg


def load(path: Path | str | None = None) -> Config:
    """Read and validate a TOML file (default ``/etc/atsd/config.toml``)."""
    p = Path(path) if path is not None else DEFAULT_PATH
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError([f"{p}: file not found (write one from config.example.toml, or pass --config)"]) from None
    except OSError as exc:
        raise ConfigError([f"{p}: cannot read: {exc.strerror}"]) from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{p}: TOML syntax error: {exc}"]) from exc
    cfg = parse(data, str(p))
    return dataclasses.replace(cfg, path=p)


def read_secret(value: str | None, file: Path | None, env: str | None = None) -> str | None:
    """A secret from the config value, else a file (systemd credentials), else an environment variable."""
    if value:
        return value
    if file is not None:
        try:
            return file.read_text(encoding="utf-8").strip() or None
        except OSError:
            return None
    if env:
        # systemd LoadCredential: ATSD_ENTSOE_TOKEN is the credential file "entsoe_token"
        creds = os.environ.get("CREDENTIALS_DIRECTORY")
        if creds:
            p = Path(creds) / env.lower().removeprefix("atsd_")
            if p.exists():
                return p.read_text(encoding="utf-8").strip() or None
        return os.environ.get(env) or None
    return None
