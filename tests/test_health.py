from __future__ import annotations

from datetime import UTC, datetime, timedelta

from atsd.core.modes import Mode
from atsd.health import HealthMonitor

T0 = datetime(2026, 1, 15, tzinfo=UTC)


def test_boost_without_warming_raises_not_delivering_and_clears_when_it_heats():
    h = HealthMonitor()
    for i in range(0, 62):
        now = T0 + timedelta(minutes=i)
        pred = h.predicted_start()
        h.delivery(now, Mode.BOOST, 20.5, None if pred is None else pred + 0.012)  # model: +0.7 K/h
    assert "not_delivering" in h.alerts
    for i in range(62, 124):
        now = T0 + timedelta(minutes=i)
        pred = h.predicted_start()
        h.delivery(now, Mode.BOOST, 20.5 + 0.011 * (i - 62), None if pred is None else pred + 0.012)
    assert "not_delivering" not in h.alerts


def test_stuck_sensor_is_reported_only_when_the_heat_pump_switched():
    h = HealthMonitor()
    for i in range(0, 8 * 60, 10):
        now = T0 + timedelta(minutes=i)
        h.sensors(now, {"hall": 21.25, "room": 21.0 + (i % 30) / 100}, switched=(i == 60))
    assert "sensor_stuck:hall" in h.alerts
    assert "sensor_stuck:room" not in h.alerts


def test_one_sensor_far_from_the_others_is_drift():
    h = HealthMonitor()
    for i in range(0, 90, 5):
        h.sensors(T0 + timedelta(minutes=i), {"a": 21.0, "b": 21.2, "c": 24.5}, switched=False)
    assert "sensor_drift:c" in h.alerts and "sensor_drift:a" not in h.alerts


def test_actuator_failures_and_frequent_overrides():
    h = HealthMonitor()
    for i in range(3):
        h.actuator(T0 + timedelta(minutes=i), failed=True)
    assert h.alerts["actuator"].level == "critical"
    for i in range(100):
        h.supervisor(T0 + timedelta(minutes=i), overridden=i % 3 == 0)
    assert "overrides" in h.alerts


def test_model_drift_after_a_refit():
    h = HealthMonitor()
    h.model(T0, {"ua_w_per_k": 150.0, "capacitance_kwh_per_k": 4.0}, {"ua_w_per_k": 200.0, "capacitance_kwh_per_k": 4.1})
    assert "UA +33%" in h.alerts["model_drift"].message
    h.model(T0, {"ua_w_per_k": 150.0}, {"ua_w_per_k": 155.0})
    assert "model_drift" not in h.alerts
