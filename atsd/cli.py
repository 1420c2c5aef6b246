"""The ``atsd`` command: run the daemon, plan, simulate, inspect and drive the heat pump.

Each subcommand parses its arguments here and calls the same core code the daemon uses. Heavy
modules are imported inside the command that needs them, so ``atsd status`` starts fast on a Pi.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from atsd import __version__
from atsd.config import DEFAULT_PATH, EX_CONFIG, Config, ConfigError, load

EX_OK = 0
EX_FAIL = 1
EX_USAGE = 2
EX_UNAVAILABLE = 69  # a device or the daemon cannot be reached
EX_TEMPFAIL = 75

Command = Callable[[argparse.Namespace], int]
_COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Command, str]] = {}


def command(name: str, help_text: str) -> Callable[[Callable[[argparse.ArgumentParser], None]],
                                                   Callable[[Command], Command]]:
    """Register a subcommand: ``@command(name)(add_args)(run)``; other modules add their own."""

    def with_args(add_args: Callable[[argparse.ArgumentParser], None]) -> Callable[[Command], Command]:
        def with_run(run: Command) -> Command:
            _COMMANDS[name] = (add_args, run, help_text)
            return run

        return with_run

    return with_args


def add_config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=None, help=f"config file (default {DEFAULT_PATH})")


def load_config(args: argparse.Namespace, *, demo_ok: bool = False) -> Config:
    """The config named by ``--config``; with ``--demo`` (or none at the default path) the defaults."""
    path = getattr(args, "config", None)
    if getattr(args, "demo", False) and path is None:
        return Config()
    if path is None and demo_ok and not DEFAULT_PATH.exists():
        args.demo = True
        return Config()
    return load(path)


def parse_start(text: str | None) -> datetime | None:
    if text is None:
        return None
    from atsd.core.timegrid import parse_utc

    return parse_utc(text)


# ---------------------------------------------------------------------------------------------


def _check_config_args(p: argparse.ArgumentParser) -> None:
    add_config_arg(p)
    p.add_argument("--print", action="store_true", help="print the parsed config (secrets as ***)")


@command("check-config", "validate the config file: OK and exit 0, or every error and exit 78")(_check_config_args)
def cmd_check_config(args: argparse.Namespace) -> int:
    cfg = load(args.config)
    warnings = config_warnings(cfg)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    if args.print:
        print(json.dumps(cfg.redacted(), indent=2, default=str))
    print(f"OK: {cfg.path}")
    return EX_OK


def config_warnings(cfg: Config) -> list[str]:
    """Problems that are legal but worth a word (hardware adapters add theirs through this hook)."""
    out: list[str] = []
    try:
        from atsd.devices import registry

        out.extend(registry.config_warnings(cfg))
    except (ImportError, AttributeError):
        pass
    return out


def _plan_args(p: argparse.ArgumentParser) -> None:
    add_config_arg(p)
    p.add_argument("--demo", action="store_true", help="built-in demo house and real demo prices/weather")
    p.add_argument("--hours", type=int, default=None, help="horizon in hours (default from config, 48)")
    p.add_argument("--start", default=None, help="plan start, ISO-8601 (default: now; demo: its first day)")
    p.add_argument("--indoor", type=float, default=None, help="indoor temperature now (default: comfort target)")
    p.add_argument("--planner", default=None, help="optimal | greedy | thermostat | cheapest-hours")
    p.add_argument("--json", action="store_true", help="print the plan document as JSON")


@command("plan", "print the plan for the next hours")(_plan_args)
def cmd_plan(args: argparse.Namespace) -> int:
    cfg = load_config(args, demo_ok=True)
    from atsd.planning import build_plan

    hours = args.hours or cfg.planner.horizon_hours
    if not 1 <= hours <= 96:
        print(f"atsd plan: --hours must be within 1..96 (got {hours})", file=sys.stderr)
        return EX_USAGE
    start = parse_start(args.start)
    plan, label = build_plan(cfg, demo=bool(args.demo), start=start, hours=hours, indoor_c=args.indoor,
                             planner=args.planner)
    if args.json:
        doc = plan.as_json()
        if label:
            doc["data_note"] = label
        print(json.dumps(doc, indent=1))
    else:
        from atsd.render import plan_table

        print(plan_table(plan, cfg.device.tz, label))
    return EX_OK


def build_parser() -> argparse.ArgumentParser:
    _load_plugins()
    p = argparse.ArgumentParser(prog="atsd", description="Heat-pump optimizer for a Nordic home.")
    p.add_argument("--version", action="version", version=f"atsd {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name, (add_args, _run, help_text) in _COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        add_args(sp)
    return p


# Light modules (argparse only at import time) that register the commands of each subsystem.
_PLUGINS = ("atsd.sources.cli", "atsd.devices.cli", "atsd.simulate_cli", "atsd.daemon_cli",
            "atsd.learning_cli", "atsd.boptest_cli", "atsd.fleet.cli")


def _load_plugins() -> None:
    """Commands that live with their subsystem register themselves on import."""
    import importlib

    for mod in _PLUGINS:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name is None or not mod.startswith(exc.name):
                raise


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return EX_USAGE
    _add, run, _help = _COMMANDS[args.command]
    try:
        return run(args)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return EX_CONFIG
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EX_OK


__all__ = ["EX_CONFIG", "EX_FAIL", "EX_OK", "EX_UNAVAILABLE", "UTC", "command", "main", "timedelta"]
