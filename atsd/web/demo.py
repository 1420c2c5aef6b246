"""A :class:`~atsd.web.source.StatusSource` on the bundled demo data: for tests, demos and as a reference.

It plans the 12 hours before ``now`` and records them as a tiny in-memory history (the simulated
house follows the model exactly), then plans the next ``horizon_hours`` from where that left the
house. Overrides and demand-response events are checked with simple versions of the supervisor's
limits (OFF block length, events per day) and change the snapshot; the clock does not move.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from atsd.config import Config
from atsd.core.forecast import Forecast
from atsd.core.modes import Mode
from atsd.core.plan import Decision, Plan, PlanProblem, baseline_trajectory, make_plan
from atsd.core.planner import available
from atsd.core.timegrid import floor_time, iso_z
from atsd.csvdata import demo_forecast
from atsd.messages import DemandResponseEvent
from atsd.planning import plan_forecast
from atsd.web.source import (
    AckStatus,
    Alert,
    CommandResult,
    Counters,
    DecisionRow,
    DemandResponseState,
    HistoryRow,
    OverrideState,
    ProposedSchedule,
    Snapshot,
    SourceHealth,
    TodayTotals,
)

PAST_HOURS = 12
# The demo compares predicted against measured once a week of history exists.
MEASURED_DAYS_NEEDED = 7.0


class DemoStatusSource:
    """Demo data, a simulated house and an in-memory history; ``now`` defaults to the current slot."""

    def __init__(self, cfg: Config, now: datetime | None = None, *, planner: str | None = None):
        self.cfg = cfg
        step_s = cfg.planner.slot_minutes * 60
        self.now = floor_time(now or datetime.now(UTC), step_s)
        names = available()
        self.planner = planner or (cfg.planner.planner if cfg.planner.planner in names else "greedy")
        past_start = self.now - timedelta(hours=PAST_HOURS)
        full = demo_forecast(past_start, PAST_HOURS + cfg.planner.horizon_hours, step_s)
        i_now = full.grid.index_of(self.now)
        past_fc = full.window(0, i_now)
        self._forecast = full.window(i_now, full.grid.n)
        start_c = cfg.comfort.target_c
        past, past_prob, _ = plan_forecast(cfg, past_fc, start_c, planner=self.planner, now=past_start)
        self._history = _history_rows(past)
        base = baseline_trajectory(past_prob)
        self._baseline_cost = {s.start: float(base.elec_kwh[i] * s.price_eur_per_kwh) for i, s in enumerate(past.slots)}
        self._decisions = _decisions(past)
        last = past.slots[-1] if past.slots else None
        self._indoor_c = last.expected_indoor_c if last else start_c
        self._plan, self._problem, _ = plan_forecast(
            cfg, self._forecast, self._indoor_c, planner=self.planner, now=self.now,
            current_mode=last.mode if last else Mode.NORMAL)
        first = self._plan.slots[0] if self._plan.slots else None
        if first is not None and (not self._decisions or self._decisions[0]["mode"] is not first.mode):
            self._decisions.insert(0, DecisionRow(at=self.now, mode=first.mode, reason=first.reason, by="plan"))
        self._override: OverrideState | None = None
        self._dr: DemandResponseState | None = None
        self._dr_count = 0
        self.started_at = past_start

    # -- reads ---------------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        slot = self._plan.slots[0] if self._plan.slots else None
        mode, reason, by = (slot.mode, slot.reason, "plan") if slot else (Mode.NORMAL, "no plan: fail-safe", "failsafe")
        if self._override is not None and self._override["until"] > self.now:
            mode, by = self._override["mode"], "override"
            reason = f"manual override until {iso_z(self._override['until'])}: {self._override['reason']}"
        source_note = "bundled demo data, no network"
        sources: list[SourceHealth] = [
            SourceHealth(name=name, ok=True, last_success=self.started_at, fallback=False, message=source_note)
            for name in ("prices", "weather")
        ]
        sources.append(SourceHealth(name="co2", ok=False, last_success=None, fallback=False,
                                    message="no CO2 intensity in the demo data: cheap windows only"))
        return Snapshot(
            now=self.now, mode=mode, reason=reason, mode_since=self._decisions[0]["at"] if self._decisions else None,
            by=by, indoor_c=self._indoor_c, outdoor_c=round(slot.outdoor_c, 1) if slot else None, reading_at=self.now,
            today=self._today(), sources=sources, decisions=list(self._decisions),
            alerts=[Alert(level="info", message="Demo mode: a simulated house on bundled real prices and weather",
                          since=self.started_at)],
            measured={"days": PAST_HOURS / 24, "days_needed": MEASURED_DAYS_NEEDED, "predicted_energy_kwh": None,
                      "measured_energy_kwh": None, "predicted_mean_temp_c": None, "measured_mean_temp_c": None,
                      "savings_eur": None, "note": "collecting history: the demo house is simulated"},
            override=self._override, demand_response=self._dr, clock_ok=True, grid_stress=None,
            started_at=self.started_at)

    def plan(self) -> Plan | None:
        return self._plan

    def forecast(self) -> Forecast | None:
        return self._forecast

    async def history(self, start: datetime, end: datetime) -> list[HistoryRow]:
        return [r for r in self._history if start <= r["time"] < end]

    def counters(self) -> Counters:
        return Counters(source_failures_total={"prices": 0, "weather": 0}, ticks_total=0, tick_seconds_sum=0.0,
                        last_tick_seconds=None, replans_total=1, supervisor_interventions_total=0)

    async def evaluate(self, schedule: ProposedSchedule) -> Plan:
        return evaluate_schedule(self._problem, self._plan, schedule)

    # -- commands ------------------------------------------------------------------------------

    async def override(self, mode: Mode | None, until: datetime, reason: str) -> CommandResult:
        if mode is None:
            self._override = None
            return CommandResult(status="accepted", reason="override cancelled: back to the plan")
        if mode not in self._problem.modes:
            allowed = ", ".join(m.value for m in self._problem.modes)
            return CommandResult(status="refused", reason=f"the actuator cannot express {mode.value} (it offers {allowed})")
        status: AckStatus = "accepted"
        max_off = timedelta(minutes=self.cfg.supervisor.max_off_block_min)
        note = f"{mode.value} until {iso_z(until)}"
        if mode is Mode.OFF and until - self.now > max_off:
            until = self.now + max_off
            status = "partial"
            note = f"OFF is limited to {max_off.total_seconds() / 60:g} min a block: OFF until {iso_z(until)}"
        self._override = OverrideState(mode=mode, until=until, reason=reason)
        self._decisions.insert(0, DecisionRow(at=self.now, mode=mode, reason=f"manual override: {reason}", by="override"))
        return CommandResult(status=status, reason=note, mode=mode, start=self.now, end=until)

    async def demand_response(self, event: DemandResponseEvent) -> CommandResult:
        g = self.cfg.grid
        if not g.demand_response:
            return CommandResult(status="refused", reason="demand response is disabled ([grid] demand_response)")
        if self._dr_count >= g.dr_max_events_per_day:
            return CommandResult(status="refused", reason=f"at most {g.dr_max_events_per_day} events a day")
        end = event.end
        status: AckStatus = "accepted"
        why = f"{event.kind} from {iso_z(event.start)} to {iso_z(end)}"
        max_off = timedelta(minutes=self.cfg.supervisor.max_off_block_min)
        if event.kind == "shed" and end - event.start > max_off:
            end = event.start + max_off
            status = "partial"
            why = f"shed limited to the {max_off.total_seconds() / 60:g}-minute OFF block the supervisor allows"
        self._dr_count += 1
        self._dr = DemandResponseState(event_id=event.event_id, kind=event.kind, start=event.start, end=end,
                                       status=status)
        shed = self._plan.slots[0].energy_kwh / self._plan.grid.step_h if self._plan.slots else 0.0
        return CommandResult(status=status, reason=why, start=event.start, end=end,
                             shed_kw=round(shed, 3) if event.kind == "shed" else None)

    # -- helpers -------------------------------------------------------------------------------

    def _today(self) -> TodayTotals:
        tz = self.cfg.device.tz
        midnight = datetime.combine(self.now.astimezone(tz).date(), datetime.min.time(), tzinfo=tz).astimezone(UTC)
        rows = [r for r in self._history if r["time"] >= midnight]
        cost = sum(r.get("cost_eur", 0.0) for r in rows)
        base = sum(self._baseline_cost.get(r["time"], 0.0) for r in rows)
        energy = sum(r.get("energy_kwh", 0.0) for r in rows)
        return TodayTotals(cost_eur=round(cost, 2), baseline_cost_eur=round(base, 2),
                           savings_eur=round(base - cost, 2), energy_kwh=round(energy, 2))


def _history_rows(plan: Plan) -> list[HistoryRow]:
    return [HistoryRow(time=s.start, mode=s.mode, indoor_c=round(s.expected_indoor_c, 2),
                       outdoor_c=round(s.outdoor_c, 1), price_eur_per_kwh=round(s.price_eur_per_kwh, 4),
                       energy_kwh=round(s.energy_kwh, 3), cost_eur=round(s.cost_eur, 4))
            for s in plan.slots]


def _decisions(plan: Plan) -> list[DecisionRow]:
    out: list[DecisionRow] = []
    last = None
    for s in plan.slots:
        if s.mode is not last:
            out.append(DecisionRow(at=s.start, mode=s.mode, reason=s.reason, by="plan"))
            last = s.mode
    return out[::-1][:30]


def evaluate_schedule(problem: PlanProblem, plan: Plan, schedule: ProposedSchedule) -> Plan:
    """Simulate ``plan`` with the proposed modes laid over it; a Plan for the whole horizon."""
    grid = problem.grid
    modes = list(plan.modes)
    reasons = list(s.reason for s in plan.slots)
    times = grid.times()
    first = schedule.entries[0][0]
    changed = 0
    j = 0
    for i, t in enumerate(times):
        t_end = t + timedelta(seconds=grid.step_s)
        if t_end <= first or t >= schedule.end:
            continue
        while j + 1 < len(schedule.entries) and schedule.entries[j + 1][0] <= t:
            j += 1
        modes[i] = schedule.entries[j][1]
        reasons[i] = f"{modes[i].value}: proposed"
        changed += 1
    if changed == 0:
        raise ValueError(f"the schedule ({iso_z(first)} .. {iso_z(schedule.end)}) does not overlap the plan "
                         f"({iso_z(grid.start)} .. {iso_z(grid.end)})")
    base = baseline_trajectory(problem)
    return make_plan(problem, Decision(modes, reasons, "proposed"), plan.device_id, plan.generated_at, base)


__all__ = ["DemoStatusSource", "evaluate_schedule"]
