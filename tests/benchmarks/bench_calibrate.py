"""Calibration targets: fit time of a 30-day 15-minute history, and savings recovered on a mismatched house.

Run: ``python tests/benchmarks/bench_calibrate.py [--quick]`` (the shared data directory, default
``/work/shared/data``, or ``ATSD_DATA``). Not a test: timings depend on the
machine; the figures go in the notes.

1. **Fit time**: a 30-day history at 15-minute resolution that the thermal model generates (real
   Helsinki-Vantaa temperatures of January 2023, a random mode mix, 0.1 K sensor noise). Median of
   repeated fits.
2. **Savings recovered**: a house whose true UA and C are 20 % off the configured ones. For a month
   (January 2023) the daemon plans with the configured (wrong) model while the true house runs and
   logs noisy readings; the fit of that month's log gives the fitted model. Then February and March
   2023 are replayed three times on the true house with real FI day-ahead prices and temperatures,
   planning with the true, the wrong and the fitted model (receding horizon: a 48 h plan every 6 h,
   its first 6 h executed; the supervisor's floor forces NORMAL whenever the house is below comfort
   min). Recovered = (cost_wrong − cost_fitted) / (cost_wrong − cost_true), on the same comfort
   accounting. The planner is ``optimal`` when this tree has it, else the greedy one;
   ``--planner-file FILE`` loads a planner module from a file as ``optimal`` (one not merged yet).
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from atsd.config import BuildingConfig, Config
from atsd.core import house
from atsd.core.calibrate import History, fit
from atsd.core.comfort import comfort_band
from atsd.core.forecast import PRICE, TEMP, Forecast
from atsd.core.modes import Mode
from atsd.core.planner import available, get
from atsd.core.thermal import J_PER_KWH, ThermalModel
from atsd.core.timegrid import Grid, resample_linear, resample_step
from atsd.csvdata import read_csv
from tests.core import histories as hist

STEP_S = 900
HORIZON_H = 48
REPLAN_H = 6
PLANNER = {"name": "optimal" if "optimal" in available() else "greedy"}


def use_planner_file(path: str) -> None:
    """Load a planner module from a file as ``atsd.core.planner.optimal`` (e.g. one not merged yet)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("atsd.core.planner.optimal", path)
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["atsd.core.planner.optimal"] = mod
    spec.loader.exec_module(mod)
    PLANNER["name"] = "optimal"


def fit_time(repeats: int = 7) -> tuple[float, float, int]:
    h, _m = hist.standard(30.0, seed=11)
    times = []
    cal = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        cal = fit(h)
        times.append(time.perf_counter() - t0)
    assert cal is not None
    return statistics.median(times), max(times), h.n


@dataclass
class Run:
    cost_eur: float
    elec_kwh: float
    kh_below_min: float
    indoor_c: np.ndarray
    heat_w: np.ndarray


class Replay:
    """Real prices and temperatures on the 15-minute grid, and the plant (the true house)."""

    def __init__(self, cfg: Config, start: datetime, days: float):
        prices = read_csv(hist.SHARED_PRICES, ("price_eur_per_mwh",))
        weather = read_csv(hist.SHARED_WEATHER, ("temp_c",))
        n = round(days * 86400 / STEP_S) + HORIZON_H * 3600 // STEP_S
        self.grid = Grid(start, STEP_S, n)
        self.spot = resample_step(prices.epoch_s, prices.values["price_eur_per_mwh"], prices.step_s, self.grid)
        self.temp = resample_linear(weather.epoch_s, weather.values["temp_c"], self.grid)
        self.n_run = round(days * 86400 / STEP_S)
        self.cfg = cfg
        self.band = comfort_band(self.grid, cfg.comfort, cfg.device.tz)
        self.price = house.tariff(cfg).price_eur_per_kwh(self.grid, self.spot)

    def run(self, plant: ThermalModel, planner_model: ThermalModel | None, rng: np.random.Generator | None = None,
            noise_c: float = 0.1, start_c: float = 21.0) -> Run:
        cfg, g = self.cfg, self.grid
        d = plant.drive(g, self.temp, None, self.band.target_c, self.band.min_c, self.band.max_c)
        t = start_c
        indoor = np.empty(self.n_run)
        heat = np.empty(self.n_run)
        cost = elec = kh = 0.0
        mode, held = Mode.NORMAL, 1_000_000
        step = REPLAN_H * 3600 // STEP_S
        span = HORIZON_H * 3600 // STEP_S
        for k0 in range(0, self.n_run, step):
            w = slice(k0, k0 + span)
            if planner_model is None:  # the baseline: the heat pump's own control all along
                modes = [Mode.NORMAL] * step
            else:
                fc = Forecast(g.slice(k0, k0 + span), {PRICE: self.spot[w], TEMP: self.temp[w]})
                prob = house.problem(cfg, fc, t, model=planner_model, current_mode=mode, current_mode_slots=held)
                modes = get(PLANNER["name"])(prob).modes
            for i in range(min(step, self.n_run - k0)):
                k = k0 + i
                m = modes[i]
                if t < self.band.min_c[k] and m.rank < Mode.NORMAL.rank:
                    m = Mode.NORMAL  # the supervisor's comfort floor
                end, _mean, ec, ea, ek = plant.step1(d, k, t, m.rank)
                indoor[k] = t
                heat[k] = (ec + ea) / STEP_S
                cost += ek * float(self.price[k])
                elec += ek
                kh += 0.5 * (max(0.0, self.band.min_c[k] - t) + max(0.0, self.band.min_c[k] - end)) * STEP_S / 3600
                held = held + 1 if m is mode else 1
                mode = m
                t = end
        if rng is not None:
            indoor = indoor + rng.normal(0.0, noise_c, len(indoor))
        return Run(cost, elec, kh, indoor, heat)


