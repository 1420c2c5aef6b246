"""systemd integration: sd_notify (READY, WATCHDOG, STATUS, STOPPING) and journald logging.

Both work with or without the optional ``systemd-python`` (Debian's ``python3-systemd``): notify uses
``systemd.daemon.notify`` when it is importable and otherwise writes the datagram to
``$NOTIFY_SOCKET`` itself (a path, or ``@name`` in the abstract namespace); logging goes to the
journal with the fields DEVICE_ID and MODE through ``systemd.journal.JournalHandler`` when the
library is there and stderr is the journal, and otherwise as plain lines on stderr. Outside systemd
every notify call is a cheap no-op that returns False.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Callable, Mapping
from typing import IO

log = logging.getLogger(__name__)

SYSLOG_IDENTIFIER = "atsd"
_PLAIN_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s (device %(device_id)s, mode %(mode)s)"
_JOURNAL_STREAM_FORMAT = "<%(syslog_priority)d>%(name)s: %(message)s (device %(device_id)s, mode %(mode)s)"
# Noisy at INFO (APScheduler logs every job run); they keep WARNING and up.
_QUIET_LOGGERS = ("apscheduler", "aiohttp.access", "pymodbus")

_warned_send_failure = False


# ------------------------------------------------------------------------------------------------
# sd_notify
# ------------------------------------------------------------------------------------------------


def _library_notify() -> Callable[[str], bool] | None:
    """``systemd.daemon.notify`` when systemd-python is installed, else None."""
    try:
        from systemd import daemon  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    fn: Callable[[str], bool] = daemon.notify
    return fn


def notify(*assignments: str, env: Mapping[str, str] | None = None) -> bool:
    """Send ``VAR=value`` assignments to the service manager in one datagram.

    Returns True when sent, False when not running under systemd (no ``NOTIFY_SOCKET``) or the send
    failed (logged once). ``env`` is for tests; by default the process environment is used, and then
    systemd-python does the sending when installed.
    """
    message = "\n".join(assignments)
    if env is None:
        lib = _library_notify()
        if lib is not None:
            return bool(lib(message))
        env = os.environ
    address = env.get("NOTIFY_SOCKET")
    if not address:
        return False
    return _send(message.encode(), address)


def _send(data: bytes, address: str) -> bool:
    global _warned_send_failure
    if address.startswith("@"):
        target = "\0" + address[1:]  # abstract namespace
    elif address.startswith("/"):
        target = address
    else:
        if not _warned_send_failure:
            _warned_send_failure = True
            log.warning("NOTIFY_SOCKET=%s is not a path or an abstract socket; install python3-systemd "
                        "for other kinds. systemd will not hear READY or WATCHDOG.", address)
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.setblocking(False)  # never hold up the event loop that feeds the watchdog
            sock.sendto(data, target)
    except OSError as exc:
        if not _warned_send_failure:
            _warned_send_failure = True
            log.warning("Cannot notify systemd on %s: %s. If this repeats the watchdog will restart atsd.",
                        address, exc)
        return False
    return True


def _one_line(text: str) -> str:
    return " ".join(text.split())


def ready(status: str | None = None) -> bool:
    """READY=1: start-up is complete (for ``Type=notify``), with an optional STATUS line."""
    return notify("READY=1", *([f"STATUS={_one_line(status)}"] if status else []))


def watchdog() -> bool:
    """WATCHDOG=1: the control loop is alive. Send every :func:`watchdog_interval_s` seconds."""
    return notify("WATCHDOG=1")


def status(text: str) -> bool:
    """STATUS=: one line shown by ``systemctl status atsd``, e.g. the current mode and why."""
    return notify(f"STATUS={_one_line(text)}")


def stopping(status: str | None = None) -> bool:
    """STOPPING=1: shutdown has begun (actuators to NORMAL, history flush)."""
    return notify("STOPPING=1", *([f"STATUS={_one_line(status)}"] if status else []))


def watchdog_interval_s(env: Mapping[str, str] | None = None, pid: int | None = None) -> float | None:
    """How often to send WATCHDOG=1: half of the unit's ``WatchdogSec``, or None when none is armed.

    Reads ``WATCHDOG_USEC`` and ``WATCHDOG_PID`` (the watchdog is for that process only, not for a
    child that inherited the environment).
    """
    env = os.environ if env is None else env
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    owner = env.get("WATCHDOG_PID")
    if owner:
        try:
            if int(owner) != (os.getpid() if pid is None else pid):
                return None
        except ValueError:
            return None
    return usec / 2e6


# ------------------------------------------------------------------------------------------------
# Logging
# ------------------------------------------------------------------------------------------------


class LogContext(logging.Filter):
    """Adds the device id and the current mode to every record passing a handler.

    As ``device_id``/``mode`` for formats and as ``DEVICE_ID``/``MODE``, which JournalHandler turns
    into journal fields (``journalctl -u atsd MODE=OFF``). The daemon sets :attr:`mode` when the mode
    changes; a record that carries its own (``extra={"mode": ...}``) keeps it.
    """

    def __init__(self, device_id: str, mode: str = "NORMAL") -> None:
        super().__init__()
        self.device_id = device_id
        self.mode = mode

    def filter(self, record: logging.LogRecord) -> bool:
        fields = vars(record)
        device_id = fields.setdefault("device_id", self.device_id)
        mode = fields.setdefault("mode", self.mode)
        fields["DEVICE_ID"] = str(device_id)
        fields["MODE"] = str(mode)
        fields["syslog_priority"] = _syslog_priority(record.levelno)
        return True


def _syslog_priority(levelno: int) -> int:
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno >= logging.INFO:
        return 6
    return 7


def stderr_is_journal(stream: IO[str] | None = None, env: Mapping[str, str] | None = None) -> bool:
    """True when ``stream`` (stderr) is connected to journald: ``$JOURNAL_STREAM`` names its inode."""
    stream = sys.stderr if stream is None else stream
    env = os.environ if env is None else env
    expected = env.get("JOURNAL_STREAM")
    if not expected:
        return False
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return expected == f"{st.st_dev}:{st.st_ino}"


def _journal_handler() -> logging.Handler | None:
    try:
        from systemd import journal  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    handler: logging.Handler = journal.JournalHandler(SYSLOG_IDENTIFIER=SYSLOG_IDENTIFIER)
    return handler


def setup_logging(level: str | int = "INFO", *, device_id: str, mode: str = "NORMAL",
                  journal: bool | None = None, stream: IO[str] | None = None) -> LogContext:
    """Configure the root logger once for the daemon; returns the context whose mode to update.

    ``journal=None`` chooses: the native journal when systemd-python is installed and stderr is the
    journal (running as a service); otherwise readable lines on ``stream`` (stderr), with a syslog
    priority prefix instead of a timestamp when journald reads them. Calling it again replaces the
    handler it installed before.
    """
    stream = sys.stderr if stream is None else stream
    ctx = LogContext(device_id, mode)
    handler: logging.Handler | None = None
    if journal is None:
        journal = stderr_is_journal(stream)
    if journal:
        handler = _journal_handler()
        if handler is not None:
            handler.setFormatter(logging.Formatter("%(message)s"))  # LOGGER etc. are fields
    if handler is None:
        handler = logging.StreamHandler(stream)
        fmt = _JOURNAL_STREAM_FORMAT if journal else _PLAIN_FORMAT
        handler.setFormatter(logging.Formatter(fmt, datefmt="%Y-%m-%d %H:%M:%S"))
    handler.addFilter(ctx)
    handler._atsd = True  # type: ignore[attr-defined]

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_atsd", False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    numeric = logging.getLevelName(level) if isinstance(level, str) else level
    root.setLevel(numeric)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(int(numeric), logging.WARNING))
    return ctx


__all__: list[str] = ["LogContext", "notify", "ready", "setup_logging", "status", "stderr_is_journal",
                      "stopping", "watchdog", "watchdog_interval_s"]
