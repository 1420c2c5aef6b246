"""The one injectable clock: real, accelerated (``--speed``) and virtual (tests), plus clock sanity.

Every part of the daemon that asks for the time or waits goes through a :class:`Clock`, so a test can
run a simulated day in milliseconds and ``atsd run --demo --speed 60`` can show an hour a minute, with
the same code that runs on a Pi. Times are aware UTC ``datetime``s; ``monotonic()`` is seconds on the
clock's own scale (virtual seconds for the accelerated and virtual clocks), for dwell timers and
timeouts that must not jump when the wall clock does.

:func:`clock_synchronized` answers whether the system clock can be trusted: a Raspberry Pi has no
real-time clock, and after a power cut without network its time is wrong (fake-hwclock restores a
time that is merely later than the last shutdown). The daemon acts on no price until it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import heapq
import itertools
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple, Protocol, runtime_checkable

from atsd.core.timegrid import ensure_utc

# A wall-clock sleep is cut into steps no longer than this, so that a step of the system clock (NTP
# correcting a wrong boot time by hours) delays a wake-up by at most this much.
_REAL_SLEEP_STEP_S = 30.0


@runtime_checkable
class Clock(Protocol):
    """What the daemon needs from time: now, waiting, and a monotonic counter."""

    def now(self) -> datetime:
        """The current time, aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a counter that never jumps (on this clock's time scale)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...

    async def sleep_until(self, t: datetime) -> None:
        """Wait until ``now() >= t``; returns at once when ``t`` is past."""
        ...


class RealClock:
    """The system clock. ``sleep_until`` follows the wall clock even when NTP steps it."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    async def sleep_until(self, t: datetime) -> None:
        t = ensure_utc(t)
        while True:
            remaining = (t - self.now()).total_seconds()
            if remaining <= 0:
                return
            await asyncio.sleep(min(remaining, _REAL_SLEEP_STEP_S))


class AcceleratedClock:
    """Time running ``speed`` times faster than real time from ``start`` (default: the real now).

    Virtual time is ``start + real elapsed × speed``, measured on the real monotonic clock, so it never
    jumps. ``--speed 60`` shows an hour a minute.
    """

    def __init__(self, speed: float, start: datetime | None = None,
                 real_monotonic: Callable[[], float] = time.monotonic) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0 (got {speed})")
        self.speed = float(speed)
        self.start = ensure_utc(start) if start is not None else datetime.now(UTC)
        self._real_monotonic = real_monotonic
        self._t0 = real_monotonic()

    def monotonic(self) -> float:
        return (self._real_monotonic() - self._t0) * self.speed

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.monotonic())

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)

    async def sleep_until(self, t: datetime) -> None:
        t = ensure_utc(t)
        while True:  # again when float rounding woke it a hair early
            remaining = (t - self.now()).total_seconds()
            if remaining <= 0:
                return
            await asyncio.sleep(remaining / self.speed)


class VirtualClock:
    """Simulated time for tests: nothing sleeps for real; sleepers wake in time order.

    Manual mode: the test moves time with ``await clock.advance(seconds)`` (or ``advance_to``); every
    sleeper whose wake time is reached wakes in order, time standing at its wake time, and runs until it
    waits again before the next one wakes. Auto mode (``auto_advance=True``): whenever every task of the
    loop is waiting, time jumps to the earliest sleeper, so a simulated day runs as fast as the code.
    A task waiting on a thread or real I/O counts as waiting; ``autojump_threshold_s`` (real seconds)
    makes the clock wait that long for such work to come back before it jumps.
    """

    def __init__(self, start: datetime, *, auto_advance: bool = False,
                 autojump_threshold_s: float = 0.0) -> None:
        self._now = ensure_utc(start)
        self._start = self._now
        self.auto_advance = auto_advance
        self.autojump_threshold_s = autojump_threshold_s
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._driver: asyncio.Task[None] | None = None
        self._holds = 0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return (self._now - self._start).total_seconds()

    @property
    def sleepers(self) -> int:
        """Number of tasks waiting on this clock."""
        return sum(1 for _, _, f in self._sleepers if not f.done())

    def next_wakeup(self) -> datetime | None:
        """The earliest time a sleeper waits for, or None."""
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)  # cancelled sleepers
        return self._sleepers[0][0] if self._sleepers else None

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self._now + timedelta(seconds=max(0.0, seconds)))

    async def sleep_until(self, t: datetime) -> None:
        t = ensure_utc(t)
        if t <= self._now:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._sleepers, (t, next(self._seq), fut))
        if self.auto_advance and (self._driver is None or self._driver.done()):
            self._driver = loop.create_task(self._drive(), name="virtual-clock")
        await fut

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, waking every sleeper due on the way, in order."""
        if seconds < 0:
            raise ValueError(f"time only moves forward (got {seconds} s)")
        await self.advance_to(self._now + timedelta(seconds=seconds))

    async def advance_to(self, t: datetime) -> None:
        """Move time forward to ``t`` (a past ``t`` only runs what is due now)."""
        t = ensure_utc(t)
        await _settle()
        while (due := self.next_wakeup()) is not None and due <= t:
            self._wake_due(due)
            await _settle()
        self._now = max(self._now, t)
        await _settle()

    def _wake_due(self, t: datetime) -> None:
        """Set time to ``t`` and wake every sleeper due at it."""
        self._now = max(self._now, t)
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Keep time still while work runs outside the loop (a thread): ``with clock.hold(): ...``."""
        self._holds += 1
        try:
            yield
        finally:
            self._holds -= 1

    async def _drive(self) -> None:
        """Jump to the earliest sleeper whenever the loop is idle; end when nobody sleeps."""
        while True:
            await _settle()
            while self._holds:
                await asyncio.sleep(0.0005)
                await _settle()
            if self.autojump_threshold_s > 0:
                await asyncio.sleep(self.autojump_threshold_s)
                await _settle()
            due = self.next_wakeup()
            if due is None:
                self._driver = None
                return
            if _loop_idle():
                self._wake_due(due)


def _loop_idle() -> bool:
    """True when no other callback is ready to run on the current loop.

    Reads ``_ready``, an implementation detail of the standard event loops (3.11 to 3.14); on a loop
    without it, every yield counts as idle, which only makes the virtual clock advance more eagerly.
    """
    ready = getattr(asyncio.get_running_loop(), "_ready", None)
    return ready is None or len(ready) == 0


async def _settle(max_spins: int = 1000) -> None:
    """Yield until every runnable task has run to its next wait (or ``max_spins`` yields)."""
    for _ in range(max_spins):
        await asyncio.sleep(0)
        if _loop_idle():
            return


# ------------------------------------------------------------------------------------------------
# Clock sanity
# ------------------------------------------------------------------------------------------------

TIME_ERROR = 5  # adjtimex return state: the clock is not synchronised
STA_UNSYNC = 0x0040  # status bit: the kernel considers the clock unsynchronised
# The kernel's NTP_PHASE_LIMIT: maxerror grows 500 ppm a second without updates and the kernel sets
# STA_UNSYNC when it passes 16 s; systemd's timedatectl uses the same bound.
MAXERROR_LIMIT_US = 16_000_000


class Timex(NamedTuple):
    """What ``adjtimex(2)`` reports with ``modes = 0`` (a read, no privilege needed)."""

    state: int
    status: int
    maxerror_us: int


class _TimexStruct(ctypes.Structure):
    # struct timex of <sys/timex.h> (legacy ABI, which the unversioned ``adjtimex`` symbol keeps on
    # 32-bit systems with 64-bit time_t as well). Only modes, maxerror and status are read; the
    # trailing padding covers the reserved ints and then some.
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("tv_sec", ctypes.c_long),
        ("tv_usec", ctypes.c_long),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_byte * 128),
    ]


def read_adjtimex() -> Timex | None:
    """The kernel's clock discipline state, or None where ``adjtimex`` is unavailable or refused.

    Refused means e.g. a seccomp filter: systemd's ``ProtectClock=yes`` blocks ``adjtimex`` even for
    reads, which is why the unit file leaves it off.
    """
    if not hasattr(os, "uname") or os.uname().sysname != "Linux":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    except OSError:
        return None
    fn = getattr(libc, "adjtimex", None) or getattr(libc, "ntp_adjtime", None)
    if fn is None:
        return None
    buf = _TimexStruct()  # zeroed: modes = 0 reads without changing anything
    state = int(fn(ctypes.byref(buf)))
    if state < 0:
        return None
    return Timex(state, int(buf.status), int(buf.maxerror))


def timex_synchronized(tx: Timex) -> bool:
    """Whether an ``adjtimex`` result means the system clock is synchronised.

    Synchronised when the kernel reports neither TIME_ERROR nor STA_UNSYNC, or when its maximum error
    is under 16 s: chrony without ``rtcsync`` keeps STA_UNSYNC set on purpose (so the kernel leaves the
    RTC alone) while the error bound shows it is being disciplined.
    """
    if tx.maxerror_us < MAXERROR_LIMIT_US:
        return True
    return tx.state != TIME_ERROR and not tx.status & STA_UNSYNC


def rtc_set_system_clock(rtc: str, sysfs: Path = Path("/sys/class/rtc")) -> bool:
    """True when the hardware RTC ``rtc`` (e.g. ``rtc0``) exists and set the system clock at boot."""
    try:
        return (sysfs / rtc / "hctosys").read_text(encoding="ascii").strip() == "1"
    except OSError:
        return False


def clock_synchronized(*, adjtimex: Callable[[], Timex | None] = read_adjtimex, rtc: str | None = None,
                       rtc_sysfs: Path = Path("/sys/class/rtc")) -> bool | None:
    """Whether the system clock is known good: True, False, or None when it cannot be told.

    Known good means the kernel's NTP-synchronised state says so (whichever NTP client set it), or a
    configured hardware RTC (``rtc``, e.g. ``"rtc0"``, with a battery) set the clock at boot. None
    means ``adjtimex`` is unavailable (not Linux, or forbidden by a seccomp filter) and no RTC helps;
    the caller decides whether unknown counts as good (``require_clock_sync``). Tests inject
    ``adjtimex`` to return a fixed :class:`Timex`.
    """
    if rtc is not None and rtc_set_system_clock(rtc, rtc_sysfs):
        return True
    tx = adjtimex()
    if tx is None:
        return None
    return timex_synchronized(tx)