def recovery(ua_factor: float, c_factor: float, quick: bool = False) -> dict[str, float]:
    """True house = configured × factors; returns costs and the share of lost savings recovered."""
    cfg = Config(building=BuildingConfig(ua_w_per_k=150.0, capacitance_kwh_per_k=5.0))
    wrong = house.thermal_model(cfg)
    b = wrong.building
    true_b = replace(b, ua_w_per_k=b.ua_w_per_k * ua_factor, capacitance_j_per_k=b.capacitance_j_per_k * c_factor)
    true = replace(wrong, building=true_b)
    # A month of logged history while planning with the wrong model.
    rng = np.random.default_rng(7)
    log_days = 10.0 if quick else 30.0
    hist = Replay(cfg, datetime(2023, 1, 1, tzinfo=UTC), log_days)
    logged = hist.run(true, wrong, rng=rng)
    h = History(STEP_S, logged.indoor_c, hist.temp[:hist.n_run].copy(), None, logged.heat_w)
    cal = fit(h)
    fitted = house.thermal_model(cfg, cal.overrides())
    eval_days = 14.0 if quick else 59.0
    ev = Replay(cfg, datetime(2023, 2, 1, tzinfo=UTC), eval_days)
    runs = {name: ev.run(true, model) for name, model in (("true", true), ("wrong", wrong), ("fitted", fitted))}
    runs["always NORMAL"] = ev.run(true, None)
    lost = runs["wrong"].cost_eur - runs["true"].cost_eur
    recovered = (runs["wrong"].cost_eur - runs["fitted"].cost_eur) / lost if lost > 0 else float("nan")
    out = {f"cost_{k}": r.cost_eur for k, r in runs.items()}
    out |= {f"kh_below_{k}": r.kh_below_min for k, r in runs.items()}
    out |= {"ua_true": true_b.ua_w_per_k, "ua_cfg": b.ua_w_per_k, "ua_fit": cal.ua_w_per_k.value if cal.ua_w_per_k else 0,
            "c_true": true_b.capacitance_j_per_k / J_PER_KWH, "c_cfg": b.capacitance_j_per_k / J_PER_KWH,
            "c_fit": cal.capacitance_kwh_per_k.value if cal.capacitance_kwh_per_k else 0,
            "rmse_c": cal.rmse_c, "lost_eur": lost, "recovered": recovered, "eval_days": eval_days}
    return out


def relay_fit_time(repeats: int = 3) -> float:
    """A 30-day relay-only history of a thermostat heat pump (the Levenberg-Marquardt path)."""
    rng = np.random.default_rng(12)
    grid, out = hist.outdoor(hist.START, 30.0)
    h = hist.simulate_history(hist.true_model(aux_w=0.0), grid, out, hist.mode_mix(grid.n, rng), rng=rng)
    h = replace(h, heat_w=None)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fit(h)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    if "--planner-file" in argv:
        use_planner_file(argv[argv.index("--planner-file") + 1])
    med, worst, n = fit_time(3 if quick else 7)
    print(f"fit time, 30-day history at 15 min ({n} slots): median {med * 1000:.0f} ms, max {worst * 1000:.0f} ms "
          f"(target < 2000 ms)")
    print(f"fit time, 30-day relay-only thermostat history: median {relay_fit_time() * 1000:.0f} ms")
    print(f"planner: {PLANNER['name']}")
    lost_sum = recovered_sum = 0.0
    for ua_f, c_f in ((1.2, 0.8), (0.8, 1.2), (1.2, 1.2), (0.8, 0.8)):
        t0 = time.perf_counter()
        r = recovery(ua_f, c_f, quick)
        print(f"\ntrue UA ×{ua_f}, C ×{c_f} of the configured ({PLANNER['name']} planner, "
              f"{r['eval_days']:.0f} days Feb-Mar 2023, {time.perf_counter() - t0:.0f} s):")
        print(f"  UA W/K  configured {r['ua_cfg']:.1f}  true {r['ua_true']:.1f}  fitted {r['ua_fit']:.1f};  "
              f"C kWh/K configured {r['c_cfg']:.2f}  true {r['c_true']:.2f}  fitted {r['c_fit']:.2f};  "
              f"fit RMSE {r['rmse_c']:.3f} K")
        for k in ("true", "wrong", "fitted", "always NORMAL"):
            print(f"  plan with {k + ' model':<20} cost {r['cost_' + k]:8.2f} EUR   below comfort min "
                  f"{r['kh_below_' + k]:6.2f} K·h")
        lost = r["lost_eur"]
        if lost > 0:
            lost_sum += lost
            recovered_sum += r["cost_wrong"] - r["cost_fitted"]
            print(f"  savings lost to the mismatch {lost:.2f} EUR; recovered by the fit "
                  f"{r['recovered'] * 100:.0f} % (target >= 80 %)")
        else:
            print(f"  the wrong model did not cost more ({lost:+.2f} EUR): nothing to recover; the fitted model's "
                  f"cost is {r['cost_fitted'] - r['cost_true']:+.2f} EUR from the true model's")
    if lost_sum > 0:
        print(f"\nover the scenarios with a loss: {lost_sum:.2f} EUR lost, {recovered_sum:.2f} EUR recovered "
              f"({recovered_sum / lost_sum * 100:.0f} %)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
