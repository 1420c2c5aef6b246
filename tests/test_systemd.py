"""Tests for atsd.systemd: sd_notify over a socket the test owns, the watchdog interval, logging."""

from __future__ import annotations

import io
import logging
import os
import socket
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from atsd import systemd as sd


@pytest.fixture(autouse=True)
def no_systemd_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test the pure-Python path even where systemd-python is installed."""
    monkeypatch.setattr(sd, "_library_notify", lambda: None)
    monkeypatch.setattr(sd, "_journal_handler", lambda: None)
    monkeypatch.setattr(sd, "_warned_send_failure", False)


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield sock
    sock.close()


def received(sock: socket.socket) -> str:
    return sock.recv(4096).decode()


def test_ready_watchdog_status_stopping_arrive_on_notify_socket(notify_socket: socket.socket):
    assert sd.ready("mode NORMAL, first tick done")
    assert received(notify_socket) == "READY=1\nSTATUS=mode NORMAL, first tick done"
    assert sd.watchdog()
    assert received(notify_socket) == "WATCHDOG=1"
    assert sd.status("BOOST: cheapest hour\nof the day")
    assert received(notify_socket) == "STATUS=BOOST: cheapest hour of the day"
    assert sd.stopping()
    assert received(notify_socket) == "STOPPING=1"


def test_abstract_namespace_socket(monkeypatch: pytest.MonkeyPatch):
    name = f"atsd-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert sd.ready()
        assert received(sock) == "READY=1"


def test_notify_without_systemd_is_a_quiet_no_op(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sd.ready() is False
    assert sd.watchdog() is False


def test_notify_to_a_missing_socket_warns_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture):
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone.sock"))
    assert sd.watchdog() is False
    assert sd.watchdog() is False
    assert len([r for r in caplog.records if "Cannot notify systemd" in r.getMessage()]) == 1


def test_notify_uses_systemd_python_when_installed(monkeypatch: pytest.MonkeyPatch):
    sent: list[str] = []
    monkeypatch.setattr(sd, "_library_notify", lambda: lambda msg: sent.append(msg) or True)
    assert sd.ready("up")
    assert sent == ["READY=1\nSTATUS=up"]


def test_library_notify_is_found_in_an_installed_systemd_package(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.undo()  # the real lookup, against a stand-in package
    pkg = types.ModuleType("systemd")
    daemon = types.ModuleType("systemd.daemon")
    daemon.notify = lambda status, unset_environment=False, pid=0, fds=None: status == "READY=1"  # type: ignore[attr-defined]
    pkg.daemon = daemon  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "systemd", pkg)
    monkeypatch.setitem(sys.modules, "systemd.daemon", daemon)
    fn = sd._library_notify()
    assert fn is not None
    assert fn("READY=1")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WATCHDOG_USEC": "120000000"}, 60.0),
        ({"WATCHDOG_USEC": "120000000", "WATCHDOG_PID": "4242"}, 60.0),
        ({"WATCHDOG_USEC": "120000000", "WATCHDOG_PID": "1"}, None),  # another process's watchdog
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval_is_half_of_watchdog_sec(env: dict[str, str], expected: float | None):
    assert sd.watchdog_interval_s(env, pid=4242) == expected


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)


@pytest.mark.usefixtures("restore_root_logger")
def test_plain_log_lines_carry_device_and_mode():
    out = io.StringIO()
    ctx = sd.setup_logging("INFO", device_id="house-1", stream=out, journal=False)
    logging.getLogger("atsd.daemon").info("Switched to %s.", "BOOST")
    ctx.mode = "BOOST"
    logging.getLogger("atsd.daemon").warning("Price source failed.")
    logging.getLogger("atsd.daemon").debug("not shown")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("INFO    atsd.daemon: Switched to BOOST. (device house-1, mode NORMAL)")
    assert lines[1].endswith("WARNING atsd.daemon: Price source failed. (device house-1, mode BOOST)")


@pytest.mark.usefixtures("restore_root_logger")
def test_setup_logging_twice_keeps_one_handler():
    out = io.StringIO()
    sd.setup_logging("INFO", device_id="a", stream=out, journal=False)
    sd.setup_logging("INFO", device_id="b", stream=out, journal=False)
    logging.getLogger("atsd").info("once")
    assert out.getvalue().count("once") == 1
    assert "(device b," in out.getvalue()


@pytest.mark.usefixtures("restore_root_logger")
def test_lines_to_journald_without_systemd_python_carry_a_priority_prefix():
    out = io.StringIO()
    sd.setup_logging("INFO", device_id="h", stream=out, journal=True)  # journal wanted, library absent
    logging.getLogger("atsd.store").error("Cannot write history.")
    assert out.getvalue() == "<3>atsd.store: Cannot write history. (device h, mode NORMAL)\n"


@pytest.mark.usefixtures("restore_root_logger")
def test_journal_handler_gets_device_id_and_mode_fields(monkeypatch: pytest.MonkeyPatch):
    sent: list[dict[str, object]] = []

    class FakeJournalHandler(logging.Handler):
        """Like systemd.journal.JournalHandler: every record attribute becomes a send() field."""

        def emit(self, record: logging.LogRecord) -> None:
            sent.append({"MESSAGE": self.format(record), **record.__dict__})

    monkeypatch.setattr(sd, "_journal_handler", FakeJournalHandler)
    ctx = sd.setup_logging("INFO", device_id="house-7", mode="OFF", journal=True)
    logging.getLogger("atsd.daemon").info("Coasting through the peak.")
    ctx.mode = "NORMAL"
    logging.getLogger("atsd.daemon").info("Peak over.", extra={"mode": "ECO"})
    assert [(m["MESSAGE"], m["DEVICE_ID"], m["MODE"]) for m in sent] == [
        ("Coasting through the peak.", "house-7", "OFF"), ("Peak over.", "house-7", "ECO")]


def test_stderr_is_journal_matches_the_stream_inode(tmp_path: Path):
    with open(tmp_path / "log", "w") as f:
        st = os.fstat(f.fileno())
        assert sd.stderr_is_journal(f, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
        assert not sd.stderr_is_journal(f, {"JOURNAL_STREAM": "1:2"})
        assert not sd.stderr_is_journal(f, {})
    assert not sd.stderr_is_journal(io.StringIO(), {"JOURNAL_STREAM": "1:2"})


def test_a_child_process_notifies_the_socket_named_in_its_environment(notify_socket: socket.socket):
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    code = "from atsd import systemd as sd; sd.ready('up'); sd.watchdog()"
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=30)
    assert received(notify_socket) == "READY=1\nSTATUS=up"
    assert received(notify_socket) == "WATCHDOG=1"
