"""``atsd simulate``: arguments only (stdlib at import); the engine is :mod:`atsd.simulate`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from atsd.cli import EX_OK, EX_USAGE, add_config_arg, command, load_config, parse_start

PLANNER_NAMES = ("thermostat", "cheapest-hours", "greedy", "optimal")
# Not in "all": the optimal planner over the whole period with perfect foresight (the modes' ceiling).
EXTRA_NAMES = ("optimal-pf",)


def _args(p: argparse.ArgumentParser) -> None:
    add_config_arg(p)
    p.add_argument("--prices", type=Path, required=True, help="CSV time_utc,price_eur_per_mwh (15 or 60 min)")
    p.add_argument("--weather", type=Path, required=True, help="CSV time_utc,temp_c[,ghi_w_m2]")
    p.add_argument("--start", default=None, help="first day (ISO-8601 UTC; default: start of the data)")
    p.add_argument("--end", default=None, help="end, exclusive (ISO-8601 UTC; default: end of the data)")
    p.add_argument(
        "--planner",
        action="append",
        default=None,
        metavar="NAME",
        help=f"{' | '.join(PLANNER_NAMES + EXTRA_NAMES)} | all (repeatable; default all; optimal-pf is "
        "the optimal planner once over the whole period with perfect foresight: the best the modes allow)",
    )
    p.add_argument("--no-bound", action="store_true", help="skip the perfect-foresight bound")
    p.add_argument(
        "--plant",
        default=None,
        metavar="ua=F,c=F",
        help="a differently parameterised house plays the real one, e.g. ua=1.2,c=0.8",
    )
    p.add_argument(
        "--weather-error-k",
        type=float,
        default=0.0,
        help="weather forecast error (1 sigma, K) at 24 h lead; default 0 (perfect)",
    )
    p.add_argument(
        "--weather-years",
        type=int,
        default=0,
        metavar="N",
        help="move the weather N years forward on the same calendar dates (2023 weather with 2026 prices: 3)",
    )
    p.add_argument("--seed", type=int, default=1, help="seed of the forecast error")
    p.add_argument(
        "--replan",
        choices=("changes", "every"),
        default="changes",
        help="re-plan when an input changed (default) or at every slot",
    )
    p.add_argument(
        "--tolerance-k",
        type=float,
        default=0.05,
        help="re-plan when the indoor temperature leaves the prediction by more (default 0.05 K)",
    )
    p.add_argument(
        "--indoor", type=float, default=None, help="indoor temperature at the start (default: target)"
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument(
        "--plot", type=Path, default=None, metavar="OUT.svg", help="draw price, modes and temperature"
    )


@command("simulate", "replay real prices and weather through the planners, the supervisor and a house")(_args)
def cmd_simulate(args: argparse.Namespace) -> int:
    cfg = load_config(args, demo_ok=True)
    from atsd.csvdata import DataError, read_prices, read_weather
    from atsd.simulate import (
        Plant,
        SimSettings,
        Simulation,
        shift_years,
        sim_inputs,
        summary,
        svg_plot,
        table,
    )

    names: list[str] = []
    for item in args.planner or ["all"]:
        for name in item.split(","):
            name = name.strip()
            if name == "all":
                names.extend(PLANNER_NAMES)
            elif name in PLANNER_NAMES + EXTRA_NAMES:
                names.append(name)
            else:
                print(
                    f"atsd simulate: unknown planner {name!r}; expected {', '.join(PLANNER_NAMES + EXTRA_NAMES)} or all",
                    file=sys.stderr,
                )
                return EX_USAGE
    names = list(dict.fromkeys(names))
    try:
        plant = Plant.parse(args.plant)
        prices = read_prices(args.prices)
        weather = shift_years(read_weather(args.weather), args.weather_years)
        label = ""
        if args.weather_years:
            label = (
                f"prices of {args.prices.name} with the temperatures of {args.weather.name} moved "
                f"{args.weather_years:+d} years onto the same calendar dates"
            )
        inputs = sim_inputs(cfg, prices, weather, parse_start(args.start), parse_start(args.end), label)
    except (DataError, ValueError) as exc:
        print(f"atsd simulate: {exc}", file=sys.stderr)
        return EX_USAGE
    settings = SimSettings(
        plant=plant,
        weather_error_k=args.weather_error_k,
        seed=args.seed,
        replan=args.replan,
        tolerance_k=args.tolerance_k,
        start_c=args.indoor,
    )
    sim = Simulation(cfg, inputs, settings)
    runs = sim.compare(names, with_bound=not args.no_bound)
    if args.json:
        print(json.dumps(summary(sim, runs), indent=1))
    else:
        print(table(sim, runs))
    if args.plot:
        args.plot.write_text(svg_plot(sim, runs), encoding="utf-8")
    return EX_OK
