"""Planners: each turns a :class:`~atsd.core.plan.PlanProblem` into a :class:`~atsd.core.plan.Decision`.

``optimal`` (dynamic programming, the default), ``greedy`` (the original thermal pre-charging
heuristic), and the baselines ``thermostat`` and ``cheapest-hours``. Modules are imported on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from atsd.core.plan import Decision, PlanProblem

PlannerFn = Callable[[PlanProblem], Decision]

_REGISTRY: dict[str, tuple[str, str]] = {
    "greedy": ("atsd.core.planner.greedy", "plan"),
    "optimal": ("atsd.core.planner.optimal", "plan"),
    "thermostat": ("atsd.core.planner.baselines", "thermostat"),
    "cheapest-hours": ("atsd.core.planner.baselines", "cheapest_hours"),
}


def available() -> list[str]:
    out = []
    for name, (mod, _) in _REGISTRY.items():
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError:
            continue
        out.append(name)
    return out


def get(name: str) -> PlannerFn:
    try:
        mod, attr = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown planner {name!r}; expected one of {', '.join(_REGISTRY)}") from None
    fn: PlannerFn = getattr(importlib.import_module(mod), attr)
    return fn
