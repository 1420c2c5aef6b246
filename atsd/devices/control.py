"""Who drives the heat pump: the daemon's lock, the supervisor's saved state, and the CLI's two paths.

Only one process drives the heat pump. The daemon holds ``<state_dir>/atsd.lock`` (``fcntl.flock``,
released by the kernel when the process dies, so a crash never leaves a stale lock) for as long as it
runs. ``atsd set-mode`` then asks the daemon for an override over its local API
(:func:`request_override`), which obeys the daemon's dwell and block state. With no daemon, the CLI
takes the lock itself, restores the supervisor state from ``<state_dir>/supervisor.json``, drives the
actuator through the same supervisor, returns it to NORMAL and saves the state (:func:`drive`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import re
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from atsd.config import Config, read_secret
from atsd.core.modes import Mode
from atsd.core.supervisor import Supervisor, SupervisorRules, SupervisorState, Verdict
from atsd.devices.device import DeviceError, utcnow

log = logging.getLogger(__name__)

LOCK_NAME = "atsd.lock"
STATE_NAME = "supervisor.json"


class LockHeldError(Exception):
    """Another process (the daemon, or another ``set-mode``) drives the heat pump."""


class DaemonLock:
    """An exclusive ``flock`` on ``<state_dir>/atsd.lock``; the file holds the owner's pid."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOCK_NAME
        self._file: IO[str] | None = None

    def acquire(self) -> DaemonLock:
        """Take the lock or raise :class:`LockHeldError` at once (never waits)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            f = self.path.open("a+")
        except OSError as exc:
            raise DeviceError(f"cannot open {self.path}: {exc.strerror}; run as the atsd user or fix "
                              "[daemon] state_dir") from exc
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            owner = f.read().strip() or "unknown"
            f.close()
            raise LockHeldError(f"{self.path} is held by pid {owner}") from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        self._file = f
        return self

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> DaemonLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def daemon_running(state_dir: Path) -> bool:
    """Whether some process holds the lock (without taking it for longer than a moment)."""
    path = state_dir / LOCK_NAME
    if not path.exists():
        return False
    try:
        with path.open("r") as f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    except OSError:
        return False
    return False


def load_state(state_dir: Path) -> SupervisorState | None:
    """The saved supervisor state, or None (missing; a corrupt file is set aside and logged)."""
    path = state_dir / STATE_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("Cannot read %s (%s); starting from a fresh supervisor state.", path, exc.strerror)
        return None
    try:
        return SupervisorState.from_json(text)
    except ValueError as exc:
        log.warning("%s is corrupt (%s); set aside as %s.bad, starting fresh.", path, exc, path.name)
        with contextlib.suppress(OSError):
            path.replace(path.with_name(path.name + ".bad"))
        return None


def save_state(state_dir: Path, state: SupervisorState) -> None:
    """Write atomically (temp file + rename) so a power cut never leaves half a file."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / STATE_NAME
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(state.to_json(), encoding="utf-8")
    os.replace(tmp, path)


_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$")


def parse_duration_s(text: str) -> float:
    """``90s``, ``10m``, ``1h30m`` or a bare number of minutes, in seconds."""
    t = text.strip().lower()
    with contextlib.suppress(ValueError):
        return float(t) * 60.0
    m = _DURATION.match(t)
    if not t or m is None or not any(m.groups()):
        raise ValueError(f"duration must look like 90s, 10m or 1h30m (got {text!r})")
    h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    return h * 3600 + mi * 60 + s


# -- the daemon path -----------------------------------------------------------------------------


def override_url(cfg: Config) -> str:
    return f"http://127.0.0.1:{cfg.web.port}/api/override"


def request_override(cfg: Config, mode: Mode, duration_s: float, timeout_s: float = 5.0) -> dict[str, Any]:
    """Ask the running daemon to hold ``mode`` for ``duration_s`` (its supervisor decides).

    ``POST /api/override`` with ``{"mode": "BOOST", "minutes": 10, "reason": "..."}`` and the web
    token as ``Authorization: Bearer``; the daemon answers with JSON (at least ``mode`` and
    ``reason``). Raises :class:`DeviceError` when the daemon cannot be reached or refuses.
    """
    body = json.dumps({"mode": mode.value, "minutes": max(1.0, duration_s / 60.0),
                       "reason": "installer check with atsd set-mode"}).encode()
    req = urllib.request.Request(override_url(cfg), data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    token = read_secret(cfg.web.token, cfg.web.token_file, "ATSD_WEB_TOKEN")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            doc = json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", errors="replace")[:300]
        raise DeviceError(f"the daemon refused the override: HTTP {exc.code} {detail}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DeviceError(f"the daemon holds the lock but its API at {override_url(cfg)} does not answer "
                          f"({exc}); check 'systemctl status atsd'") from exc
    return doc if isinstance(doc, dict) else {"answer": doc}


# -- the direct path -----------------------------------------------------------------------------


@dataclass
class DriveResult:
    verdict: Verdict
    applied: Mode
    returned_to_normal: bool


async def drive(cfg: Config, mode: Mode, duration_s: float, *, clock: Callable[[], datetime] = utcnow,
                sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, recheck_s: float = 30.0,
                say: Callable[[str], None] = print, pin_factory: Any = None) -> DriveResult:
    """Drive the actuator to ``mode`` through the supervisor, hold it, then return to NORMAL.

    The caller holds the lock. The supervisor state is loaded before and saved after every
    decision. Raises :class:`DeviceError` when the actuator cannot be reached.
    """
    from atsd.devices.registry import Devices

    state_dir = cfg.daemon.state_dir
    devices = Devices(cfg, clock=clock, pin_factory=pin_factory)
    if devices.actuator is None:
        raise DeviceError("[actuator] kind = 'none': there is no actuator to drive")
    sup = Supervisor(SupervisorRules.from_config(cfg), cfg.device.tz, load_state(state_dir), devices.supported)

    async def decide(requested: Mode) -> Verdict:
        await devices.read_all()
        indoor = devices.indoor()
        now = clock()
        v = sup.decide(now, requested, None if indoor is None else indoor.value,
                       None if indoor is None else indoor.age_s(now), "set-mode from the command line")
        save_state(state_dir, sup.state)
        return v

    async with devices:
        act = devices.actuator
        verdict = await decide(mode)
        if verdict.mode is not mode:
            say(f"supervisor: {mode} not allowed now: {verdict.reason}")
        await act.apply(verdict.mode)
        say(f"{act.name}: {verdict.mode} applied")
        applied = verdict.mode
        if verdict.mode is not Mode.NORMAL:
            left = duration_s
            while left > 0:
                step = min(recheck_s, left)
                await sleep(step)
                left -= step
                v = await decide(mode)
                if v.mode is not applied:
                    say(f"supervisor: {v.mode} now: {v.reason}")
                    await act.apply(v.mode)
                    applied = v.mode
                    if v.mode is Mode.NORMAL:
                        break
        final = await decide(Mode.NORMAL)
        if applied is not final.mode or act.current is not final.mode:
            await act.apply(final.mode)
            say(f"{act.name}: back to {final.mode}")
    return DriveResult(verdict, verdict.mode, final.mode is Mode.NORMAL)


async def failsafe(cfg: Config, *, pin_factory: Any = None) -> str:
    """Set NORMAL on the configured actuator and release it; returns the actuator's name."""
    from atsd.devices.registry import Links, build_actuator

    act = build_actuator(cfg, Links(cfg, pin_factory=pin_factory))
    if act is None:
        return "none"
    async with act:
        await act.apply(Mode.NORMAL)
    return act.name
