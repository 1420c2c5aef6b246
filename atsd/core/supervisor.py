"""The safety rules every mode command passes through, in one pure place.

The plan, a manual override and a demand-response request are all *requests*; the supervisor turns
a request into the mode the heat pump actually gets, and says why. It owns:

- the comfort floor and frost protection (with hysteresis), which override the plan;
- NORMAL whenever the supervisor is unsure: no valid plan, a stale or missing indoor reading, or a
  clock that went backwards while the heat pump was held away from NORMAL;
- the limits of a utility-style block (OFF): a maximum length, a minimum gap between blocks, a
  maximum number of blocks per local day, and a shorter cap when no indoor sensor is configured;
- the compressor's protection: a minimum dwell in a mode and a maximum number of switches per hour.

Moving to NORMAL, the fail-safe state, is always allowed at once; every other change obeys the
dwell and switch limits, including leaving NORMAL. Time is an argument (aware datetimes), never
read here; the state is plain data that survives a restart as JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from atsd.config import Config
from atsd.core.modes import ALL_MODES, Mode

HOUR = timedelta(hours=1)
_KEEP_OFF_STARTS = timedelta(hours=50)  # longer than any local day (25 h) plus margin

# Rule names carried by a Verdict (stable strings: the page, the log and the store show them).
RULE_NO_PLAN = "no_plan"
RULE_STALE = "stale_sensor"
RULE_NO_READING = "no_reading"
RULE_FLOOR = "comfort_floor"
RULE_FROST = "frost"
RULE_CLOCK = "clock_backwards"
RULE_UNSUPPORTED = "unsupported_mode"
RULE_OFF_BLOCK = "off_block_limit"
RULE_OFF_GAP = "off_gap"
RULE_OFF_PER_DAY = "off_blocks_per_day"
RULE_DWELL = "min_dwell"
RULE_SWITCHES = "max_switches_per_hour"


@dataclass(frozen=True)
class SupervisorRules:
    """The supervisor's limits, in seconds and °C. Build with :meth:`from_config`."""

    min_dwell_s: float = 15 * 60.0
    max_switches_per_hour: int = 4
    max_off_block_s: float = 120 * 60.0
    min_off_gap_s: float = 60 * 60.0
    max_off_blocks_per_day: int = 3
    comfort_min_c: float = 20.0
    frost_c: float = 8.0
    force_normal_below_k: float = 0.2
    force_boost_below_k: float = 1.0
    release_above_k: float = 0.3
    stale_sensor_s: float = 15 * 60.0
    indoor_sensor_configured: bool = True
    no_sensor_max_off_s: float = 60 * 60.0

    @classmethod
    def from_config(cls, cfg: Config) -> SupervisorRules:
        """Merge ``[supervisor]`` with the actuator's own dwell and switch limits and ``[comfort]``."""
        s = cfg.supervisor
        a = cfg.actuator
        dwell_min = a.min_dwell_min if a.min_dwell_min is not None else s.min_dwell_min
        switches = a.max_switches_per_hour if a.max_switches_per_hour is not None else s.max_switches_per_hour
        return cls(
            min_dwell_s=dwell_min * 60.0,
            max_switches_per_hour=switches,
            max_off_block_s=s.max_off_block_min * 60.0,
            min_off_gap_s=s.min_off_gap_min * 60.0,
            max_off_blocks_per_day=s.max_off_blocks_per_day,
            comfort_min_c=cfg.comfort.min_c,
            frost_c=cfg.comfort.frost_c,
            force_normal_below_k=s.force_normal_below_k,
            force_boost_below_k=s.force_boost_below_k,
            release_above_k=s.release_above_k,
            stale_sensor_s=s.stale_sensor_min * 60.0,
            indoor_sensor_configured=any(x.role == "indoor" for x in cfg.sensors),
            no_sensor_max_off_s=s.no_sensor_max_off_min * 60.0,
        )

    @property
    def off_cap_s(self) -> float:
        """The longest OFF block: shorter when the house runs on the model alone."""
        if self.indoor_sensor_configured:
            return self.max_off_block_s
        return min(self.max_off_block_s, self.no_sensor_max_off_s)


