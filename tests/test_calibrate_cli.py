"""``atsd calibrate``: JSON shape, exit codes, --apply storage, and the planner picking the fit up."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from atsd import calibration
from atsd.cli import main
from atsd.config import Config, DaemonConfig
from atsd.core.modes import Mode
from atsd.core.timegrid import Grid, iso_z
from atsd.csvdata import demo_forecast
from atsd.planning import plan_forecast

from .core import histories as hist


def write_csv(path: Path, days: float = 8.0, seed: int = 3, *, heat: bool = True, modes: bool = False,
              elec_cop: float | None = None) -> Path:
    h, _m = hist.standard(days, seed=seed)
    grid = Grid(hist.START, h.step_s, h.n)
    cols = ["time_utc", "indoor_c", "outdoor_c"]
    if heat:
        cols.append("heat_w")
    if elec_cop:
        cols.append("elec_w")
    if modes:
        cols.append("mode")
    names = {m.rank: m.value for m in Mode}
    lines = [",".join(cols)]
    for i, t in enumerate(grid.times()):
        row = [iso_z(t), f"{h.indoor_c[i]:.3f}", f"{h.outdoor_c[i]:.2f}"]
        if heat:
            row.append(f"{h.heat_w[i]:.1f}")
        if elec_cop:
            row.append(f"{h.heat_w[i] / elec_cop:.1f}")
        if modes:
            assert h.mode_rank is not None
            row.append(names[int(h.mode_rank[i])])
        lines.append(",".join(row))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def history_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_csv(tmp_path_factory.mktemp("hist") / "history.csv")


def test_json_has_the_documented_fields(history_csv, capsys, tmp_path):
    assert main(["calibrate", "--csv", str(history_csv), "--json", "--state-dir", str(tmp_path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    for key in ("ua_w_per_k", "capacitance_kwh_per_k", "rmse_c", "samples", "tau_h", "intervals_95",
                "model_estimate"):
        assert key in doc
    assert abs(doc["ua_w_per_k"] / 160.0 - 1) < 0.1
    assert abs(doc["capacitance_kwh_per_k"] / 5.0 - 1) < 0.1
    ci = doc["intervals_95"]["ua_w_per_k"]
    assert ci["low"] < doc["ua_w_per_k"] < ci["high"]
    assert doc["samples"] > 600
    assert doc["model_estimate"] is False
    assert doc["history"]["start"] == "2023-01-10T00:00:00Z"
    assert not (tmp_path / "calibration.json").exists()  # no --apply, nothing stored


def test_text_output_names_the_parameters(history_csv, capsys):
    assert main(["calibrate", "--csv", str(history_csv)]) == 0
    out = capsys.readouterr().out
    assert "heat loss UA" in out
    assert "W/K" in out
    assert "95 %" in out


def test_refusal_prints_the_reason_and_exits_1(tmp_path, capsys):
    short = write_csv(tmp_path / "short.csv", days=2.0)
    assert main(["calibrate", "--csv", str(short), "--json"]) == 1
    cap = capsys.readouterr()
    assert "too short" in cap.err
    doc = json.loads(cap.out)
    assert doc["refused"] is True
    assert "too short" in doc["reason"]


def test_unreadable_csv_exits_1_with_the_file_named(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("time_utc,indoor_c\n2023-01-01T00:00:00Z,21\n", encoding="utf-8")
    assert main(["calibrate", "--csv", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "bad.csv" in err
    assert "outdoor_c" in err


def test_apply_writes_atomically_and_load_overrides_reads_back(history_csv, tmp_path, capsys):
    state = tmp_path / "state"
    assert main(["calibrate", "--csv", str(history_csv), "--json", "--apply", "--state-dir", str(state)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["applied"] is True
    assert sorted(p.name for p in state.iterdir()) == ["calibration.json"]  # no temp file left behind
    over = calibration.load_overrides(state)
    assert over is not None
    assert over["ua_w_per_k"] == pytest.approx(doc["ua_w_per_k"], rel=1e-3)
    assert over["capacitance_kwh_per_k"] == pytest.approx(doc["capacitance_kwh_per_k"], rel=1e-3)
    assert over["internal_gains_w"] == pytest.approx(doc["internal_gains_w"], rel=1e-3)


def test_should_replace_keeps_old_parameters_unless_the_new_fit_is_no_worse():
    assert calibration.should_replace(None, {"rmse_c": 0.2})
    assert not calibration.should_replace({"rmse_c": 0.10}, {"rmse_c": 0.20})
    assert calibration.should_replace({"rmse_c": 0.20}, {"rmse_c": 0.10})
    assert calibration.should_replace({"rmse_c": 0.10}, {"rmse_c": 0.10})
    assert not calibration.should_replace({"rmse_c": 0.10}, None)
    assert not calibration.should_replace({"rmse_c": 0.10}, {"refused": True, "reason": "too short"})
    assert calibration.should_replace({"rmse_c": None}, {"rmse_c": 0.3})


def test_apply_replaces_worse_stored_parameters(history_csv, tmp_path, capsys):
    state = tmp_path / "state"
    calibration.save(state, {"overrides": {"ua_w_per_k": 120.0, "capacitance_kwh_per_k": 7.0}, "rmse_c": 0.01})
    assert main(["calibrate", "--csv", str(history_csv), "--apply", "--state-dir", str(state)]) == 0
    out = capsys.readouterr().out
    assert "stored in" in out
    assert "old parameters: RMSE" in out
    over = calibration.load_overrides(state)
    assert over is not None
    assert abs(over["ua_w_per_k"] / 160.0 - 1) < 0.1


def test_refused_apply_leaves_the_stored_parameters(tmp_path, capsys):
    state = tmp_path / "state"
    calibration.save(state, {"overrides": {"ua_w_per_k": 140.0}})
    short = write_csv(tmp_path / "short.csv", days=2.0)
    assert main(["calibrate", "--csv", str(short), "--apply", "--state-dir", str(state)]) == 1
    assert calibration.load_overrides(state) == {"ua_w_per_k": 140.0}
    capsys.readouterr()


def test_relay_only_csv_is_labelled_a_model_estimate(tmp_path, capsys):
    # Fixed-speed unit driven by relays: only the mode is logged.
    rng = np.random.default_rng(6)
    grid, out = hist.outdoor(hist.START, 10.0)
    heat = {Mode.OFF: 0.0, Mode.ECO: 2500.0, Mode.NORMAL: 4500.0, Mode.BOOST: 6500.0}
    h = hist.simulate_history(hist.true_model(), grid, out, hist.mode_mix(grid.n, rng), rng=rng, fixed_heat_w=heat)
    assert h.mode_rank is not None
    lines = ["time_utc,indoor_c,outdoor_c,mode"]
    name = {m.rank: m.value for m in Mode}
    lines += [f"{iso_z(t)},{h.indoor_c[i]:.3f},{h.outdoor_c[i]:.2f},{name[int(h.mode_rank[i])]}"
              for i, t in enumerate(grid.times())]
    path = tmp_path / "relay.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    state = tmp_path / "state"
    assert main(["calibrate", "--csv", str(path), "--json", "--apply", "--state-dir", str(state)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["model_estimate"] is True
    assert doc["ua_w_per_k"] is None
    assert doc["capacitance_kwh_per_k"] is None
    assert abs(doc["tau_h"] / 31.25 - 1) < 0.1
    assert set(doc["heat_rate_k_per_h"]) == {"OFF", "ECO", "NORMAL", "BOOST"}
    # The planner gets a capacitance from the fitted τ and the configured UA, labelled as such.
    assert set(doc["overrides"]) == {"capacitance_kwh_per_k", "internal_gains_w"}
    assert any("model estimate" in n for n in doc["notes"])


def test_relay_only_thermostat_csv_uses_configured_setpoints(tmp_path, capsys):
    # The default config's comfort band (20/21/23 °C) matches the plant's; aux off in the plant.
    rng = np.random.default_rng(2)
    grid, out = hist.outdoor(hist.START, 10.0)
    h = hist.simulate_history(hist.true_model(aux_w=0.0), grid, out, hist.mode_mix(grid.n, rng), rng=rng)
    assert h.mode_rank is not None
    name = {m.rank: m.value for m in Mode}
    lines = ["time_utc,indoor_c,outdoor_c,mode"]
    lines += [f"{iso_z(t)},{h.indoor_c[i]:.3f},{h.outdoor_c[i]:.2f},{name[int(h.mode_rank[i])]}"
              for i, t in enumerate(grid.times())]
    path = tmp_path / "relay.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    state = tmp_path / "state"
    assert main(["calibrate", "--csv", str(path), "--json", "--apply", "--state-dir", str(state)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["model_estimate"] is True
    assert doc["relay_model"] == "thermostat"
    assert abs(doc["tau_h"] / 31.25 - 1) < 0.1
    # C from the compressor's rate and the configured 8 kW; UA from C and τ: both model estimates.
    over = calibration.load_overrides(state)
    assert over is not None
    assert abs(over["capacitance_kwh_per_k"] / 5.0 - 1) < 0.15
    assert abs(over["ua_w_per_k"] / 160.0 - 1) < 0.15
    assert any("rated heat output" in n for n in doc["notes"])


def test_electric_power_times_cop_model_gives_the_heat(tmp_path, capsys):
    path = write_csv(tmp_path / "elec.csv", heat=False, elec_cop=3.5)
    assert main(["calibrate", "--csv", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["model_estimate"] is False
    assert doc["ua_w_per_k"] > 0
    assert any("COP model" in n for n in doc["notes"])


def test_planner_uses_the_stored_calibration(tmp_path):
    cfg = Config(daemon=DaemonConfig(state_dir=tmp_path))
    fc = demo_forecast(None, 24, 900)
    _plan, prob, _ms = plan_forecast(cfg, fc, 21.0, planner="greedy")
    assert prob.model.building.ua_w_per_k != pytest.approx(222.0)
    calibration.save(tmp_path, {"overrides": {"ua_w_per_k": 222.0, "capacitance_kwh_per_k": 6.5}})
    _plan, prob, _ms = plan_forecast(cfg, fc, 21.0, planner="greedy")
    assert prob.model.building.ua_w_per_k == pytest.approx(222.0)
    assert prob.model.building.capacitance_kwh_per_k == pytest.approx(6.5)


def test_corrupt_calibration_file_is_ignored(tmp_path, caplog):
    (tmp_path / "calibration.json").write_text("{not json", encoding="utf-8")
    assert calibration.load_overrides(tmp_path) is None
    assert "cannot be read" in caplog.text


class FakeStore:
    """The three queries of ``atsd.store.Store`` that calibration uses, over a generated history."""

    def __init__(self, h, grid):
        from types import SimpleNamespace

        self.aggs = []
        self.decs = []
        names = {m.rank: m.value for m in Mode}
        for i, t in enumerate(grid.times()):
            # the bucket mean of a linearly changing temperature is its mid-slot value
            nxt = h.indoor_c[i + 1] if i + 1 < grid.n else h.indoor_c[i]
            for name, v in (("living_room", 0.5 * (h.indoor_c[i] + nxt)), ("outdoor_c", h.outdoor_c[i]),
                            ("heat_w", h.heat_w[i])):
                self.aggs.append(SimpleNamespace(start=t, name=name, mean=float(v), min=float(v), max=float(v), count=3))
            self.decs.append(SimpleNamespace(ts=t, mode=names[int(h.mode_rank[i])]))
        self.end = grid.end

    def latest_record_time(self):
        return self.end

    def aggregates(self, start, end, names=None):
        return [a for a in self.aggs if start <= a.start < end and (names is None or a.name in names)]

    def decisions(self, start, end):
        return [d for d in self.decs if start <= d.ts < end]


def test_history_from_the_daemon_store_fits_like_the_csv():
    from atsd.config import SensorConfig

    h, _m = hist.standard(8.0, seed=3)
    grid = Grid(hist.START, h.step_s, h.n)
    cfg = Config(sensors=(SensorConfig(name="living_room", kind="simulated", role="indoor"),))
    names = calibration.db_names(cfg)
    assert names["indoor"] == "indoor_c"  # the daemon records the combined indoor value under this name
    names["indoor"] = "living_room"  # the fake store's name for it
    got, got_grid, _notes = calibration.history_from_store(FakeStore(h, grid), None, None, 900, names)
    assert got_grid.start == grid.start  # the default window: the last 30 days up to the newest record
    assert got.mode_rank is not None
    np.testing.assert_array_equal(got.mode_rank, h.mode_rank)
    from atsd.core.calibrate import fit

    cal = fit(got)
    assert cal.ua_w_per_k is not None
    assert abs(cal.ua_w_per_k.value / 160.0 - 1) < 0.1


def test_missing_history_database_exits_1(tmp_path, capsys):
    assert main(["calibrate", "--db", str(tmp_path / "history.db")]) == 1
    assert "no such history database" in capsys.readouterr().err


def test_weekly_refit_stores_a_fit_and_keeps_it_when_the_next_is_refused(tmp_path):
    from datetime import timedelta

    h, _m = hist.standard(8.0, seed=3)
    grid = Grid(hist.START, h.step_s, h.n)
    cfg = Config(daemon=DaemonConfig(state_dir=tmp_path, calibrate_weekly=True))
    store = FakeStore(h, grid)
    store.aggs = [a for a in store.aggs if a.name != "living_room"] + [
        type(a)(**{**vars(a), "name": "indoor_c"}) for a in store.aggs if a.name == "living_room"]
    replaced, message = calibration.weekly_refit(cfg, store, grid.end)
    assert replaced, message
    stored = calibration.load_overrides(tmp_path)
    assert stored is not None
    # A month later with no readings logged since: refused, the stored parameters stay.
    replaced, message = calibration.weekly_refit(cfg, store, grid.end + timedelta(days=31))
    assert not replaced
    assert "refused" in message
    assert calibration.load_overrides(tmp_path) == stored


def test_overrides_reach_the_thermal_model():
    from atsd.core import house

    b = house.building(Config(), {"ua_w_per_k": 111.0, "capacitance_kwh_per_k": 3.0, "solar_aperture_m2": 0.0,
                                  "internal_gains_w": 123.0})
    assert (b.ua_w_per_k, b.capacitance_kwh_per_k, b.solar_aperture_m2, b.internal_gains_w) == \
        pytest.approx((111.0, 3.0, 0.0, 123.0))
