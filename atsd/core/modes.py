"""The four operating modes and what each means physically: a setpoint and what may heat.

The planner chooses a mode per slot; an actuator expresses it (SG-Ready relays, a register, an MQTT
payload). Physically every mode is a thermostat setpoint relative to the comfort target plus which heat
sources may run. NORMAL is the fail-safe: de-energised SG-Ready relays, the heat pump's own control.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Mode(StrEnum):
    OFF = "OFF"
    ECO = "ECO"
    NORMAL = "NORMAL"
    BOOST = "BOOST"

    @property
    def rank(self) -> int:
        """Heating intensity order: OFF < ECO < NORMAL < BOOST."""
        return _RANK[self]

    @classmethod
    def parse(cls, text: str) -> Mode:
        try:
            return cls(text.strip().upper())
        except ValueError:
            raise ValueError(f"unknown mode {text!r}; expected one of OFF, ECO, NORMAL, BOOST") from None


_RANK = {Mode.OFF: 0, Mode.ECO: 1, Mode.NORMAL: 2, Mode.BOOST: 3}
ALL_MODES: tuple[Mode, ...] = (Mode.OFF, Mode.ECO, Mode.NORMAL, Mode.BOOST)


@dataclass(frozen=True, slots=True)
class ModeSpec:
    """What a mode does to the heat pump, relative to the comfort target.

    ``compressor_offset_k``: the compressor's setpoint is ``target + offset`` (None: compressor
    blocked). ``aux_offset_k``: the electric auxiliary heater may run, at COP 1, to keep the house at
    ``target + offset - aux_deadband`` (None: aux blocked). This is how the degree-minute control of
    Nordic water-borne heat pumps behaves: the immersion heater only starts once a deficit has built up.
    """

    mode: Mode
    compressor_offset_k: float | None
    aux_offset_k: float | None


def mode_specs(eco_offset_k: float, boost_offset_k: float, *, has_aux: bool, off_allows_aux: bool,
               boost_allows_aux: bool) -> dict[Mode, ModeSpec]:
    """Build the physical meaning of each mode from the heat pump's configured behaviour.

    - OFF blocks the compressor (SG-Ready state 1). On units whose auxiliary heater stays allowed
      during a block, it holds the house near the ECO setpoint at COP 1.
    - ECO lowers the setpoint by ``eco_offset_k`` (the model clamps it at comfort min).
    - NORMAL is the heat pump's own control at the target.
    - BOOST raises the setpoint by ``boost_offset_k`` (clamped at comfort max); the auxiliary heater
      follows the raised setpoint only when BOOST releases it (SG-Ready state 4 on many units).
    """
    aux_normal = 0.0 if has_aux else None
    return {
        Mode.OFF: ModeSpec(Mode.OFF, None, -eco_offset_k if (has_aux and off_allows_aux) else None),
        Mode.ECO: ModeSpec(Mode.ECO, -eco_offset_k, -eco_offset_k if has_aux else None),
        Mode.NORMAL: ModeSpec(Mode.NORMAL, 0.0, aux_normal),
        Mode.BOOST: ModeSpec(Mode.BOOST, boost_offset_k,
                             (boost_offset_k if boost_allows_aux else 0.0) if has_aux else None),
    }
