"""Building and heat-pump physics: a 1R1C house driven by a thermostat-controlled heat pump.

The house is one thermal capacity ``C`` (J/K) losing heat through a conductance ``UA`` (W/K) to the
outdoor air, gaining solar (GHI × aperture) and internal heat. Within a slot the outdoor temperature
and gains are constant, so the indoor temperature follows an exponential towards its equilibrium;
the model solves this exactly (no Euler steps).

The heat pump is modelled the way it behaves, not as a free power knob: each mode is a thermostat
setpoint (see :mod:`atsd.core.modes`). Below its setpoint the compressor delivers its capacity (which
falls in the cold for air-source units); at the setpoint it holds; above it, it stops. An electric
auxiliary heater (COP 1) joins only once the house is ``aux_deadband_k`` below the aux setpoint. The
slot is integrated exactly through every switch of that piecewise thermostat, vectorised over any
array of start temperatures and modes.

COP is a Carnot fraction calibrated to the nominal COP at the rating point, using the source
temperature (outdoor air, brine or exhaust air) and the supply temperature the emitters need for the
heat delivered: more heat per hour (BOOST, catch-up) needs a hotter supply and costs efficiency.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from atsd.core.modes import ALL_MODES, Mode, ModeSpec, mode_specs
from atsd.core.timegrid import Grid

FloatArray = NDArray[np.float64]
KELVIN = 273.15
J_PER_KWH = 3.6e6
EMITTER_EXPONENT = 1.3  # radiator / floor-heating output ∝ (supply - room)^n
MIN_LIFT_K = 8.0  # below this the Carnot formula runs away; real units cap COP too
MAX_COP = 8.0


class HeatPumpKind(StrEnum):
    GSHP = "gshp"  # ground source, brine to water
    ASHP_WATER = "ashp_water"  # air to water
    AIR_TO_AIR = "air_to_air"
    EXHAUST_AIR = "exhaust_air"


class HeatSource(StrEnum):
    AIR = "air"
    BRINE = "brine"
    EXHAUST_AIR = "exhaust_air"


@dataclass(frozen=True, slots=True)
class Building:
    """Thermal parameters of the house (SI units)."""

    ua_w_per_k: float
    capacitance_j_per_k: float
    solar_aperture_m2: float = 0.0
    internal_gains_w: float = 0.0

    @property
    def capacitance_kwh_per_k(self) -> float:
        return self.capacitance_j_per_k / J_PER_KWH

    @property
    def tau_s(self) -> float:
        return self.capacitance_j_per_k / self.ua_w_per_k

    def gains_w(self, ghi_w_m2: FloatArray) -> FloatArray:
        return self.internal_gains_w + self.solar_aperture_m2 * np.nan_to_num(ghi_w_m2, nan=0.0)


@dataclass(frozen=True, slots=True)
class HeatPump:
    """Heat-pump capacity and efficiency. Heat in W (thermal), temperatures in °C."""

    kind: HeatPumpKind
    source: HeatSource
    rated_heat_w: float
    nominal_cop: float
    rating_source_c: float
    rating_supply_c: float
    min_modulation: float = 0.3
    aux_heater_w: float = 0.0
    capacity_slope_per_k: float = 0.0  # fractional capacity change per K of source temperature
    min_outdoor_c: float = -30.0  # compressor cut-off for air-source units
    brine_temp_c: float = 0.0
    exhaust_air_c: float = 20.0
    supply_design_c: float = 40.0  # supply temperature at the design outdoor temperature
    design_outdoor_c: float = -26.0
    aux_deadband_k: float = 0.5
    cycling_loss: float = 0.1  # COP degradation coefficient below minimum modulation

    @property
    def carnot_fraction(self) -> float:
        sink = self.rating_supply_c + KELVIN
        lift = max(MIN_LIFT_K, self.rating_supply_c - self.rating_source_c)
        return self.nominal_cop * lift / sink

    def source_c(self, outdoor_c: FloatArray) -> FloatArray:
        if self.source is HeatSource.AIR:
            return np.asarray(outdoor_c, dtype=np.float64)
        if self.source is HeatSource.BRINE:
            return np.full_like(np.asarray(outdoor_c, dtype=np.float64), self.brine_temp_c)
        return np.full_like(np.asarray(outdoor_c, dtype=np.float64), self.exhaust_air_c)

    def capacity_w(self, outdoor_c: FloatArray) -> FloatArray:
        """Compressor heat output at full speed; air-source units lose capacity in the cold."""
        src = self.source_c(outdoor_c)
        frac = 1.0 + self.capacity_slope_per_k * (src - self.rating_source_c)
        cap = self.rated_heat_w * np.clip(frac, 0.2, 1.3)
        if self.source is HeatSource.AIR:
            cap = np.where(np.asarray(outdoor_c) < self.min_outdoor_c, 0.0, cap)
        return np.asarray(cap, dtype=np.float64)

    def cop(self, source_c: FloatArray | float, supply_c: FloatArray | float) -> FloatArray:
        """Carnot-fraction COP; falls as the lift (supply minus source) rises."""
        sink = np.asarray(supply_c, dtype=np.float64) + KELVIN
        lift = np.maximum(MIN_LIFT_K, np.asarray(supply_c) - np.asarray(source_c))
        return np.asarray(np.clip(self.carnot_fraction * sink / lift, 1.0, MAX_COP), dtype=np.float64)

    def supply_c(self, indoor_c: FloatArray, heat_w: FloatArray, design_heat_w: float) -> FloatArray:
        """Supply temperature the emitters need to deliver ``heat_w`` into a room at ``indoor_c``."""
        load = np.clip(np.asarray(heat_w) / max(design_heat_w, 1.0), 0.0, 3.0)
        return np.asarray(indoor_c + (self.supply_design_c - 20.0) * load ** (1.0 / EMITTER_EXPONENT),
                          dtype=np.float64)


@dataclass(frozen=True)
class Drive:
    """Everything about the slots that does not depend on the chosen modes, precomputed once.

    Per-mode arrays have shape ``(4, n)`` indexed by ``Mode.rank``.
    """

    grid: Grid
    outdoor_c: FloatArray
    gains_w: FloatArray
    target_c: FloatArray
    min_c: FloatArray
    max_c: FloatArray
    decay: FloatArray  # exp(-dt / tau), scalar per slot
    source_c: FloatArray
    comp_cap_w: FloatArray  # (4, n) compressor capacity, 0 where blocked
    comp_set_c: FloatArray  # (4, n) compressor setpoint
    aux_cap_w: FloatArray  # (4, n)
    aux_set_c: FloatArray  # (4, n) level below which aux heats (setpoint minus deadband)
    cop_best: FloatArray  # most optimistic COP of each slot (for the relaxed bound)
    extra: dict[str, FloatArray] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return self.grid.n

    @cached_property
    def scalars(self) -> tuple[list[list[float]], list[list[float]], list[list[float]], list[list[float]],
                               list[float], list[float], list[float]]:
        """The arrays as plain Python lists, for :meth:`ThermalModel.step1` (scalar numpy reads are slow):
        ``(comp_cap, aux_cap, aux_set, comp_set, outdoor, gains, source)``, per-mode ones indexed
        ``[rank][slot]``."""
        return (self.comp_cap_w.tolist(), self.aux_cap_w.tolist(), self.aux_set_c.tolist(),
                self.comp_set_c.tolist(), self.outdoor_c.tolist(), self.gains_w.tolist(),
                self.source_c.tolist())


@dataclass(frozen=True)
class StepResult:
    end_c: FloatArray
    mean_c: FloatArray
    heat_comp_j: FloatArray
    heat_aux_j: FloatArray
    elec_kwh: FloatArray

    @property
    def heat_kwh(self) -> FloatArray:
        return np.asarray((self.heat_comp_j + self.heat_aux_j) / J_PER_KWH, dtype=np.float64)


@dataclass(frozen=True)
class Trajectory:
    """A simulated schedule: per slot start/end temperature, energy and heat."""

    start_c: FloatArray
    end_c: FloatArray
    mean_c: FloatArray
    elec_kwh: FloatArray
    aux_kwh: FloatArray
    heat_kwh: FloatArray


@dataclass(frozen=True)
class ThermalModel:
    building: Building
    heat_pump: HeatPump
    specs: dict[Mode, ModeSpec]

    @classmethod
    def with_defaults(cls, building: Building, heat_pump: HeatPump, eco_offset_k: float = 1.0,
                      boost_offset_k: float = 1.5, off_allows_aux: bool = False,
                      boost_allows_aux: bool = False) -> ThermalModel:
        specs = mode_specs(eco_offset_k, boost_offset_k, has_aux=heat_pump.aux_heater_w > 0,
                           off_allows_aux=off_allows_aux, boost_allows_aux=boost_allows_aux)
        return cls(building, heat_pump, specs)

    @cached_property
    def _scalar_constants(self) -> tuple[float, float, float, float]:
        """``(UA, tau, Carnot fraction, design heat)`` for :meth:`step1`, computed once."""
        return (self.building.ua_w_per_k, self.building.tau_s, self.heat_pump.carnot_fraction,
                max(self.design_heat_w, 1.0))

    @property
    def design_heat_w(self) -> float:
        return self.building.ua_w_per_k * (20.0 - self.heat_pump.design_outdoor_c)

    def drive(self, grid: Grid, outdoor_c: FloatArray, ghi_w_m2: FloatArray | None,
              target_c: FloatArray, min_c: FloatArray, max_c: FloatArray) -> Drive:
        n = grid.n
        out = np.asarray(outdoor_c, dtype=np.float64)
        if out.shape != (n,) or np.isnan(out).any():
            raise ValueError("outdoor temperature must cover every slot of the grid (no NaN)")
        ghi = np.zeros(n) if ghi_w_m2 is None else np.asarray(ghi_w_m2, dtype=np.float64)
        gains = self.building.gains_w(ghi)
        decay = np.full(n, math.exp(-grid.step_s / self.building.tau_s))
        hp = self.heat_pump
        cap = hp.capacity_w(out)
        comp_cap = np.zeros((4, n))
        comp_set = np.full((4, n), -np.inf)
        aux_cap = np.zeros((4, n))
        aux_set = np.full((4, n), -np.inf)
        for m in ALL_MODES:
            spec = self.specs[m]
            r = m.rank
            if spec.compressor_offset_k is not None:
                comp_cap[r] = cap
                comp_set[r] = np.clip(target_c + spec.compressor_offset_k, min_c, max_c)
            if spec.aux_offset_k is not None and hp.aux_heater_w > 0:
                aux_cap[r] = hp.aux_heater_w
                aux_set[r] = np.clip(target_c + spec.aux_offset_k, min_c, max_c) - hp.aux_deadband_k
            if spec.compressor_offset_k is None:
                # a blocked compressor: the aux level (if any) is the only thermostat
                comp_set[r] = aux_set[r]
        source = hp.source_c(out)
        cop_best = hp.cop(source, np.asarray(min_c, dtype=np.float64))
        return Drive(grid, out, gains, np.asarray(target_c, dtype=np.float64),
                     np.asarray(min_c, dtype=np.float64), np.asarray(max_c, dtype=np.float64), decay,
                     source, comp_cap, comp_set, aux_cap, aux_set, cop_best)

    # -- one slot, exact -------------------------------------------------------------------------

    def step(self, d: Drive, k: int | NDArray[np.int_], start_c: FloatArray | float,
             mode_rank: NDArray[np.int_] | int) -> StepResult:
        """Advance start temperatures through slot(s) ``k`` under the given mode(s), exactly.

        ``k``, ``start_c`` and ``mode_rank`` broadcast against each other, so one call can evaluate
        every (slot, mode, temperature) triple of a dynamic program at once.
        """
        ua = self.building.ua_w_per_k
        tau = self.building.tau_s
        dt = float(d.grid.step_s)
        t_b, r_b, k_b = np.broadcast_arrays(np.asarray(start_c, dtype=np.float64), np.asarray(mode_rank),
                                            np.asarray(k))
        shape = t_b.shape
        t_all = t_b.astype(np.float64).ravel()
        r_all = r_b.ravel()
        k_all = k_b.ravel()
        qc_all = d.comp_cap_w[r_all, k_all]
        qa_all = d.aux_cap_w[r_all, k_all]
        b1_all = d.aux_set_c[r_all, k_all]
        b2_all = np.maximum(d.comp_set_c[r_all, k_all], b1_all)
        tout_all = d.outdoor_c[k_all]
        g_all = d.gains_w[k_all]
        size = t_all.size
        left_all = np.full(size, dt)
        e_comp = np.zeros(size)
        e_aux = np.zeros(size)
        integral = np.zeros(size)  # ∫T dt, for the mean temperature
        eps = 1e-9
        idx: NDArray[np.intp] | slice = slice(None)  # the first pass takes all, without copies
        # Each pass runs every element through one regime of the thermostat (up to a boundary or the
        # slot's end); most finish in the first pass, so later passes work on the rest only.
        for _ in range(5):
            t = t_all[idx]
            if t.size == 0:
                break
            left = left_all[idx]
            qc, qa, b1, b2 = qc_all[idx], qa_all[idx], b1_all[idx], b2_all[idx]
            tout, g = tout_all[idx], g_all[idx]
            # Heat that holds each boundary exactly (sliding mode of the thermostat).
            h1 = ua * (b1 - tout) - g
            h2 = ua * (b2 - tout) - g
            at1 = np.isfinite(b1) & (np.abs(t - b1) <= eps)
            at2 = np.isfinite(b2) & (np.abs(t - b2) <= eps)
            slide2 = at2 & (h2 >= 0.0) & (h2 <= qc)
            slide1 = at1 & ~slide2 & (h1 >= qc) & (h1 <= qc + qa)
            # Region capacities: below b1: comp+aux; between: comp; above b2: nothing.
            below1 = t < b1 - eps
            above2 = t > b2 + eps
            q_comp = np.where(above2, 0.0, qc)
            q_aux = np.where(below1, qa, 0.0)
            # At a boundary that does not slide, the flow decides the side.
            up2 = at2 & (tout + g / ua > b2)
            q_comp = np.where(at2 & ~slide2 & up2, 0.0, q_comp)
            down1 = at1 & (tout + (qc + g) / ua < b1)
            q_aux = np.where(at1 & ~slide1 & down1 & ~at2, qa, q_aux)
            tin = tout + (q_comp + q_aux + g) / ua
            rising = tin > t
            goal = np.where(rising, np.where(t < b1 - eps, b1, np.where(t < b2 - eps, b2, np.inf)),
                            np.where(t > b2 + eps, b2, np.where(t > b1 + eps, b1, -np.inf)))
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = (goal - tin) / (t - tin)
                t_goal = np.where((ratio > 0) & (ratio < 1) & np.isfinite(goal), -tau * np.log(ratio), np.inf)
            sliding = slide1 | slide2
            run = np.where(sliding, left, np.minimum(t_goal, left))
            q_comp = np.where(slide2, h2, np.where(slide1, qc, q_comp))
            q_aux = np.where(slide2, 0.0, np.where(slide1, h1 - qc, q_aux))
            tin = np.where(sliding, t, tout + (q_comp + q_aux + g) / ua)
            ex = np.exp(-run / tau)
            t_new = tin + (t - tin) * ex
            integral[idx] += np.where(run > 0, tin * run + (t - tin) * tau * (1 - ex), 0.0)
            hit = ~sliding & (t_goal <= left)
            t_all[idx] = np.where(hit, goal, t_new)
            e_comp[idx] += q_comp * run
            e_aux[idx] += q_aux * run
            left = left - run
            left_all[idx] = left
            idx = np.flatnonzero(left > 0) if isinstance(idx, slice) else idx[left > 0]
        mean_c = integral / dt
        comp_w = e_comp / dt
        supply = self.heat_pump.supply_c(mean_c, comp_w + e_aux / dt, self.design_heat_w)
        cop = self.heat_pump.cop(d.source_c[k_all], supply)
        plr = np.where(qc_all > 0, comp_w / np.where(qc_all > 0, qc_all, 1.0), 1.0)
        hp = self.heat_pump
        deg = np.where(plr < hp.min_modulation,
                       1.0 - hp.cycling_loss * (1.0 - plr / max(hp.min_modulation, 1e-6)), 1.0)
        elec_j = e_comp / (cop * deg) + e_aux
        return StepResult(t_all.reshape(shape), mean_c.reshape(shape), e_comp.reshape(shape),
                          e_aux.reshape(shape), (elec_j / J_PER_KWH).reshape(shape))

    def step1(self, d: Drive, k: int, start_c: float, mode_rank: int) -> tuple[float, float, float, float, float]:
        """:meth:`step` for one temperature, in plain Python (numpy's per-call cost dominates here).

        Returns ``(end_c, mean_c, heat_comp_j, heat_aux_j, elec_kwh)``; a property test keeps it
        identical to the vectorised :meth:`step`.
        """
        ua, tau, carnot, design_w = self._scalar_constants
        dt = float(d.grid.step_s)
        cap, aux, aux_set, comp_set, outdoor, gains, source = d.scalars
        qc = cap[mode_rank][k]
        qa = aux[mode_rank][k]
        b1 = aux_set[mode_rank][k]
        b2 = max(comp_set[mode_rank][k], b1)
        tout = outdoor[k]
        g = gains[k]
        t = float(start_c)
        left = dt
        e_comp = e_aux = integral = 0.0
        eps = 1e-9
        for _ in range(5):
            if left <= 0:
                break
            h1 = ua * (b1 - tout) - g
            h2 = ua * (b2 - tout) - g
            at1 = math.isfinite(b1) and abs(t - b1) <= eps
            at2 = math.isfinite(b2) and abs(t - b2) <= eps
            if at2 and 0.0 <= h2 <= qc:
                e_comp += h2 * left
                integral += t * left
                left = 0.0
                break
            if at1 and qc <= h1 <= qc + qa:
                e_comp += qc * left
                e_aux += (h1 - qc) * left
                integral += t * left
                left = 0.0
                break
            q_comp = 0.0 if t > b2 + eps else qc
            q_aux = qa if t < b1 - eps else 0.0
            if at2 and tout + g / ua > b2:
                q_comp = 0.0
            if at1 and not at2 and tout + (qc + g) / ua < b1:
                q_aux = qa
            tin = tout + (q_comp + q_aux + g) / ua
            if tin > t:
                goal = b1 if t < b1 - eps else (b2 if t < b2 - eps else math.inf)
            else:
                goal = b2 if t > b2 + eps else (b1 if t > b1 + eps else -math.inf)
            t_goal = math.inf
            if math.isfinite(goal) and t != tin:
                ratio = (goal - tin) / (t - tin)
                if 0.0 < ratio < 1.0:
                    t_goal = -tau * math.log(ratio)
            run = min(t_goal, left)
            ex = math.exp(-run / tau)
            integral += tin * run + (t - tin) * tau * (1.0 - ex)
            t = goal if t_goal <= left else tin + (t - tin) * ex
            e_comp += q_comp * run
            e_aux += q_aux * run
            left -= run
        mean_c = integral / dt
        hp = self.heat_pump
        comp_w = e_comp / dt
        load = min(max((comp_w + e_aux / dt) / design_w, 0.0), 3.0)
        supply = mean_c + (hp.supply_design_c - 20.0) * load ** (1.0 / EMITTER_EXPONENT)
        lift = max(MIN_LIFT_K, supply - source[k])
        cop = min(max(carnot * (supply + KELVIN) / lift, 1.0), MAX_COP)
        plr = comp_w / qc if qc > 0 else 1.0
        deg = 1.0 - hp.cycling_loss * (1.0 - plr / max(hp.min_modulation, 1e-6)) if plr < hp.min_modulation else 1.0
        elec_kwh = (e_comp / (cop * deg) + e_aux) / J_PER_KWH
        return t, mean_c, e_comp, e_aux, elec_kwh

    def simulate(self, d: Drive, start_c: float, modes: list[Mode] | NDArray[np.int_]) -> Trajectory:
        """Run a whole schedule from ``start_c``; the slot-to-slot recursion is sequential."""
        ranks = [m.rank if isinstance(m, Mode) else int(m) for m in modes]
        n = len(ranks)
        s = np.empty(n)
        e = np.empty(n)
        mean = np.empty(n)
        el = np.empty(n)
        aux = np.empty(n)
        heat = np.empty(n)
        t = float(start_c)
        for k in range(n):
            end, mc, ec, ea, ek = self.step1(d, k, t, ranks[k])
            s[k] = t
            e[k] = end
            mean[k] = mc
            el[k] = ek
            aux[k] = ea / J_PER_KWH
            heat[k] = (ec + ea) / J_PER_KWH
            t = end
        return Trajectory(s, e, mean, el, aux, heat)


def estimate_ua_w_per_k(floor_area_m2: float, volume_m3: float, u_value_w_m2k: float,
                        ventilation_ach: float, heat_recovery: float) -> float:
    """Transmission plus ventilation losses of a simple one-storey box.

    Envelope = walls (perimeter of a square footprint × height) + roof + ground floor. Ventilation
    carries ``ventilation_ach`` air changes per hour at 0.33 Wh/(m³K), less the recovered share.
    """
    height = volume_m3 / floor_area_m2
    perimeter = 4.0 * math.sqrt(floor_area_m2)
    envelope = perimeter * height + 2.0 * floor_area_m2
    transmission = u_value_w_m2k * envelope
    ventilation = 0.33 * ventilation_ach * volume_m3 * (1.0 - heat_recovery)
    return transmission + ventilation


def estimate_capacitance_j_per_k(floor_area_m2: float, per_m2_j: float = 100e3) -> float:
    """Effective thermal mass: about 100 kJ/K per m² of floor for a Nordic timber/brick house."""
    return per_m2_j * floor_area_m2
