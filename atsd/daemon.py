"""The daemon: wires sources, planner, supervisor, devices, history, web and MQTT into one process.

Lifecycle (``atsd run``): take the lock (one process drives the heat pump), open the history, restore
the supervisor's state and the last plan, open devices, forecasts, the web app and MQTT, then run in a
``TaskGroup``:

- the **control loop**, every ``tick_s`` (30 s): read sensors, choose the requested mode (override,
  demand response, plan), pass it through the supervisor, drive the actuator, record, publish, and
  ping the systemd watchdog; READY=1 follows the first tick, whatever the hardware said;
- the **planner loop**: a new plan at every slot boundary, on a new forecast, an override or an event;
- **jobs**: forecast fetches at the sources' poll times, history flush, daily retention and weekly
  calibration (APScheduler with the real clock; the same jobs on the injected clock otherwise).

Every long-running part catches, logs once and retries its own failures with backoff, so one failing
part never cancels the others. SIGTERM/SIGINT: actuator to NORMAL (2 s deadline), flush, exit 0.
Until the system clock is known good (NTP), no price is acted on: NORMAL, and the page says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from atsd import messages
from atsd.clock import Clock, RealClock, clock_synchronized
from atsd.config import Config
from atsd.core import house
from atsd.core.comfort import comfort_band
from atsd.core.forecast import Forecast
from atsd.core.modes import Mode
from atsd.core.plan import Plan, PlanProblem
from atsd.core.supervisor import Supervisor, SupervisorRules, Verdict
from atsd.core.thermal import ThermalModel
from atsd.core.timegrid import Grid, floor_time, iso_z

if TYPE_CHECKING:
    from atsd.web.source import CommandResult, Counters, HistoryRow, ProposedSchedule, Snapshot

log = logging.getLogger("atsd.daemon")

EX_OK = 0
EX_LOCKED = 75  # another atsd drives the heat pump (EX_TEMPFAIL)
DEVICE_DEADLINE_S = 2.0
BACKOFF_MAX_S = 300.0
REPLAN_DEVIATION_K = 0.5  # re-plan when the house leaves the predicted trajectory by this much
RECENT_DECISIONS = 40
FIRST_PLAN_WAIT_S = 5.0
MEASURED_DAYS_NEEDED = 7.0


@dataclass
class Override:
    mode: Mode
    until: datetime
    reason: str
    by: str  # "override"


@dataclass
class Stats:
    source_failures: dict[str, int] = field(default_factory=dict)
    ticks: int = 0
    tick_seconds_sum: float = 0.0
    last_tick_seconds: float | None = None
    replans: int = 0
    interventions: int = 0
    device_errors: int = 0


@dataclass
class Today:
    """The local day so far: cost, the always-NORMAL twin's cost, energy."""

    day: date | None = None
    cost_eur: float = 0.0
    baseline_cost_eur: float = 0.0
    energy_kwh: float = 0.0

    @property
    def savings_eur(self) -> float:
        return self.baseline_cost_eur - self.cost_eur


@dataclass
class Shadow:
    """An always-NORMAL twin of the house on the model: the baseline of today's savings estimate."""

    indoor_c: float
    at: datetime | None = None


