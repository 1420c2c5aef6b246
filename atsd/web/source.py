"""The seam between the daemon and the web app: :class:`StatusSource` and the values it passes.

The web app never touches hardware, the clock or the database. It asks a ``StatusSource`` (the
daemon implements one; :class:`atsd.web.demo.DemoStatusSource` is the reference) for a snapshot, the
plan, the forecast and history, and hands it the two commands a client may send (a manual override
and a demand-response event) to pass through the supervisor. All times are aware UTC ``datetime``s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, NotRequired, Protocol, TypedDict, runtime_checkable

from atsd.core.forecast import Forecast
from atsd.core.modes import Mode
from atsd.core.plan import Plan
from atsd.messages import DemandResponseEvent

AckStatus = Literal["accepted", "partial", "refused"]


class SourceHealth(TypedDict):
    """One forecast source or device as the page shows it."""

    name: str  # "prices", "weather", "co2", "sensor:living-room", "actuator"
    ok: bool
    last_success: datetime | None
    fallback: bool  # true while an alternate source, the cache or an estimate stands in
    message: str  # plain words: "ENTSO-E down since 12:05; using porssisahko.net"


class DecisionRow(TypedDict):
    """A mode change the daemon made, with the reason in plain words."""

    at: datetime
    mode: Mode
    reason: str
    by: str  # "plan", "supervisor", "override", "demand-response", "failsafe"


class Alert(TypedDict):
    level: Literal["info", "warning", "critical"]
    message: str
    since: datetime


class TodayTotals(TypedDict):
    """The local day so far, on the model: what was paid and what always-NORMAL would have paid."""

    cost_eur: float
    baseline_cost_eur: float
    savings_eur: float
    energy_kwh: float


class MeasuredSavings(TypedDict):
    """Predicted against measured: available once enough history exists (``days >= days_needed``)."""

    days: float  # days of history compared
    days_needed: float
    predicted_energy_kwh: float | None  # what the model predicted for the plan that ran
    measured_energy_kwh: float | None  # what the meter (or the mode and power model) says it used
    predicted_mean_temp_c: float | None
    measured_mean_temp_c: float | None
    savings_eur: float | None  # measured cost against the baseline the model gives for that weather
    note: str


class OverrideState(TypedDict):
    mode: Mode
    until: datetime
    reason: str


class DemandResponseState(TypedDict):
    event_id: str
    kind: str
    start: datetime
    end: datetime
    status: AckStatus


class Snapshot(TypedDict):
    """What the daemon knows right now. ``now`` is the daemon's clock (virtual, accelerated or real)."""

    now: datetime
    mode: Mode
    reason: str
    mode_since: datetime | None
    by: str  # who chose the current mode, as in DecisionRow.by
    indoor_c: float | None
    outdoor_c: float | None
    reading_at: datetime | None  # time of the indoor reading
    today: TodayTotals
    measured: MeasuredSavings | None
    sources: list[SourceHealth]
    decisions: list[DecisionRow]  # newest first, a few dozen at most
    alerts: list[Alert]
    override: NotRequired[OverrideState | None]
    demand_response: NotRequired[DemandResponseState | None]
    clock_ok: NotRequired[bool]  # False until the system clock is known good (then NORMAL only)
    grid_stress: NotRequired[str | None]  # "normal", "high", "critical" when known
    started_at: NotRequired[datetime]


class HistoryRow(TypedDict, total=False):
    """One recorded slot (or reading). Only ``time`` is required; unknown values are left out."""

    time: datetime
    mode: Mode
    indoor_c: float
    outdoor_c: float
    price_eur_per_kwh: float
    energy_kwh: float
    cost_eur: float


class CommandResult(TypedDict):
    """The supervisor's answer to an override or a demand-response event."""

    status: AckStatus
    reason: str  # plain words, also when accepted ("BOOST until 18:00")
    start: NotRequired[datetime]
    end: NotRequired[datetime]  # what was granted, which may be shorter than asked (partial)
    mode: NotRequired[Mode]
    shed_kw: NotRequired[float | None]


class Counters(TypedDict):
    """Monotonic totals since start, for ``/metrics``."""

    source_failures_total: dict[str, int]  # by source name
    ticks_total: int
    tick_seconds_sum: float
    last_tick_seconds: float | None
    replans_total: int
    supervisor_interventions_total: int


@dataclass(frozen=True)
class ProposedSchedule:
    """Modes a client proposes: entry ``i`` holds from its start until the next entry's (the last
    until ``end``). Slots outside the proposal keep the current plan's modes."""

    entries: tuple[tuple[datetime, Mode], ...]
    end: datetime


@runtime_checkable
class StatusSource(Protocol):
    """What the web app needs from the daemon. Keep every method quick: the app calls them per request.

    - ``snapshot()``: the present state (:class:`Snapshot`); must not block on I/O.
    - ``plan()`` / ``forecast()``: the plan being followed and the forecast it was made from, or None
      before the first one exists (the API then answers 503 "no plan yet").
    - ``history(start, end)``: recorded slots in ``[start, end)``, oldest first; may read the database
      (hence async; run SQLite in a thread).
    - ``evaluate(schedule)``: the current plan's problem re-simulated with the proposed modes
      (``make_plan`` on the same forecast and start temperature): a :class:`Plan` whose comfort
      report, cost and baseline cover the plan's whole horizon. Raise ``ValueError`` with a message
      when the schedule cannot be evaluated (the API answers 400). Used by comfort-risk and the
      legacy daily plan (an all-NORMAL schedule gives the baseline per slot).
      :func:`atsd.web.demo.evaluate_schedule` does it from the plan and its problem; run it in a thread.
    - ``override(mode, until, reason)``: hold ``mode`` until ``until`` through the supervisor; ``mode``
      None cancels any override. Returns accepted, partial (e.g. a shorter OFF) or refused, and why.
    - ``demand_response(event)``: the same for a demand-response event (re-plan with the event as a
      constraint; the comfort floor still wins).
    - ``counters()``: totals for ``/metrics``.
    """

    def snapshot(self) -> Snapshot: ...

    def plan(self) -> Plan | None: ...

    def forecast(self) -> Forecast | None: ...

    async def history(self, start: datetime, end: datetime) -> list[HistoryRow]: ...

    async def evaluate(self, schedule: ProposedSchedule) -> Plan: ...

    async def override(self, mode: Mode | None, until: datetime, reason: str) -> CommandResult: ...

    async def demand_response(self, event: DemandResponseEvent) -> CommandResult: ...

    def counters(self) -> Counters: ...
