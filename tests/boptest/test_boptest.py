"""BOPTEST as a plant, against the fake BOPTEST server of ``fake_server.py`` (both API generations)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable

import pytest

from atsd.boptest import Api, BoptestClient, BoptestError
from atsd.boptest.bench import BenchOptions, bench_config, run, run_atsd, table
from atsd.boptest.cases import BESTEST_HYDRONIC_HEAT_PUMP as CASE
from atsd.boptest.cases import KELVIN
from atsd.boptest.plant import Plant, PlantActuator, PlantForecast, PlantSensor, ScenarioEnded, SimClock
from atsd.cli import EX_OK, EX_UNAVAILABLE, main
from atsd.core.forecast import PRICE, TEMP
from atsd.core.modes import Mode
from tests.conftest import free_port

SHORT = {"warmup_days": 3.0, "length_days": 1.0}


async def in_test(url: str, call: Callable[[BoptestClient], Awaitable[object]]) -> None:
    """Select a test, make one call inside it, and leave (which stops the test)."""
    async with BoptestClient(url) as c:
        await c.select(CASE.name)
        await call(c)


async def test_client_speaks_the_service_api_with_test_ids(boptest_server) -> None:
    url, fake = await boptest_server(**SHORT)
    async with BoptestClient(url) as c:
        testid = await c.select(CASE.name)
        assert testid and c.api is Api.SERVICE
        await c.set_step(900)
        sc = await c.scenario(electricity_price="dynamic", time_period="peak_heat_day")
        assert sc["electricity_price"] == "dynamic" and "reaTZon_y" in sc["time_period"]
        assert "oveTSet_u" in await c.inputs() and "reaTZon_y" in await c.measurements()
        fc = await c.forecast(["LowerSetp[1]", "TDryBul"], 3600, 900)
        assert len(fc["time"]) == 5 and fc["time"][0] == sc["time_period"]["time"]
        y = await c.advance({})
        assert y["time"] == sc["time_period"]["time"] + 900
        assert set(await c.kpi()) >= {"cost_tot", "tdis_tot", "ener_tot", "emis_tot"}
        assert fake.running == [testid]
    assert fake.running == [] and fake.stopped == [testid]


async def test_client_speaks_the_single_test_case_api(boptest_server) -> None:
    url, _fake = await boptest_server(api="single", **SHORT)
    async with BoptestClient(url) as c:
        assert await c.select(CASE.name) is None
        assert c.api is Api.SINGLE and c.testid is None
        await c.scenario(electricity_price="constant", time_period="typical_heat_day")
        y = await c.advance({"oveHeaPumY_u": 0.0, "oveHeaPumY_activate": 1})
        assert y["reaPHeaPum_y"] == 0.0


async def test_single_api_server_for_another_test_case_is_refused(boptest_server) -> None:
    url, _fake = await boptest_server(api="single", **SHORT)
    async with BoptestClient(url) as c:
        with pytest.raises(BoptestError, match="runs 'bestest_hydronic_heat_pump'"):
            await c.select("bestest_air")


async def test_unknown_input_is_a_400_and_the_test_is_stopped(boptest_server) -> None:
    url, fake = await boptest_server(**SHORT)
    with pytest.raises(BoptestError) as err:
        await in_test(url, lambda c: c.advance({"oveBogus_u": 1.0}))
    assert err.value.status == 400 and "Unexpected input variable: oveBogus_u" in str(err.value)
    assert "rejected the request" in str(err.value)
    assert fake.running == [] and len(fake.stopped) == 1


async def test_out_of_range_input_is_a_400_on_a_strict_server(boptest_server) -> None:
    url, fake = await boptest_server(strict_range=True, **SHORT)
    with pytest.raises(BoptestError, match="outside its range") as err:
        await in_test(url, lambda c: c.advance({"oveTSet_u": 400.0, "oveTSet_activate": 1}))
    assert err.value.status == 400 and fake.running == []


async def test_out_of_range_input_is_clamped_with_a_warning_as_boptest_does(boptest_server) -> None:
    url, _fake = await boptest_server(**SHORT)
    async with BoptestClient(url) as c:
        await c.select(CASE.name)
        y = await c.advance({"oveTSet_u": 400.0, "oveTSet_activate": 1})
        assert y["reaTSetHea_y"] == pytest.approx(308.15)
        assert any("above maximum" in w for w in c.warnings)


async def test_failed_simulation_is_a_500_and_no_test_is_left_running(boptest_server) -> None:
    url, fake = await boptest_server(fail_at_step=5, **SHORT)
    opts = BenchOptions(url)
    with pytest.raises(BoptestError) as err:
        await run_atsd(opts, bench_config(CASE, 900))
    assert err.value.status == 500 and "the simulation failed" in str(err.value) and "CVode" in str(err.value)
    assert fake.running == [] and len(fake.stopped) == 1


async def test_unknown_scenario_is_a_400(boptest_server) -> None:
    url, fake = await boptest_server(**SHORT)
    with pytest.raises(BoptestError, match="time_period is cold_snap"):
        await in_test(url, lambda c: c.scenario(time_period="cold_snap"))
    assert fake.running == []


def test_mode_table_keeps_setpoints_inside_the_comfort_band() -> None:
    lo, hi = KELVIN + 21.0, KELVIN + 24.0
    assert CASE.overwrites(Mode.NORMAL, lo, hi, occupied=True) == {}
    assert CASE.overwrites(Mode.OFF, lo, hi, True) == {"oveHeaPumY_u": 0.0, "oveHeaPumY_activate": 1.0}
    eco = CASE.overwrites(Mode.ECO, lo, hi, True)
    assert eco == {"oveTSet_u": lo, "oveTSet_activate": 1.0}  # 21.2 − 1 K, clamped up to the bound
    boost = CASE.overwrites(Mode.BOOST, lo, KELVIN + 22.5, True)
    assert boost["oveTSet_u"] == pytest.approx(KELVIN + 22.5)  # 21.2 + 2 K, clamped down to the bound
    night = CASE.overwrites(Mode.ECO, KELVIN + 15.0, KELVIN + 30.0, False)
    assert night["oveTSet_u"] == pytest.approx(KELVIN + 19.5)  # baseline 15 + 5.5, less 1 K
    assert CASE.supported == (Mode.OFF, Mode.ECO, Mode.NORMAL, Mode.BOOST)


async def test_plant_seams_forecast_sensor_actuator_and_clock(boptest_server) -> None:
    url, fake = await boptest_server(**SHORT)
    async with BoptestClient(url) as c:
        await c.select(CASE.name)
        await c.set_step(900)
        y0 = (await c.scenario(electricity_price="highly_dynamic", time_period="peak_heat_day"))["time_period"]
        plant = Plant(c, CASE, 900, y0["time"], y0)
        clock = SimClock(plant)
        forecast, band = await PlantForecast(plant, "highly_dynamic").fetch(6 * 3600, 900)
        assert forecast.grid.n == 24 and forecast.grid.start == clock.now()
        from tests.boptest.fake_server import outdoor_c, price_eur_per_kwh

        assert forecast.get(PRICE)[0] == pytest.approx(price_eur_per_kwh("highly_dynamic", y0["time"]) * 1000)
        assert forecast.get(TEMP)[0] == pytest.approx(outdoor_c(y0["time"]))
        assert band.min_c[0] == pytest.approx(21.0) and band.max_c[0] == pytest.approx(24.0)
        zone = await PlantSensor(plant, "zone", "indoor", (CASE.zone_temp,)).read()
        assert zone.unit == "°C" and zone.timestamp == clock.now() and 15 < zone.value < 25
        async with PlantActuator(plant) as act:
            await act.apply(Mode.OFF)
            assert plant.overwrites == {"oveHeaPumY_u": 0.0, "oveHeaPumY_activate": 1.0}
            t0 = clock.monotonic()
            await clock.sleep(1800)  # waiting is advancing: two steps, compressor off
            assert clock.monotonic() == t0 + 1800 and plant.steps == 2
            assert (await PlantSensor(plant, "p", "power", CASE.power).read()).value == 0.0
        assert plant.overwrites == {} and act.current is Mode.NORMAL  # leaving restores NORMAL
        fake.tests[c.testid].end_s = plant.time_s  # type: ignore[index]
        with pytest.raises(ScenarioEnded):
            await clock.sleep(900)


async def test_bench_runs_the_whole_loop_and_reports_kpis(boptest_server) -> None:
    url, fake = await boptest_server(**SHORT)
    t0 = time.perf_counter()
    doc = await run(BenchOptions(url, price="highly_dynamic"))
    wall = time.perf_counter() - t0
    a, b = doc["atsd"], doc["baseline"]
    for k in ("cost_tot", "tdis_tot", "ener_tot", "emis_tot"):
        assert isinstance(a[k], float) and isinstance(b[k], float)
    assert a["steps"] == b["steps"] == 96
    assert a["step_ms_mean"] < 100.0, a
    cal = doc["calibration"]
    assert not cal.get("refused"), cal
    # The plant: UA 160 W/K, C 12 kWh/K, aperture 3 m² (gains come out low: the COP model ignores cycling losses).
    assert 150 < cal["ua_w_per_k"] < 170 and 11 < cal["capacitance_kwh_per_k"] < 13.5 and cal["rmse_c"] < 0.05
    assert 2.5 < cal["solar_aperture_m2"] < 3.5
    assert doc["scenario"]["time_period"] == "peak_heat_day"
    assert fake.running == [] and len(fake.stopped) == 2
    assert "cost_tot" in table(doc)
    print(f"\nfake BOPTEST, 1 day: {json.dumps({'atsd': a, 'baseline': b})} wall {wall:.1f} s")


async def test_bench_command_prints_json_on_the_single_test_case_api(boptest_server, capsys) -> None:
    url, _fake = await boptest_server(api="single", **SHORT)
    rc = await asyncio.to_thread(main, ["bench", "boptest", "--url", url, "--price", "dynamic", "--step", "3600",
                                        "--json"])
    assert rc == EX_OK
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) >= {"atsd", "baseline", "scenario"} and doc["atsd"]["steps"] == 24
    assert doc["scenario"]["electricity_price"] == "dynamic"


def test_bench_command_reports_an_unreachable_server(capsys) -> None:
    rc = main(["bench", "boptest", "--url", f"http://127.0.0.1:{free_port()}"])
    assert rc == EX_UNAVAILABLE
    assert "is http://127.0.0.1" in capsys.readouterr().err


def test_core_knows_nothing_of_boptest() -> None:
    from pathlib import Path

    import atsd.core

    core = Path(atsd.core.__file__).parent
    offenders = [p.name for p in core.rglob("*.py") if "boptest" in p.read_text(encoding="utf-8").lower()]
    assert offenders == []


async def test_select_of_an_unknown_test_case_on_the_service_says_so(boptest_server) -> None:
    url, fake = await boptest_server(**SHORT)
    with pytest.raises(BoptestError, match="no test case 'bestest_air'"):
        await in_test_named(url, "bestest_air")
    assert fake.running == []


async def in_test_named(url: str, name: str) -> None:
    async with BoptestClient(url) as c:
        await c.select(name)


def test_warmup_history_puts_boptest_samples_on_the_control_grid() -> None:
    import numpy as np

    from atsd.boptest.bench import warmup_history

    t = np.concatenate([[0.0, 0.0], np.arange(30.0, 86400.0 + 1, 30.0)])  # a repeated initial sample
    zone = KELVIN + 20.0 + t / 86400.0  # warms 1 K over the day
    power = np.where((t % 1800) < 900, 2000.0, 0.0)  # on in the first half of every half hour
    data = {"time": list(t), CASE.zone_temp: list(zone), CASE.outdoor_temp: list(np.full_like(t, KELVIN)),
            CASE.ghi: list(np.zeros_like(t)), **{p: list(power if p == CASE.heat_pump_power else 0 * t)
                                                  for p in CASE.power}}
    h = warmup_history(CASE, data, 0.0, 86400.0, 900, bench_config(CASE, 900))
    assert h.n == 96 and h.step_s == 900
    assert h.indoor_c[4] == pytest.approx(20.0 + 3600 / 86400, abs=1e-9)
    assert h.heat_w is not None and h.heat_w[1] == 0.0 and h.heat_w[2] > 2000.0  # heat = elec × COP
    assert h.mode_rank is not None and set(h.mode_rank) == {Mode.NORMAL.rank}