class Daemon:
    """One house. ``clock`` is real, accelerated (``--speed``) or virtual (tests)."""

    def __init__(self, cfg: Config, clock: Clock | None = None, *, demo: bool = False,
                 web_port: int | None = None, web_bind: str | None = None,
                 forecasts: Any = None, devices: Any = None) -> None:
        self.cfg = cfg
        self.clock: Clock = clock or RealClock()
        self.demo = demo
        self.web_port = web_port
        self.web_bind = web_bind
        self.state_dir = Path(cfg.daemon.state_dir)
        self.step_s = cfg.planner.slot_minutes * 60
        self._forecasts_arg = forecasts
        self._devices_arg = devices
        self.stats = Stats()
        self.started_at = self.clock.now()
        self.stop_event = asyncio.Event()
        self.replan_event = asyncio.Event()
        self.tick_event = asyncio.Event()
        self.ready = asyncio.Event()
        self.planned = asyncio.Event()
        self.first_tick_done = False
        # live state
        self.current_plan: Plan | None = None
        self.current_problem: PlanProblem | None = None
        self.current_forecast: Forecast | None = None
        self.restored_plan: dict[str, Any] | None = None
        self.held: Override | None = None  # a manual override in force (not named override: that is the web's method)
        self.dr_events: list[messages.DemandResponseEvent] = []
        self.dr_today: dict[str, int] = {}
        self.last_verdict: Verdict | None = None
        self.by = "failsafe"
        self.indoor_c: float | None = None
        self.outdoor_c: float | None = None
        self.reading_at: datetime | None = None
        self.power_w: float | None = None
        self.clock_ok = True
        self.decisions: deque[dict[str, Any]] = deque(maxlen=RECENT_DECISIONS)
        self.rows: deque[dict[str, Any]] = deque(maxlen=7 * 24 * 3600 // self.step_s)
        self.today = Today()
        self.shadow: Shadow | None = None
        from atsd.health import HealthMonitor

        self.health = HealthMonitor()
        self._alerts_sent: list[str] | None = None
        self._last_energy: float | None = None
        self._last_tick_at: datetime | None = None
        self._saved_state: str | None = None
        self._episodes: dict[str, int] = {}
        self._keep: set[asyncio.Future[Any]] = set()
        self.model: ThermalModel = house.thermal_model(cfg, self._calibration())
        self.store: Any = None
        self.devices: Any = None
        self.sources: Any = None
        self.publisher: Any = None
        self.runner: Any = None
        self.supervisor: Supervisor | None = None
        self.log_ctx: Any = None
        self.scheduler: Any = None

    # -- lifecycle --------------------------------------------------------------------------------

    async def run(self) -> int:
        from atsd import systemd
        from atsd.devices.control import DaemonLock, LockHeldError

        lock = DaemonLock(self.state_dir)
        try:
            lock.acquire()
        except LockHeldError as exc:
            log.error("Another atsd already drives the heat pump: %s", exc)
            return EX_LOCKED
        try:
            return await self._run_locked()
        finally:
            lock.release()
            systemd.stopping("stopped")

    async def _run_locked(self) -> int:
        from atsd import systemd

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop, sig)
        self._open_store()
        self._restore()
        async with contextlib.AsyncExitStack() as stack:
            self.devices = self._devices_arg or self._make_devices()
            await stack.enter_async_context(_Deadline(self.devices, DEVICE_DEADLINE_S, "devices"))
            self.sources = self._forecasts_arg or self._make_sources()
            await stack.enter_async_context(self.sources)
            if self.cfg.mqtt.enabled:
                from atsd.publisher import StatusPublisher

                self.publisher = StatusPublisher(self.cfg, self._on_mqtt_command)
                await stack.enter_async_context(self.publisher)
            if self.cfg.web.enabled:
                await self._start_web()
            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self._guard("control", self._control_loop), name="atsd-control")
                    tg.create_task(self._guard("planner", self._planner_loop), name="atsd-planner")
                    if isinstance(self.clock, RealClock):
                        self.scheduler = self._start_scheduler()
                    else:  # accelerated or virtual time: the same jobs on the daemon's own clock
                        for name, job, nxt in self._jobs():
                            tg.create_task(self._guard(name, functools.partial(self._clock_job, job, nxt)),
                                           name=f"atsd-{name}")
                    tg.create_task(self._stop_watcher(), name="atsd-stop")
            except* _StopRequestedError:
                pass
            finally:
                if self.scheduler is not None:
                    self.scheduler.shutdown(wait=False)
                log.info("Stopping: heat pump to NORMAL, history flushed.")
                systemd.stopping("stopping: heat pump to NORMAL")
                if self.publisher is not None:
                    await self.publisher.goodbye()
                if self.runner is not None:
                    await self.runner.cleanup()
        # devices closed here (NORMAL); then the last batch of history
        self._save_supervisor(force=True)
        await self._flush()
        if self.store is not None:
            self.store.close()
        return EX_OK

    def request_stop(self, sig: Any = None) -> None:
        if not self.stop_event.is_set():
            log.info("Received %s: stopping.", getattr(sig, "name", "stop request"))
        self.stop_event.set()

    async def _stop_watcher(self) -> None:
        await self.stop_event.wait()
        raise _StopRequestedError

    async def _guard(self, name: str, fn: Callable[[], Awaitable[None]]) -> None:
        """Run a long-running part forever: log its failure once, back off, retry."""
        delay = 1.0
        failures = 0
        while True:
            try:
                await fn()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                if failures == 1:
                    log.exception("%s failed; retrying with backoff (the other parts keep running).", name)
                else:
                    log.debug("%s failed again (%d in a row).", name, failures)
                await self.clock.sleep(delay)
                delay = min(BACKOFF_MAX_S, delay * 2)

    # -- construction ------------------------------------------------------------------------------

    def _open_store(self) -> None:
        from atsd.store import Store

        self.store = Store.open(self.state_dir, self.cfg.daemon, recover=True, now=self.clock.now())

    def _make_devices(self) -> Any:
        from atsd.devices.registry import Devices

        dev = Devices(self.cfg, clock=self.clock.now)
        if self.demo:
            from atsd.demo import demo_outdoor

            house_obj = dev.links.objects.get(("simulated-house",))
            if house_obj is not None:
                house_obj.outdoor = demo_outdoor()
                house_obj.time = self.clock.now()
        return dev

    def _make_sources(self) -> Any:
        if self.demo:
            from atsd.demo import DemoForecasts

            return DemoForecasts(self.cfg)
        from atsd.sources.forecasts import ForecastService

        return ForecastService(self.cfg)

    async def _start_web(self) -> None:
        from atsd.web.app import start

        try:
            self.runner = await start(self.cfg, self, bind=self.web_bind, port=self.web_port)
        except OSError as exc:  # the heating matters more than the page
            log.error("Web page not available: cannot listen on port %s: %s", self.web_port or self.cfg.web.port,
                      exc.strerror)
            self.runner = None

    def _calibration(self) -> dict[str, float] | None:
        try:
            from atsd.calibration import load_overrides  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            return None
        try:
            result: dict[str, float] | None = load_overrides(self.state_dir)
        except Exception:
            log.exception("Could not read the calibrated parameters; using the configured building.")
            return None
        return result

    def _restore(self) -> None:
        """After a restart: the supervisor's state (mode, dwell, OFF blocks) and the last plan."""
        from atsd.devices.control import load_state

        state = load_state(self.state_dir)
        rules = SupervisorRules.from_config(self.cfg)
        supported = self._devices_arg.supported if self._devices_arg is not None else None
        if supported is None:
            from atsd.devices.presets import actuator_modes

            supported = actuator_modes(self.cfg)
        self.supervisor = Supervisor(rules, self.cfg.device.tz, state, supported)
        if state is not None:
            log.info("Restored the supervisor's state: %s since %s, %d OFF blocks recorded.", state.mode.value,
                     iso_z(state.since) if state.since else "unknown", len(state.off_starts))
        rec = self.store.latest_plan() if self.store is not None else None
        if rec is not None:
            self.restored_plan = rec.doc
        now = self.clock.now()
        tz = self.cfg.device.tz
        day = now.astimezone(tz).date()
        try:
            tot = self.store.day_totals(day, tz, now)
        except Exception:
            tot = None
        self.today.day = day
        if tot is not None:
            for key in ("cost_eur", "baseline_cost_eur", "energy_kwh"):
                st = tot.readings.get(key)
                if st is not None:
                    setattr(self.today, key, st.sum)

    # -- control ---------------------------------------------------------------------------------

    async def _control_loop(self) -> None:
        from atsd import systemd

        tick_s = self.cfg.daemon.tick_s
        # Give the first plan a moment (real seconds), so the first decision follows it; a slow network
        # must not delay READY: the first tick runs on the supervisor's NORMAL if no plan came in time.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.planned.wait(), FIRST_PLAN_WAIT_S)
        interval = systemd.watchdog_interval_s()
        if interval is not None and interval < tick_s / max(1.0, _speed(self.clock)):
            log.warning("The systemd watchdog (%.0f s) is shorter than a tick (%.0f s).", interval * 2, tick_s)
        while True:
            t0 = time.perf_counter()
            try:
                await self.tick()
            finally:
                dt = time.perf_counter() - t0
                self.stats.ticks += 1
                self.stats.tick_seconds_sum += dt
                self.stats.last_tick_seconds = dt
                systemd.watchdog()
                if not self.first_tick_done:
                    self.first_tick_done = True
                    systemd.ready(self._status_line())
                    self.ready.set()
                    log.info("Ready: first control tick done (%s).", self._status_line())
                else:
                    systemd.status(self._status_line())
            now = self.clock.now()
            nxt = floor_time(now, int(tick_s)) + timedelta(seconds=tick_s) if tick_s >= 1 else now
            self.tick_event.clear()
            sleeper = asyncio.ensure_future(self.clock.sleep_until(nxt))
            waker = asyncio.ensure_future(self.tick_event.wait())
            try:
                await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for f in (sleeper, waker):
                    f.cancel()

    def _status_line(self) -> str:
        v = self.last_verdict
        return f"{v.mode.value}: {v.reason}" if v else "starting"

    async def tick(self) -> Verdict:
        """One control step; public so tests can drive it directly."""
        assert self.supervisor is not None
        now = self.clock.now()
        self._roll_day(now)
        readings: dict[str, Any] = {}
        if self.devices is not None:
            try:
                readings = await asyncio.wait_for(self.devices.read_all(), max(5.0, self.cfg.daemon.tick_s / 2))
            except TimeoutError:
                self._episode("sensors", "Reading the sensors timed out; using the last good values.")
        indoor = self.devices.indoor(now) if self.devices is not None else None
        outdoor = self.devices.combined("outdoor", now) if self.devices is not None else None
        self.indoor_c = indoor.value if indoor is not None else None
        self.reading_at = indoor.timestamp if indoor is not None else None
        age = indoor.age_s(now) if indoor is not None else None
        if outdoor is not None:
            self.outdoor_c = outdoor.value
        elif self.current_forecast is not None:
            from atsd.demo import outdoor_now

            self.outdoor_c = outdoor_now(self.current_forecast, now)
        self.clock_ok = self._clock_synchronized()
        requested, reason, by = self._requested(now)
        min_now = self._comfort_min(now)
        verdict = self.supervisor.decide(now, requested, self.indoor_c, age, reason, comfort_min_c=min_now)
        if verdict.overridden:
            self.stats.interventions += 1
        actual_by = "supervisor" if verdict.overridden else by
        await self._apply(verdict.mode)
        changed = self.last_verdict is None or verdict.mode is not self.last_verdict.mode
        if changed:
            self.decisions.appendleft({"at": now, "mode": verdict.mode, "reason": verdict.reason, "by": actual_by})
            log.info("Mode %s: %s", verdict.mode.value, verdict.reason)
            if self.log_ctx is not None:
                self.log_ctx.mode = verdict.mode.value
        self.last_verdict = verdict
        self.by = actual_by
        self.store.add_decision(now, verdict.mode.value, requested.value if requested else "none", verdict.reason,
                                overridden=verdict.overridden, rule=verdict.rule)
        self._save_supervisor()
        self.health.supervisor(now, verdict.overridden)
        indoor_names = {s.name for s in self.cfg.sensors if s.role == "indoor"}
        self.health.sensors(now, {k: r.value for k, r in readings.items() if k in indoor_names and r is not None},
                            changed)
        self._account(now, readings, verdict.mode)
        self._check_deviation(now)
        self._publish_status(now)
        self._last_tick_at = now
        return verdict

    def _requested(self, now: datetime) -> tuple[Mode | None, str, str]:
        """What the plan, an override or a demand-response event asks for now (None: no valid plan)."""
        if not self.clock_ok:
            return None, "the system clock is not synchronised yet (NTP): no price is trusted, NORMAL", "failsafe"
        ov = self.held
        if ov is not None:
            if now < ov.until:
                local_end = ov.until.astimezone(self.cfg.device.tz)
                return ov.mode, f"{ov.reason} (until {local_end:%H:%M})", ov.by
            log.info("%s ended.", "Demand-response event" if ov.by == "demand-response" else "Override")
            self.held = None
            self.replan_event.set()
        plan = self.current_plan
        if plan is not None:
            i = plan.grid.index_of(now)
            if 0 <= i < len(plan.slots):
                s = plan.slots[i]
                ev = self._event_now(now)
                if ev is not None:
                    return s.mode, f"{s.reason} [demand-response event {ev.event_id}]", "demand-response"
                return s.mode, s.reason, "plan"
        doc = self.restored_plan
        if doc is not None:
            step = int(doc.get("slot_minutes", 15)) * 60
            for s in doc.get("schedule", []):
                start = datetime.fromisoformat(s["start"].replace("Z", "+00:00"))
                if start <= now < start + timedelta(seconds=step):
                    return Mode.parse(s["mode"]), f"{s['reason']} (plan from before the restart)", "plan"
        return None, "no valid plan yet", "failsafe"

    def _comfort_min(self, now: datetime) -> float:
        g = Grid(floor_time(now, self.step_s), self.step_s, 1)
        return float(comfort_band(g, self.cfg.comfort, self.cfg.device.tz).min_c[0])

    def _clock_synchronized(self) -> bool:
        if not self.cfg.daemon.require_clock_sync or not isinstance(self.clock, RealClock):
            return True
        ok = clock_synchronized()
        if ok is False:
            self._episode("clock", "The system clock is not synchronised (no NTP yet): holding NORMAL and "
                                   "acting on no price until it is.")
            return False
        self._recovered("clock", "The system clock is synchronised; following the plan again.")
        return True

    async def _apply(self, mode: Mode) -> None:
        act = self.devices.actuator if self.devices is not None else None
        if act is None:
            return
        if act.current is mode:
            return
        from atsd.devices.device import DeviceError

        try:
            await asyncio.wait_for(act.apply(mode), max(DEVICE_DEADLINE_S, self.cfg.actuator.write_timeout_s * 2))
            self._recovered("actuator", "The actuator answers again.")
            self.health.actuator(self.clock.now(), failed=False)
        except (DeviceError, TimeoutError) as exc:
            self.stats.device_errors += 1
            self.health.actuator(self.clock.now(), failed=True)
            self._episode("actuator", f"The actuator did not take {mode.value}: {exc}; retrying every tick.")

    def _save_supervisor(self, force: bool = False) -> None:
        from atsd.devices.control import save_state

        if self.supervisor is None:
            return
        st = self.supervisor.state
        key = f"{st.mode}|{st.since}|{len(st.off_starts)}|{st.last_off_end}|{st.floor}"
        if force or key != self._saved_state:
            try:
                save_state(self.state_dir, st)
                self._saved_state = key
            except OSError as exc:
                self._episode("state", f"Cannot save the supervisor's state: {exc}")

    # -- accounting --------------------------------------------------------------------------------

    def _roll_day(self, now: datetime) -> None:
        day = now.astimezone(self.cfg.device.tz).date()
        if self.today.day != day:
            self.today = Today(day)
            self.dr_today = {k: v for k, v in self.dr_today.items() if k == str(day)}

    def _price_now(self, now: datetime) -> tuple[float | None, float | None]:
        plan = self.current_plan
        if plan is not None:
            i = plan.grid.index_of(now)
            if 0 <= i < len(plan.slots):
                return plan.slots[i].price_eur_per_kwh, plan.slots[i].spot_eur_per_mwh
        return None, None

    def _one_slot_drive(self, now: datetime, seconds: float) -> Any:
        g = Grid(now, max(1, round(seconds)), 1)
        band = comfort_band(Grid(floor_time(now, self.step_s), self.step_s, 1), self.cfg.comfort, self.cfg.device.tz)
        out = self.outdoor_c if self.outdoor_c is not None else 0.0
        return self.model.drive(g, np.array([out]), None, band.target_c, band.min_c, band.max_c)

    def _account(self, now: datetime, readings: dict[str, Any], mode: Mode) -> None:
        """Today's cost (measured energy when a meter exists, else the model) and the always-NORMAL twin."""
        last = self._last_tick_at
        dt = (now - last).total_seconds() if last is not None else 0.0
        energy_reading = self.devices.combined("energy", now) if self.devices is not None else None
        power_reading = self.devices.combined("power", now) if self.devices is not None else None
        self.power_w = power_reading.value if power_reading is not None else None
        price, _spot = self._price_now(now)
        values: dict[str, float | None] = {"indoor_c": self.indoor_c, "outdoor_c": self.outdoor_c,
                                           "price_eur_per_kwh": price, "elec_w": self.power_w}
        for name, r in readings.items():
            if r is not None:
                values[f"sensor.{name}"] = r.value
        if last is not None and 0 < dt <= 3 * self.cfg.daemon.tick_s and self.outdoor_c is not None:
            drive = self._one_slot_drive(last, dt)
            measured = None
            if energy_reading is not None:
                if self._last_energy is not None:
                    measured = max(0.0, energy_reading.value - self._last_energy)
            elif self.power_w is not None:
                measured = self.power_w * dt / 3.6e6
            start_c = self.indoor_c if self.indoor_c is not None else float(drive.target_c[0])
            model_kwh = self.model.step1(drive, 0, start_c, mode.rank)[4]
            kwh = measured if measured is not None else model_kwh
            if self.shadow is None:
                self.shadow = Shadow(start_c)
            pred0 = self.health.predicted_start()
            pred = self.model.step1(drive, 0, pred0, mode.rank)[0] if pred0 is not None else None
            self.health.delivery(now, mode, self.indoor_c, pred)
            s_end, _m, _c, _a, s_kwh = self.model.step1(drive, 0, self.shadow.indoor_c, Mode.NORMAL.rank)
            self.shadow.indoor_c = s_end
            if price is not None:
                cost, base = kwh * price, s_kwh * price
                self.today.cost_eur += cost
                self.today.baseline_cost_eur += base
                values["cost_eur"] = cost
                values["baseline_cost_eur"] = base
            self.today.energy_kwh += kwh
            values["energy_kwh"] = kwh
        if energy_reading is not None:
            self._last_energy = energy_reading.value
        self.store.add_readings(now, values)
        slot = floor_time(now, self.step_s)
        if not self.rows or self.rows[-1]["time"] != slot:
            planned = None
            if self.current_plan is not None:
                i = self.current_plan.grid.index_of(slot)
                if 0 <= i < len(self.current_plan.slots):
                    planned = self.current_plan.slots[i]
            self.rows.append({"time": slot, "mode": mode, "n": 0, "indoor": 0.0, "outdoor": 0.0,
                              "energy_kwh": 0.0, "cost_eur": 0.0, "baseline_cost_eur": 0.0, "price": price,
                              "predicted_kwh": planned.energy_kwh if planned else None,
                              "predicted_c": planned.expected_indoor_c if planned else None})
        row = self.rows[-1]
        row["baseline_cost_eur"] += values.get("baseline_cost_eur") or 0.0
        row["mode"] = mode
        if self.indoor_c is not None:
            row["indoor"] += self.indoor_c
            row["n"] += 1
        if self.outdoor_c is not None:
            row["outdoor"] = self.outdoor_c
        row["energy_kwh"] += values.get("energy_kwh") or 0.0
        row["cost_eur"] += values.get("cost_eur") or 0.0

    # -- planning ------------------------------------------------------------------------------------

    async def _planner_loop(self) -> None:
        first = asyncio.ensure_future(self._initial_fetch())
        self._keep.add(first)
        first.add_done_callback(self._keep.discard)
        _done, pending = await asyncio.wait({first}, timeout=FIRST_PLAN_WAIT_S)
        if pending:
            log.info("The first forecast fetch is slow; planning on the cache and estimates meanwhile.")
        while True:
            now = self.clock.now()
            try:
                await self.replan(now)
            finally:
                self.planned.set()
            nxt = floor_time(now, self.step_s) + timedelta(seconds=self.step_s)
            self.replan_event.clear()
            sleeper = asyncio.ensure_future(self.clock.sleep_until(nxt))
            waker = asyncio.ensure_future(self.replan_event.wait())
            try:
                await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for f in (sleeper, waker):
                    f.cancel()

    async def _initial_fetch(self) -> None:
        now = self.clock.now()
        results = await asyncio.gather(self.sources.refresh_prices(now), self.sources.refresh_weather(now),
                                       self.sources.refresh_grid(now), return_exceptions=True)
        for r in results:
            if isinstance(r, Exception):
                log.error("The first forecast fetch failed: %r", r)
        self.replan_event.set()

    async def replan(self, now: datetime) -> Plan | None:
        """Plan from the current slot over the horizon; keeps the old plan when planning fails."""
        from atsd.planning import PlanningError, plan_forecast

        assert self.supervisor is not None
        if not self._clock_synchronized():
            self.current_plan = None
            return None
        fc = self.sources.assemble(now, self.cfg.planner.horizon_hours)
        self.current_forecast = fc
        start_c = self._start_temperature(now)
        st = self.supervisor.state
        held = int((now - st.since).total_seconds() // self.step_s) if st.since else 1_000_000
        try:
            result: tuple[Plan, PlanProblem, float] = await self._in_thread(
                plan_forecast, self.cfg, fc, start_c, now=now, model=self.model, current_mode=st.mode,
                current_mode_slots=max(0, held), modes=self.supervisor.supported,
                events=tuple((e.start, e.end, e.kind) for e in self.dr_events if e.end > now))
        except PlanningError as exc:
            self._episode("planner", f"No plan: {exc}; the supervisor holds NORMAL.")
            return None
        plan, prob, ms = result
        self._recovered("planner", "Planning works again.")
        self.stats.replans += 1
        self.current_plan, self.current_problem = plan, prob
        self.restored_plan = None
        self.store.add_forecast(now, fc)
        if self.store.add_plan(plan):
            log.debug("New plan by %s in %.1f ms: cost %.2f EUR, savings %.2f EUR.", plan.planner, ms,
                      plan.estimated_cost, plan.estimated_savings)
            if self.publisher is not None:
                self.publisher.publish(messages.PLAN, messages.plan_summary_message(plan.as_json()))
        if self.publisher is not None and self.cfg.grid.publish_flexibility:
            from atsd.core.flex import envelope

            env = await self._in_thread(envelope, prob, plan)
            self.publisher.publish(messages.FLEXIBILITY, messages.flexibility_message(
                self.cfg.device.device_id, now, plan.grid.step_s // 60,
                env))
        return plan

    def _start_temperature(self, now: datetime) -> float:
        if self.indoor_c is not None:
            return self.indoor_c
        plan = self.current_plan
        if plan is not None:
            i = plan.grid.index_of(now)
            if 0 <= i < len(plan.slots):
                return plan.slots[i].start_indoor_c
        return self.cfg.comfort.target_c

    def _check_deviation(self, now: datetime) -> None:
        plan = self.current_plan
        if plan is None or self.indoor_c is None:
            return
        i = plan.grid.index_of(now)
        if 0 <= i < len(plan.slots):
            s = plan.slots[i]
            frac = (now - s.start).total_seconds() / plan.grid.step_s
            predicted = s.start_indoor_c + frac * (s.expected_indoor_c - s.start_indoor_c)
            if abs(self.indoor_c - predicted) > REPLAN_DEVIATION_K:
                self.replan_event.set()

    # -- jobs ------------------------------------------------------------------------------------------

    def _jobs(self) -> list[tuple[str, Callable[[datetime], Awaitable[None]], Callable[[datetime], datetime]]]:
        d = self.cfg.daemon
        jobs: list[tuple[str, Callable[[datetime], Awaitable[None]], Callable[[datetime], datetime]]] = [
            ("prices", self._fetch_prices, lambda now: self.sources.next_price_poll(now)),
            ("weather", self._fetch_weather, lambda now: self.sources.next_weather_poll(now)),
            ("grid", self._fetch_grid, lambda now: self.sources.next_grid_poll(now)),
            ("flush", lambda now: self._flush(), lambda now: now + timedelta(seconds=d.flush_interval_s)),
            ("retention", self._retention, self._next_local(3, 30)),
        ]
        if d.calibrate_weekly:
            jobs.append(("calibration", self._calibrate, self._next_local(4, 0, weekday=6)))
        return jobs

    def _next_local(self, hour: int, minute: int, weekday: int | None = None) -> Callable[[datetime], datetime]:
        tz = self.cfg.device.tz

        def nxt(now: datetime) -> datetime:
            local = now.astimezone(tz)
            cand = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
            while cand <= local or (weekday is not None and cand.weekday() != weekday):
                cand = (cand + timedelta(days=1)).replace(hour=hour, minute=minute)
            return cand.astimezone(UTC)

        return nxt

    def _start_scheduler(self) -> Any:
        """APScheduler 3 runs the wall-clock jobs of a real installation: forecast fetches at the
        sources' poll times (publication of tomorrow's prices, hourly weather, 15-minute grid data),
        the history flush, the nightly retention and the weekly calibration. Each job re-schedules
        itself at the next time its rule gives; a failing run is logged and the next one still comes."""
        from apscheduler.schedulers.asyncio import AsyncIOScheduler
        from apscheduler.triggers.date import DateTrigger

        sched = AsyncIOScheduler(timezone=self.cfg.device.tz, job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": 300})

        def schedule(name: str, job: Callable[[datetime], Awaitable[None]],
                     nxt: Callable[[datetime], datetime]) -> None:
            async def run() -> None:
                try:
                    await job(self.clock.now())
                except Exception:
                    log.exception("The scheduled job %s failed; it runs again at its next time.", name)
                finally:
                    if sched.running:
                        schedule(name, job, nxt)

            sched.add_job(run, DateTrigger(run_date=nxt(self.clock.now())), id=name, name=name,
                          replace_existing=True)

        for name, job, nxt in self._jobs():
            schedule(name, job, nxt)
        sched.start()
        return sched

    async def _clock_job(self, job: Callable[[datetime], Awaitable[None]], nxt: Callable[[datetime], datetime]) -> None:
        """Run ``job`` at the times ``nxt`` gives, on the daemon's clock (real, accelerated or virtual).

        With the real clock the waits are wall-clock waits that follow NTP steps (see RealClock)."""
        while True:
            await self.clock.sleep_until(nxt(self.clock.now()))
            try:
                await job(self.clock.now())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("A scheduled job failed; it runs again at its next time.")

    async def _fetch_prices(self, now: datetime) -> None:
        if await self.sources.refresh_prices(now):
            self.replan_event.set()

    async def _fetch_weather(self, now: datetime) -> None:
        if await self.sources.refresh_weather(now):
            self.replan_event.set()

    async def _fetch_grid(self, now: datetime) -> None:
        await self.sources.refresh_grid(now)

    async def _flush(self) -> None:
        if self.store is None:
            return
        from atsd.store import StoreError

        try:
            n = await self._in_thread(self.store.flush)
            self._recovered("store", "History writes work again.")
            log.debug("Flushed %d history records.", n)
        except StoreError as exc:
            self._episode("store", f"Cannot write the history: {exc}; kept in memory and retried.")

    async def _retention(self, now: datetime) -> None:
        await self._flush()
        res = await self._in_thread(self.store.apply_retention, now)
        log.info("History retention: %d raw readings folded into 15-minute aggregates.", res.aggregated)

    async def _calibrate(self, now: datetime) -> None:
        try:
            from atsd.calibration import weekly_refit  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            return
        await self._flush()
        old = self._calibration()
        updated, message = await self._in_thread(weekly_refit, self.cfg, self.store, now)
        log.info("Weekly calibration: %s", message)
        if updated:
            self.health.model(now, old, self._calibration())
            self.model = house.thermal_model(self.cfg, self._calibration())
            self.replan_event.set()

    # -- commands ------------------------------------------------------------------------------------

    async def override_mode(self, mode: Mode | None, until: datetime, reason: str,
                            by: str = "override") -> dict[str, Any]:
        """Hold ``mode`` until ``until`` through the supervisor (``None`` cancels)."""
        now = self.clock.now()
        if mode is None:
            self.held = None
            self.replan_event.set()
            self.tick_event.set()
            return {"status": "accepted", "reason": "override cancelled; following the plan"}
        assert self.supervisor is not None
        if mode not in self.supervisor.supported:
            return {"status": "refused", "reason": f"this heat pump cannot do {mode.value} (it offers "
                                                   f"{', '.join(m.value for m in self.supervisor.supported)})"}
        if until <= now:
            return {"status": "refused", "reason": "the override ends in the past"}
        status = "accepted"
        end = until
        block = timedelta(minutes=self.cfg.supervisor.max_off_block_min)
        if mode is Mode.OFF and until - now > block:
            end = now + block
            status = "partial"
        self.held = Override(mode, end, f"{mode.value}: {reason}", by)
        self.tick_event.set()
        local = end.astimezone(self.cfg.device.tz)
        why = f"{mode.value} until {local:%H:%M}; the supervisor's comfort floor and switching rules still apply"
        if status == "partial":
            why = f"OFF shortened to the {block.total_seconds() / 60:.0f}-minute block limit: {why}"
        return {"status": status, "reason": why, "start": now, "end": end, "mode": mode}

    async def handle_demand_response(self, event: messages.DemandResponseEvent) -> dict[str, Any]:
        """A demand-response event becomes a planning constraint on its window (shed: at most ECO or
        OFF; boost: BOOST); the planner pre-charges around it, the supervisor's comfort floor and OFF
        limits still win. Answered accepted, partial (the floor or the block limit cut it) or refused."""
        g = self.cfg.grid
        now = self.clock.now()
        assert self.supervisor is not None
        if not g.demand_response:
            return {"status": "refused", "reason": "demand response is disabled in [grid]"}
        if event.end <= now:
            return {"status": "refused", "reason": "the event has already ended"}
        if event.duration_min > g.dr_max_duration_h * 60:
            return {"status": "refused", "reason": f"events are capped at {g.dr_max_duration_h:g} h"}
        day = str(event.start.astimezone(self.cfg.device.tz).date())
        if self.dr_today.get(day, 0) >= g.dr_max_events_per_day:
            return {"status": "refused", "reason": f"already {g.dr_max_events_per_day} events that day"}
        sup = self.supervisor.supported
        wanted = (Mode.OFF, Mode.ECO) if event.kind == "shed" else (Mode.BOOST,)
        if not any(m in sup for m in wanted):
            return {"status": "refused", "reason": f"this heat pump cannot {event.kind} (it offers "
                                                   f"{', '.join(m.value for m in sup)})"}
        before = self._window_energy(event.start, event.end)
        self.dr_today[day] = self.dr_today.get(day, 0) + 1
        self.dr_events = [e for e in self.dr_events if e.end > now] + [event]
        plan = await self.replan(now)
        self.tick_event.set()
        if plan is None:
            return {"status": "accepted", "reason": "no plan yet: the event will shape the next plan",
                    "start": event.start, "end": event.end}
        idx = [i for i, s in enumerate(plan.slots) if s.start < event.end and
               s.start.timestamp() + plan.grid.step_s > event.start.timestamp()]
        ok = [i for i in idx if (plan.slots[i].mode.rank <= Mode.ECO.rank) == (event.kind == "shed")
              and (event.kind == "shed" or plan.slots[i].mode is Mode.BOOST)]
        after = self._window_energy(event.start, event.end)
        hours = max(1e-9, (event.end - event.start).total_seconds() / 3600)
        shed_kw = (before - after) / hours if before is not None and after is not None else None
        tz = self.cfg.device.tz
        window = f"{event.start.astimezone(tz):%H:%M}-{event.end.astimezone(tz):%H:%M}"
        if idx and len(ok) == len(idx):
            status, why = "accepted", f"{event.kind} planned for {window}; the comfort floor still wins"
        elif ok:
            status = "partial"
            why = (f"{event.kind} planned for {len(ok)} of {len(idx)} slots of {window}: the comfort floor or the "
                   f"OFF block limit ({self.cfg.supervisor.max_off_block_min:.0f} min) takes the rest")
        else:
            self.dr_events.remove(event)
            await self.replan(now)
            status, why = "refused", f"the house cannot {event.kind} in {window} without leaving comfort"
        res: dict[str, Any] = {"status": status, "reason": why, "start": event.start, "end": event.end,
                               "shed_kw": None if shed_kw is None or event.kind != "shed" else round(shed_kw, 3)}
        if status != "refused":
            res["mode"] = wanted[0] if wanted[0] in sup else wanted[-1]
        return res

    def _window_energy(self, start: datetime, end: datetime) -> float | None:
        plan = self.current_plan
        if plan is None:
            return None
        return sum(s.energy_kwh for s in plan.slots if start <= s.start < end)

    def _event_now(self, now: datetime) -> messages.DemandResponseEvent | None:
        for e in self.dr_events:
            if e.start <= now < e.end:
                return e
        return None

    async def _on_mqtt_command(self, leaf: str, payload: bytes) -> None:
        now = self.clock.now()
        if leaf == messages.DR_SET:
            try:
                # the duration cap is checked by handle_demand_response, which answers "refused" with why
                ev = messages.DemandResponseEvent.parse(payload, "mqtt")
            except messages.MessageError as exc:
                log.warning("Refused a demand-response command: %s", exc)
                eid = _event_id(payload)
                if eid is not None and self.publisher is not None:
                    self.publisher.publish(messages.DR_ACK, messages.dr_ack_message(
                        self.cfg.device.device_id, eid, "refused", f"malformed event: {exc}", now), retain=False)
                return
            res = await self.handle_demand_response(ev)
            window = (res["start"], res["end"]) if "end" in res else None
            ack = messages.dr_ack_message(self.cfg.device.device_id, ev.event_id, res["status"], res["reason"], now,
                                          res.get("shed_kw"), window)
            if self.publisher is not None:
                self.publisher.publish(messages.DR_ACK, ack, retain=False)
        elif leaf == messages.MODE_SET:
            try:
                cmd = messages.ModeCommand.parse(payload)
            except messages.MessageError as exc:
                log.warning("Ignored a mode command: %s", exc)
                return
            until = cmd.until or now + timedelta(hours=1)
            res = await self.override_mode(cmd.mode, until, cmd.reason)
            log.info("Mode command over MQTT (%s): %s, %s", cmd.mode.value if cmd.mode else "AUTO", res["status"],
                     res["reason"])

    # -- MQTT status ---------------------------------------------------------------------------------

    def _publish_status(self, now: datetime) -> None:
        if self.publisher is None or self.last_verdict is None:
            return
        price, _spot = self._price_now(now)
        doc = messages.status_message(
            device_id=self.cfg.device.device_id, ts=now, mode=self.last_verdict.mode, reason=self.last_verdict.reason,
            indoor_c=self.indoor_c, outdoor_c=self.outdoor_c, target_c=self.cfg.comfort.target_c,
            price_eur_per_kwh=price, today_cost_eur=self.today.cost_eur,
            today_savings_eur=self.today.savings_eur,
            health=self._health_summary(), tags=self.cfg.device.tags,
            power_kw=None if self.power_w is None else self.power_w / 1000)
        self.publisher.publish(messages.STATUS, doc)
        alerts = self._alerts(now)
        keys = sorted(a["message"] for a in alerts)
        if keys != self._alerts_sent:
            self._alerts_sent = keys
            self.publisher.publish(messages.ALERTS, messages.alerts_message(
                self.cfg.device.device_id, now, [{**a, "since": iso_z(a["since"])} for a in alerts]))

    def _health_summary(self) -> dict[str, Any]:
        return {"clock_ok": self.clock_ok, "plan": self.current_plan is not None,
                "failing": sorted(k for k, v in self._episodes.items() if v > 0)}

    async def _in_thread(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Blocking work (SQLite, planning) off the loop that feeds the watchdog; a virtual clock
        stands still meanwhile, so simulated time never runs ahead of the work."""
        hold = getattr(self.clock, "hold", None)
        if hold is None:
            return await asyncio.to_thread(fn, *args, **kwargs)
        with hold():
            return await asyncio.to_thread(fn, *args, **kwargs)

    # -- logging helpers --------------------------------------------------------------------------

    def _episode(self, key: str, message: str) -> None:
        """Log the first failure of an episode; count the rest."""
        n = self._episodes.get(key, 0)
        self._episodes[key] = n + 1
        if n == 0:
            log.warning(message)
            self.stats.source_failures[key] = self.stats.source_failures.get(key, 0) + 1

    def _recovered(self, key: str, message: str) -> None:
        n = self._episodes.get(key, 0)
        if n:
            log.info("%s (after %d failed attempts)", message, n)
            self._episodes[key] = 0

    # -- StatusSource (the web app's view) ---------------------------------------------------------

    def snapshot(self) -> Snapshot:
        now = self.clock.now()
        v = self.last_verdict
        st = self.supervisor.state if self.supervisor else None
        snap: dict[str, Any] = {
            "now": now, "mode": v.mode if v else Mode.NORMAL, "reason": v.reason if v else "starting up",
            "mode_since": st.since if st else None, "by": self.by, "indoor_c": self.indoor_c,
            "outdoor_c": self.outdoor_c, "reading_at": self.reading_at,
            "today": {"cost_eur": round(self.today.cost_eur, 2),
                      "baseline_cost_eur": round(self.today.baseline_cost_eur, 2),
                      "savings_eur": round(self.today.savings_eur, 2),
                      "energy_kwh": round(self.today.energy_kwh, 2)},
            "measured": self._measured(), "sources": self._sources_health(), "decisions": list(self.decisions),
            "alerts": self._alerts(now), "clock_ok": self.clock_ok, "started_at": self.started_at,
        }
        ov = self.held
        if ov is not None and ov.by == "override":
            snap["override"] = {"mode": ov.mode, "until": ov.until, "reason": ov.reason}
        ev = self._event_now(now) or next((e for e in self.dr_events if e.start > now), None)
        if ev is not None:
            snap["demand_response"] = {"event_id": ev.event_id, "kind": ev.kind, "start": ev.start, "end": ev.end,
                                       "status": "accepted"}
        gs = self.sources.grid_status() if self.sources is not None else {}
        if gs.get("stress"):
            snap["grid_stress"] = str(gs["stress"])
        return cast("Snapshot", snap)

    def _measured(self) -> dict[str, Any]:
        """Predicted against measured, over the slots this run has recorded (a week is needed to judge)."""
        rows = [r for r in list(self.rows)[:-1] if r["n"] and r["predicted_kwh"] is not None]
        days = len(rows) * self.step_s / 86400
        metered = any(s.role in ("energy", "power") for s in self.cfg.sensors)
        doc: dict[str, Any] = {"days": round(days, 2), "days_needed": MEASURED_DAYS_NEEDED,
                               "predicted_energy_kwh": None, "measured_energy_kwh": None,
                               "predicted_mean_temp_c": None, "measured_mean_temp_c": None, "savings_eur": None,
                               "note": ("measured energy from the meter" if metered else
                                        "no energy meter: 'measured' energy is the model's, only temperatures "
                                        "are measured")}
        if rows:
            doc["predicted_energy_kwh"] = round(sum(r["predicted_kwh"] for r in rows), 2)
            doc["measured_energy_kwh"] = round(sum(r["energy_kwh"] for r in rows), 2)
            doc["predicted_mean_temp_c"] = round(sum(r["predicted_c"] for r in rows) / len(rows), 2)
            doc["measured_mean_temp_c"] = round(sum(r["indoor"] / r["n"] for r in rows) / len(rows), 2)
            doc["savings_eur"] = round(sum(r["baseline_cost_eur"] - r["cost_eur"] for r in rows), 2)
        return doc

    def _sources_health(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        fc = self.current_forecast
        if fc is not None:
            for name, p in fc.provenance.items():
                est = bool(fc.is_estimated(name).any())
                out.append({"name": name, "ok": not (p.fallback or est), "last_success": p.fetched_at,
                            "fallback": p.fallback or est,
                            "message": f"{p.source}{' (estimate)' if est else ''}{': ' + p.note if p.note else ''}"})
        if self.devices is not None:
            now = self.clock.now()
            for s in self.devices.status(now):
                d = s if isinstance(s, dict) else getattr(s, "__dict__", {})
                name = d.get("name", "?")
                ok = bool(d.get("ok", d.get("status") == "ok"))
                out.append({"name": f"sensor:{name}", "ok": ok, "last_success": d.get("last_ok") or d.get("timestamp"),
                            "fallback": False, "message": str(d.get("message") or d.get("status") or "")})
        if self._episodes.get("actuator"):
            out.append({"name": "actuator", "ok": False, "last_success": None, "fallback": False,
                        "message": "the actuator does not answer"})
        return out

    def _alerts(self, now: datetime) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = []
        if not self.clock_ok:
            alerts.append({"level": "warning", "message": "The system clock is not synchronised: NORMAL until it is.",
                           "since": self.started_at})
        if self.supervisor is not None and not self.supervisor.rules.indoor_sensor_configured:
            alerts.append({"level": "info", "message": "No indoor sensor: running on the model alone, OFF blocks "
                                                       "capped.", "since": self.started_at})
        if self.current_plan is not None and not self.current_plan.comfort.feasible:
            alerts.append({"level": "warning", "message": self.current_plan.note, "since": now})
        for key, n in self._episodes.items():
            if n:
                alerts.append({"level": "warning", "message": f"{key}: failing ({n} attempts)", "since": now})
        alerts.extend(self.health.active())
        return alerts

    def plan(self) -> Plan | None:
        return self.current_plan

    def forecast(self) -> Forecast | None:
        return self.current_forecast

    async def history(self, start: datetime, end: datetime) -> list[HistoryRow]:
        rows: list[dict[str, Any]] = []
        mem_start = self.rows[0]["time"] if self.rows else end
        if start < mem_start:
            rows.extend(await self._in_thread(self._stored_history, start, min(end, mem_start)))
        for r in self.rows:
            if start <= r["time"] < end:
                row: dict[str, Any] = {"time": r["time"], "mode": r["mode"], "energy_kwh": round(r["energy_kwh"], 4),
                                       "cost_eur": round(r["cost_eur"], 4)}
                if r["n"]:
                    row["indoor_c"] = round(r["indoor"] / r["n"], 2)
                if r["outdoor"] is not None:
                    row["outdoor_c"] = round(r["outdoor"], 1)
                if r["price"] is not None:
                    row["price_eur_per_kwh"] = round(r["price"], 4)
                rows.append(row)
        return cast("list[HistoryRow]", rows)

    def _stored_history(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        by_time: dict[datetime, dict[str, Any]] = {}
        names = {"indoor_c": "indoor_c", "outdoor_c": "outdoor_c", "price_eur_per_kwh": "price_eur_per_kwh"}
        for a in self.store.aggregates(start, end, [*list(names), "energy_kwh", "cost_eur"]):
            row = by_time.setdefault(a.start, {"time": a.start})
            if a.name in ("energy_kwh", "cost_eur"):
                row[a.name] = round(a.mean * a.count, 4)
            else:
                row[a.name] = round(a.mean, 3)
        for d in self.store.decisions(start, end):
            t = floor_time(d.ts, self.step_s)
            if t in by_time:
                by_time[t]["mode"] = Mode.parse(d.mode)
        return [by_time[t] for t in sorted(by_time)]

    async def evaluate(self, schedule: ProposedSchedule) -> Plan:
        from atsd.web.demo import evaluate_schedule

        if self.current_plan is None or self.current_problem is None:
            raise ValueError("no plan yet: nothing to evaluate against")
        plan: Plan = await self._in_thread(evaluate_schedule, self.current_problem, self.current_plan, schedule)
        return plan

    async def override(self, mode: Mode | None, until: datetime, reason: str) -> CommandResult:
        return cast("CommandResult", await self.override_mode(mode, until, reason))

    async def demand_response(self, event: messages.DemandResponseEvent) -> CommandResult:
        return cast("CommandResult", await self.handle_demand_response(event))

    def counters(self) -> Counters:
        c = self.stats
        return {"source_failures_total": dict(c.source_failures), "ticks_total": c.ticks,
                "tick_seconds_sum": c.tick_seconds_sum, "last_tick_seconds": c.last_tick_seconds,
                "replans_total": c.replans, "supervisor_interventions_total": c.interventions}


class _StopRequestedError(Exception):
    """Raised inside the TaskGroup to stop every task (a signal arrived)."""


class _Deadline:
    """Enter an async context manager; leave it within ``seconds`` (device writes must not hang a stop)."""

    def __init__(self, cm: Any, seconds: float, what: str) -> None:
        self.cm, self.seconds, self.what = cm, seconds, what

    async def __aenter__(self) -> Any:
        return await self.cm.__aenter__()

    async def __aexit__(self, *exc: Any) -> None:
        try:
            await asyncio.wait_for(self.cm.__aexit__(*exc), self.seconds)
        except TimeoutError:
            log.error("Closing the %s took longer than %.0f s; the unit's ExecStopPost failsafe sets NORMAL.",
                      self.what, self.seconds)


def _event_id(payload: bytes) -> str | None:
    """The event id of an event that does not parse, to answer it; None when there is none."""
    import json

    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    eid = doc.get("event_id") if isinstance(doc, dict) else None
    return eid if isinstance(eid, str) and 0 < len(eid) <= 64 else None


def _speed(clock: Clock) -> float:
    return float(getattr(clock, "speed", 1.0))


__all__ = ["EX_LOCKED", "Daemon"]