@dataclass
class SupervisorState:
    """What the supervisor remembers between decisions; saved as JSON across restarts.

    ``since`` None means "unknown, long ago" (a fresh install): the dwell is satisfied.
    ``floor`` is the latched comfort-floor demand (NORMAL or BOOST) until the room recovers.
    ``seen`` is the time of the last decision, to notice a clock that jumps backwards.
    """

    mode: Mode = Mode.NORMAL
    since: datetime | None = None
    switches: list[datetime] = field(default_factory=list)
    off_starts: list[datetime] = field(default_factory=list)
    last_off_end: datetime | None = None
    floor: Mode | None = None
    seen: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        def iso(t: datetime | None) -> str | None:
            return None if t is None else t.astimezone(UTC).isoformat()

        return {"mode": self.mode.value, "since": iso(self.since),
                "switches": [iso(t) for t in self.switches], "off_starts": [iso(t) for t in self.off_starts],
                "last_off_end": iso(self.last_off_end),
                "floor": None if self.floor is None else self.floor.value, "seen": iso(self.seen)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SupervisorState:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` on anything malformed."""
        def ts(v: Any) -> datetime | None:
            if v is None:
                return None
            t = datetime.fromisoformat(str(v))
            if t.tzinfo is None:
                raise ValueError(f"timestamp without a time zone: {v!r}")
            return t.astimezone(UTC)

        def tss(v: Any) -> list[datetime]:
            if not isinstance(v, list):
                raise ValueError(f"expected a list of timestamps (got {v!r})")
            return [t for t in (ts(x) for x in v) if t is not None]

        if not isinstance(data, dict):
            raise ValueError(f"supervisor state must be an object (got {type(data).__name__})")
        floor = data.get("floor")
        return cls(mode=Mode.parse(str(data.get("mode", "NORMAL"))), since=ts(data.get("since")),
                   switches=tss(data.get("switches", [])), off_starts=tss(data.get("off_starts", [])),
                   last_off_end=ts(data.get("last_off_end")),
                   floor=None if floor is None else Mode.parse(str(floor)), seen=ts(data.get("seen")))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str) -> SupervisorState:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"supervisor state is not JSON: {exc}") from exc
        return cls.from_dict(data)


@dataclass(frozen=True)
class Verdict:
    """The mode the heat pump gets, and why.

    ``overridden``: the mode differs from the request. ``rule``: the rule that shaped the outcome
    (None when the request passed untouched); it can be set while ``overridden`` is False, e.g. when
    the floor wanted BOOST but the switch limit held the requested NORMAL.
    """

    mode: Mode
    reason: str
    overridden: bool
    rule: str | None


def nearest_supported(mode: Mode, supported: tuple[Mode, ...]) -> Mode:
    """The supported mode closest in heating intensity; ties go to more heat, and never to OFF.

    Only OFF itself may map to OFF. NORMAL is always supported (the fail-safe).
    """
    if mode in supported:
        return mode
    candidates = [m for m in supported if m is not Mode.OFF]
    return min(candidates, key=lambda m: (abs(m.rank - mode.rank), -m.rank))


class Supervisor:
    """Turns requested modes into safe effective modes; pure and deterministic."""

    def __init__(self, rules: SupervisorRules, tz: ZoneInfo, state: SupervisorState | None = None,
                 supported: tuple[Mode, ...] = ALL_MODES) -> None:
        self.rules = rules
        self.tz = tz
        self._state = state if state is not None else SupervisorState()
        self._min_c = rules.comfort_min_c
        self.supported = tuple(m for m in ALL_MODES if m in supported or m is Mode.NORMAL)

    @property
    def state(self) -> SupervisorState:
        return self._state

    # -- the decision ----------------------------------------------------------------------------

    def decide(self, now: datetime, requested: Mode | None, indoor_c: float | None,
               indoor_age_s: float | None, reason: str = "", *, comfort_min_c: float | None = None) -> Verdict:
        """The effective mode at ``now`` for a request (None: no valid plan).

        ``indoor_c`` is the combined indoor reading (None: none available) and ``indoor_age_s``
        its age (None: fresh). ``comfort_min_c`` is the comfort minimum in force now when a
        schedule (setback) changes it; default the configured one. Frost protection holds either
        way. Updates the state when the mode changes.
        """
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        now = now.astimezone(UTC)
        st = self._state
        r = self.rules
        self._min_c = r.comfort_min_c if comfort_min_c is None else comfort_min_c
        self._prune(now)
        clock_back = st.seen is not None and now < st.seen
        if clock_back:
            self._clamp_future(now)
        st.seen = now

        # 1. What is wanted: the request, or NORMAL when unsure.
        rule: str | None = None
        why = reason or "as planned"
        if requested is None:
            wanted, rule, why = Mode.NORMAL, RULE_NO_PLAN, "no valid plan: the heat pump's own control"
        else:
            wanted = nearest_supported(requested, self.supported)
            if wanted is not requested:
                rule, why = RULE_UNSUPPORTED, f"{requested} is not offered by this actuator; {wanted} instead"

        # 2. The indoor reading: floor (with hysteresis), staleness, model-only operation.
        floor_mode = self._floor(indoor_c, indoor_age_s)
        if r.indoor_sensor_configured and indoor_c is None:
            wanted, rule, why = Mode.NORMAL, RULE_NO_READING, "no indoor reading: NORMAL until one arrives"
        elif indoor_c is not None and indoor_age_s is not None and indoor_age_s > r.stale_sensor_s:
            why = f"indoor reading is {indoor_age_s / 60:.0f} min old: NORMAL until a fresh one"
            wanted, rule = Mode.NORMAL, RULE_STALE
        elif floor_mode is not None and wanted.rank < floor_mode.rank:
            floor_c = self._floor_c()
            rule = RULE_FROST if floor_c > self._min_c else RULE_FLOOR
            wanted = nearest_supported(floor_mode, self.supported)
            why = (f"indoor {indoor_c:.1f} °C, comfort floor {floor_c:g} °C: {wanted} until the room is back "
                   f"at {floor_c + r.release_above_k:g} °C")
        if clock_back and wanted.rank < Mode.NORMAL.rank:
            wanted, rule, why = Mode.NORMAL, RULE_CLOCK, "the clock went backwards: NORMAL to be safe"

        # 3. OFF is a block with a length, a gap and a count per local day.
        if wanted is Mode.OFF:
            off_rule, off_why = self._off_refusal(now)
            if off_rule is not None:
                rule, why = off_rule, off_why
                wanted = Mode.ECO if Mode.ECO in self.supported and (
                    floor_mode is None or floor_mode.rank <= Mode.ECO.rank) else Mode.NORMAL

        # 4. Dwell and switches: every change except to NORMAL.
        effective = wanted
        if wanted is not st.mode and wanted is not Mode.NORMAL:
            limit = self._change_refusal(now)
            if limit is not None:
                rule, why = limit
                effective = st.mode
                if clock_back or not self._may_stay(now, floor_mode, indoor_c, indoor_age_s):
                    effective = Mode.NORMAL
                    why += f"; {st.mode} may not continue, so NORMAL"

        if effective is not st.mode:
            self._switch(now, effective)
        overridden = requested is None or effective is not requested
        return Verdict(effective, why, overridden, rule)

    # -- pieces ----------------------------------------------------------------------------------

    def _floor_c(self) -> float:
        return max(self._min_c, self.rules.frost_c)

    def _floor(self, indoor_c: float | None, indoor_age_s: float | None) -> Mode | None:
        """Update and return the latched floor demand (NORMAL or BOOST); None when released or unknown."""
        r = self.rules
        st = self._state
        if indoor_c is None or (indoor_age_s is not None and indoor_age_s > r.stale_sensor_s):
            return None  # keep the latch for the next fresh reading; unsure means NORMAL anyway
        floor_c = self._floor_c()
        if indoor_c < floor_c - r.force_boost_below_k:
            st.floor = Mode.BOOST
        elif indoor_c < floor_c - r.force_normal_below_k:
            st.floor = Mode.BOOST if st.floor is Mode.BOOST else Mode.NORMAL
        elif st.floor is Mode.BOOST and indoor_c >= floor_c:
            st.floor = Mode.NORMAL
        if st.floor is not None and indoor_c >= floor_c + r.release_above_k:
            st.floor = None
        return st.floor

    def _off_refusal(self, now: datetime) -> tuple[str | None, str]:
        r = self.rules
        st = self._state
        if st.mode is Mode.OFF:
            assert st.since is not None
            if (now - st.since).total_seconds() >= r.off_cap_s:
                cap = r.off_cap_s / 60
                note = "" if r.indoor_sensor_configured else " (no indoor sensor: model-only cap)"
                return RULE_OFF_BLOCK, f"OFF block reached its {cap:g} min limit{note}"
            return None, ""
        if r.off_cap_s <= 0 or r.max_off_blocks_per_day <= 0:
            return RULE_OFF_PER_DAY, "OFF blocks are disabled by the configuration"
        if st.last_off_end is not None and (now - st.last_off_end).total_seconds() < r.min_off_gap_s:
            return RULE_OFF_GAP, f"OFF needs a {r.min_off_gap_s / 60:g} min gap after the last block"
        today = self._local_day(now)
        count = sum(1 for t in st.off_starts if self._local_day(t) == today)
        if count >= r.max_off_blocks_per_day:
            return RULE_OFF_PER_DAY, f"already {count} OFF blocks today (limit {r.max_off_blocks_per_day})"
        return None, ""

    def _change_refusal(self, now: datetime) -> tuple[str, str] | None:
        r = self.rules
        st = self._state
        if st.since is not None:
            held = (now - st.since).total_seconds()
            if held < r.min_dwell_s:
                return RULE_DWELL, (f"{st.mode} held {held / 60:.0f} of {r.min_dwell_s / 60:g} min "
                                    "minimum dwell")
        recent = sum(1 for t in st.switches if now - t < HOUR)
        if recent >= r.max_switches_per_hour:
            return RULE_SWITCHES, f"{recent} switches in the last hour (limit {r.max_switches_per_hour})"
        return None

    def _may_stay(self, now: datetime, floor_mode: Mode | None, indoor_c: float | None,
                  indoor_age_s: float | None) -> bool:
        """Whether the current mode may continue while a change is refused."""
        st = self._state
        r = self.rules
        if st.mode is Mode.NORMAL:
            return True
        if r.indoor_sensor_configured and indoor_c is None:
            return False
        if indoor_age_s is not None and indoor_age_s > r.stale_sensor_s:
            return False
        if floor_mode is not None and st.mode.rank < Mode.NORMAL.rank:
            return False
        if st.mode not in self.supported:
            return False
        if st.mode is Mode.OFF:
            return self._off_refusal(now)[0] is None
        return True

    def _switch(self, now: datetime, mode: Mode) -> None:
        st = self._state
        if st.mode is Mode.OFF:
            st.last_off_end = now
        if mode is Mode.OFF:
            st.off_starts.append(now)
        st.switches.append(now)
        st.mode = mode
        st.since = now

    def _local_day(self, t: datetime) -> date:
        return t.astimezone(self.tz).date()

    def _prune(self, now: datetime) -> None:
        st = self._state
        st.switches = [t for t in st.switches if now - t < HOUR]
        st.off_starts = [t for t in st.off_starts if now - t < _KEEP_OFF_STARTS]

    def _clamp_future(self, now: datetime) -> None:
        """After the clock went backwards, treat anything 'in the future' as happening now.

        This is conservative: the dwell restarts, and counts and gaps only grow.
        """
        st = self._state
        st.switches = [min(t, now) for t in st.switches]
        st.off_starts = [min(t, now) for t in st.off_starts]
        if st.last_off_end is not None:
            st.last_off_end = min(st.last_off_end, now)
        if st.since is not None:
            st.since = min(st.since, now)
