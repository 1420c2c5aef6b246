"""Health alerts for one house: what a predictive-maintenance service would tell its owner.

Fed once per control tick by the daemon, it raises plain-words alerts:

- ``not_delivering``: an hour of BOOST in which the house warmed far less than the model says it should
  (a failed compressor, a tripped breaker, a heat pump that ignores the relays);
- ``sensor_stuck``: an indoor sensor whose value has not changed at all for hours while the heat pump
  switched; ``sensor_drift``: one indoor sensor far from the others for an hour;
- ``actuator``: repeated failed or unverified actuator commands (read-back mismatch, no answer);
- ``overrides``: the supervisor overriding the plan often (the model or the sensors are off);
- ``model_drift``: the weekly re-fit moved the house's heat loss or mass a lot since the last fit.

Alerts clear by themselves when the condition goes away. Thresholds are deliberately coarse: an alert
must mean something is wrong, not that the weather was unusual.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import median
from typing import Any

from atsd.core.modes import Mode

BOOST_CHECK = timedelta(hours=1)
MIN_PREDICTED_RISE_K = 0.4
DELIVERY_SHARE = 0.3
STUCK_AFTER = timedelta(hours=6)
DRIFT_K = 2.0
DRIFT_FOR = timedelta(hours=1)
ACTUATOR_ERRORS_PER_HOUR = 3
OVERRIDE_SHARE = 0.15
MODEL_DRIFT = 0.25


@dataclass
class Alert:
    code: str
    level: str
    message: str
    since: datetime

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, "level": self.level, "message": self.message, "since": self.since}


@dataclass
class _Boost:
    start: datetime
    measured_start_c: float
    predicted_c: float


@dataclass
class HealthMonitor:
    alerts: dict[str, Alert] = field(default_factory=dict)
    _boost: _Boost | None = None
    _sensor_last: dict[str, tuple[float, datetime]] = field(default_factory=dict)
    _drift_since: dict[str, datetime] = field(default_factory=dict)
    _switch_times: deque[datetime] = field(default_factory=lambda: deque(maxlen=1000))
    _errors: deque[datetime] = field(default_factory=lambda: deque(maxlen=100))
    _ticks: deque[tuple[datetime, bool]] = field(default_factory=lambda: deque(maxlen=3000))

    def _raise(self, code: str, level: str, message: str, now: datetime) -> None:
        old = self.alerts.get(code)
        self.alerts[code] = Alert(code, level, message, old.since if old else now)

    def _clear(self, code: str) -> None:
        self.alerts.pop(code, None)

    def active(self) -> list[dict[str, Any]]:
        return [a.as_json() for a in self.alerts.values()]

    # -- inputs, once per tick ------------------------------------------------------------------

    def delivery(self, now: datetime, mode: Mode, indoor_c: float | None, predicted_end_c: float | None) -> None:
        """``predicted_end_c``: the model's temperature at ``now`` had it followed this tick from the
        previous prediction (the daemon steps the model with the mode actually applied)."""
        if mode is not Mode.BOOST or indoor_c is None:
            self._boost = None
            return
        b = self._boost
        if b is None or predicted_end_c is None:
            self._boost = _Boost(now, indoor_c, indoor_c)
            return
        b.predicted_c = predicted_end_c
        if now - b.start < BOOST_CHECK:
            return
        predicted = b.predicted_c - b.measured_start_c
        measured = indoor_c - b.measured_start_c
        if predicted >= MIN_PREDICTED_RISE_K and measured < DELIVERY_SHARE * predicted:
            self._raise("not_delivering", "critical",
                        f"The heat pump does not deliver: an hour of BOOST should have warmed the house "
                        f"{predicted:.1f} K, it warmed {measured:+.1f} K. Check the heat pump and its relays.", now)
        elif predicted >= MIN_PREDICTED_RISE_K:
            self._clear("not_delivering")
        self._boost = _Boost(now, indoor_c, indoor_c)

    def predicted_start(self) -> float | None:
        return None if self._boost is None else self._boost.predicted_c

    def sensors(self, now: datetime, indoor: dict[str, float], switched: bool) -> None:
        if switched:
            self._switch_times.append(now)
        for name, value in indoor.items():
            last = self._sensor_last.get(name)
            if last is None or last[0] != value:
                self._sensor_last[name] = (value, now)
                self._clear(f"sensor_stuck:{name}")
            elif now - last[1] >= STUCK_AFTER and any(t > last[1] for t in self._switch_times):
                self._raise(f"sensor_stuck:{name}", "warning",
                            f"Indoor sensor {name} has read exactly {value:.2f} °C for "
                            f"{(now - last[1]).total_seconds() / 3600:.0f} h while the heat pump switched: "
                            "is it stuck or out of its room?", now)
        if len(indoor) >= 2:
            mid = median(indoor.values())
            for name, value in indoor.items():
                others = [v for k, v in indoor.items() if k != name]
                ref = median(others) if len(indoor) > 2 else mid
                off = abs(value - ref) > DRIFT_K if len(indoor) > 2 else abs(value - others[0]) > DRIFT_K
                if off:
                    since = self._drift_since.setdefault(name, now)
                    if now - since >= DRIFT_FOR and len(indoor) > 2:
                        self._raise(f"sensor_drift:{name}", "warning",
                                    f"Indoor sensor {name} reads {value:.1f} °C, {value - ref:+.1f} K from the "
                                    "others for over an hour: drifting, or in a sunny or cold spot.", now)
                    elif now - since >= DRIFT_FOR:
                        self._raise("sensor_drift", "warning",
                                    f"The indoor sensors disagree by {abs(value - others[0]):.1f} K for over an "
                                    "hour; the median is used, check which one is right.", now)
                else:
                    self._drift_since.pop(name, None)
                    self._clear(f"sensor_drift:{name}")
            if all(abs(v - mid) <= DRIFT_K / 2 for v in indoor.values()):
                self._clear("sensor_drift")

    def actuator(self, now: datetime, failed: bool) -> None:
        if failed:
            self._errors.append(now)
        recent = [t for t in self._errors if now - t <= timedelta(hours=1)]
        if len(recent) >= ACTUATOR_ERRORS_PER_HOUR:
            self._raise("actuator", "critical",
                        f"{len(recent)} actuator commands failed or did not read back in the last hour: check the "
                        "wiring, the relay board or the heat pump's Modbus/MQTT link.", now)
        elif not recent:
            self._clear("actuator")

    def supervisor(self, now: datetime, overridden: bool) -> None:
        self._ticks.append((now, overridden))
        day = [o for t, o in self._ticks if now - t <= timedelta(hours=24)]
        if len(day) >= 60 and sum(day) / len(day) > OVERRIDE_SHARE:
            self._raise("overrides", "warning",
                        f"The supervisor overrode the plan in {100 * sum(day) / len(day):.0f} % of the last day's "
                        "ticks: the house model or a sensor is probably off (try atsd calibrate).", now)
        elif len(day) >= 60:
            self._clear("overrides")

    def model(self, now: datetime, old: dict[str, float] | None, new: dict[str, float] | None) -> None:
        if not old or not new:
            return
        changes = {k: new[k] / old[k] - 1 for k in ("ua_w_per_k", "capacitance_kwh_per_k")
                   if old.get(k) and new.get(k)}
        big = {k: v for k, v in changes.items() if abs(v) > MODEL_DRIFT}
        if big:
            what = ", ".join(f"{k.split('_')[0].upper()} {v:+.0%}" for k, v in big.items())
            self._raise("model_drift", "warning",
                        f"The house's fitted model changed since the last fit ({what}): a window left open, "
                        "ventilation changed, or a sensor moved?", now)
        else:
            self._clear("model_drift")
