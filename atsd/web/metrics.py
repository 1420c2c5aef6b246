"""``/metrics``: Prometheus text from the daemon's snapshot and counters, in the app's own registry.

A custom collector reads the source at scrape time, so nothing is pushed and nothing goes stale;
the app's own request counter lives in the same registry (never the process-global one, so that
several apps in one process, as in tests, do not collide).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from atsd.core.modes import ALL_MODES
from atsd.web.documents import current_slot
from atsd.web.source import StatusSource

log = logging.getLogger(__name__)


class DaemonCollector(Collector):
    """Mode, temperatures, cost and savings, source failures and tick duration of one house."""

    def __init__(self, source: StatusSource, device_id: str):
        self.source = source
        self.device_id = device_id

    def collect(self) -> Iterator[Metric]:
        try:
            snap = self.source.snapshot()
            counters = self.source.counters()
            plan = self.source.plan()
        except Exception:  # a scrape must not fail the whole page: report the fault as a metric
            log.exception("metrics: the daemon's snapshot failed")
            up = GaugeMetricFamily("atsd_snapshot_ok", "1 when the daemon's snapshot could be read",
                                   labels=["device_id"])
            up.add_metric([self.device_id], 0)
            yield up
            return
        d = [self.device_id]
        up = GaugeMetricFamily("atsd_snapshot_ok", "1 when the daemon's snapshot could be read", labels=["device_id"])
        up.add_metric(d, 1)
        yield up
        mode = GaugeMetricFamily("atsd_mode", "1 for the heat pump's current mode", labels=["device_id", "mode"])
        for m in ALL_MODES:
            mode.add_metric([*d, m.value], 1.0 if snap["mode"] is m else 0.0)
        yield mode
        for name, key, doc in (("atsd_indoor_temp_celsius", "indoor_c", "Indoor temperature"),
                               ("atsd_outdoor_temp_celsius", "outdoor_c", "Outdoor temperature")):
            v = snap[key]  # type: ignore[literal-required]
            if v is not None:
                g = GaugeMetricFamily(name, doc, labels=["device_id"])
                g.add_metric(d, float(v))
                yield g
        today = snap["today"]
        for name, val, doc in (
            ("atsd_today_cost_eur", today["cost_eur"], "Cost of the local day so far (model)"),
            ("atsd_today_baseline_cost_eur", today["baseline_cost_eur"], "Always-NORMAL cost of the day so far"),
            ("atsd_today_savings_eur", today["savings_eur"], "Model savings of the day so far"),
            ("atsd_today_energy_kwh", today["energy_kwh"], "Electric energy of the day so far"),
        ):
            g = GaugeMetricFamily(name, doc, labels=["device_id"])
            g.add_metric(d, float(val))
            yield g
        slot = current_slot(plan, snap["now"])
        if slot is not None:
            g = GaugeMetricFamily("atsd_price_eur_per_kwh", "Paid electricity price of the current slot",
                                  labels=["device_id"])
            g.add_metric(d, slot.price_eur_per_kwh)
            yield g
        if plan is not None:
            for name, val, doc in (("atsd_plan_estimated_cost_eur", plan.estimated_cost, "Plan cost over its horizon"),
                                   ("atsd_plan_estimated_savings_eur", plan.estimated_savings,
                                    "Plan savings against always-NORMAL over its horizon")):
                g = GaugeMetricFamily(name, doc, labels=["device_id"])
                g.add_metric(d, val)
                yield g
        ok = GaugeMetricFamily("atsd_source_ok", "1 when the source's last fetch succeeded", labels=["device_id", "source"])
        fb = GaugeMetricFamily("atsd_source_fallback", "1 while a fallback stands in", labels=["device_id", "source"])
        for s in snap["sources"]:
            ok.add_metric([*d, s["name"]], 1.0 if s["ok"] else 0.0)
            fb.add_metric([*d, s["name"]], 1.0 if s["fallback"] else 0.0)
        yield ok
        yield fb
        fails = CounterMetricFamily("atsd_source_failures", "Failed fetches by source", labels=["device_id", "source"])
        for name, n in counters["source_failures_total"].items():
            fails.add_metric([*d, name], n)
        yield fails
        ticks = CounterMetricFamily("atsd_ticks", "Control ticks run", labels=["device_id"])
        ticks.add_metric(d, counters["ticks_total"])
        yield ticks
        tick_s = CounterMetricFamily("atsd_tick_seconds", "Total time spent in control ticks", labels=["device_id"])
        tick_s.add_metric(d, counters["tick_seconds_sum"])
        yield tick_s
        if counters["last_tick_seconds"] is not None:
            g = GaugeMetricFamily("atsd_last_tick_seconds", "Duration of the last control tick", labels=["device_id"])
            g.add_metric(d, counters["last_tick_seconds"])
            yield g
        for name, val, doc in (("atsd_replans", counters["replans_total"], "Plans made"),
                               ("atsd_supervisor_interventions", counters["supervisor_interventions_total"],
                                "Times the supervisor overrode the plan")):
            c = CounterMetricFamily(name, doc, labels=["device_id"])
            c.add_metric(d, val)
            yield c


def make_registry(source: StatusSource, device_id: str) -> tuple[CollectorRegistry, Counter]:
    """A registry of its own with the daemon collector and the HTTP request counter."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(DaemonCollector(source, device_id))
    requests = Counter("atsd_http_requests", "HTTP requests served by the status page and API",
                       ["route", "method", "status"], registry=reg)
    return reg, requests
