"""The local status page and JSON API: ``create_app(cfg, source)`` over a :class:`StatusSource`."""

from atsd.web.app import create_app, start
from atsd.web.demo import DemoStatusSource
from atsd.web.source import ProposedSchedule, Snapshot, StatusSource

__all__ = ["DemoStatusSource", "ProposedSchedule", "Snapshot", "StatusSource", "create_app", "start"]
