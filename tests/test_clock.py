"""Tests for atsd.clock: the virtual clock's ordering, the accelerated scale, and clock sanity."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from atsd.clock import (
    MAXERROR_LIMIT_US,
    STA_UNSYNC,
    TIME_ERROR,
    AcceleratedClock,
    Clock,
    RealClock,
    Timex,
    VirtualClock,
    clock_synchronized,
    read_adjtimex,
)

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def test_every_clock_satisfies_the_protocol():
    assert isinstance(RealClock(), Clock)
    assert isinstance(AcceleratedClock(60), Clock)
    assert isinstance(VirtualClock(T0), Clock)


def test_real_clock_is_aware_utc():
    now = RealClock().now()
    assert now.tzinfo is not None
    assert now.utcoffset() == timedelta(0)


async def test_real_clock_sleep_until_past_returns_at_once():
    clock = RealClock()
    await clock.sleep_until(clock.now() - timedelta(hours=1))
    await clock.sleep(0)


def test_accelerated_clock_scales_real_elapsed_time():
    real = [100.0]
    clock = AcceleratedClock(60, T0, real_monotonic=lambda: real[0])
    assert clock.now() == T0
    real[0] += 60.0  # a real minute
    assert clock.now() == T0 + timedelta(hours=1)
    assert clock.monotonic() == pytest.approx(3600.0)


def test_accelerated_clock_refuses_non_positive_speed():
    with pytest.raises(ValueError, match="speed must be > 0"):
        AcceleratedClock(0)


async def test_accelerated_clock_sleep_until_reaches_the_target():
    clock = AcceleratedClock(3600.0 * 100, T0)  # an hour takes 10 ms
    target = clock.now() + timedelta(minutes=30)
    await clock.sleep_until(target)
    assert clock.now() >= target
    await clock.sleep(60)  # a virtual minute: 0.17 ms


def test_virtual_clock_refuses_naive_start():
    with pytest.raises(ValueError, match="naive"):
        VirtualClock(datetime(2026, 1, 1))


async def test_virtual_sleepers_wake_in_time_order_at_their_time():
    clock = VirtualClock(T0)
    woke: list[tuple[str, datetime]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.now()))

    tasks = [asyncio.create_task(sleeper(n, s)) for n, s in (("c", 90), ("a", 30), ("b", 60))]
    await asyncio.sleep(0)
    assert clock.sleepers == 3
    await clock.advance(45)
    assert woke == [("a", T0 + timedelta(seconds=30))]
    assert clock.now() == T0 + timedelta(seconds=45)
    await clock.advance(100)
    assert [n for n, _ in woke] == ["a", "b", "c"]
    assert woke[2][1] == T0 + timedelta(seconds=90)
    await asyncio.gather(*tasks)


async def test_virtual_advance_runs_a_periodic_loop_once_per_period():
    clock = VirtualClock(T0)
    ticks: list[datetime] = []

    async def loop() -> None:
        while True:
            ticks.append(clock.now())
            await clock.sleep_until(clock.now() + timedelta(seconds=30))

    task = asyncio.create_task(loop())
    await clock.advance(3600)
    assert len(ticks) == 121  # at 0, 30, ..., 3600
    assert ticks[-1] == T0 + timedelta(hours=1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert clock.sleepers == 0


async def test_virtual_clock_never_moves_backwards():
    clock = VirtualClock(T0)
    await clock.advance_to(T0 - timedelta(hours=1))
    assert clock.now() == T0
    with pytest.raises(ValueError, match="forward"):
        await clock.advance(-1)


async def test_virtual_auto_advance_runs_a_simulated_day_without_sleeping():
    clock = VirtualClock(T0, auto_advance=True)
    ticks = 0

    async def control_loop() -> None:
        nonlocal ticks
        end = T0 + timedelta(days=1)
        while clock.now() < end:
            ticks += 1
            await asyncio.sleep(0)  # some real async work between sleeps
            await clock.sleep(30)

    async def slot_loop() -> list[datetime]:
        seen = []
        for _ in range(96):
            await clock.sleep_until(clock.now() + timedelta(minutes=15))
            seen.append(clock.now())
        return seen

    slots, _ = await asyncio.wait_for(asyncio.gather(slot_loop(), control_loop()), timeout=30)
    assert ticks == 2880
    assert slots[-1] == T0 + timedelta(days=1)
    assert clock.monotonic() == pytest.approx(86400.0)


async def test_virtual_auto_advance_waits_while_a_task_is_runnable():
    clock = VirtualClock(T0, auto_advance=True)
    order: list[str] = []

    async def busy() -> None:
        for _ in range(50):
            await asyncio.sleep(0)
        order.append(f"busy done at {clock.monotonic():.0f}")

    async def sleeper() -> None:
        await clock.sleep(60)
        order.append(f"slept until {clock.monotonic():.0f}")

    await asyncio.gather(sleeper(), busy())
    assert order == ["busy done at 0", "slept until 60"]


def test_synchronized_when_kernel_reports_ok():
    assert clock_synchronized(adjtimex=lambda: Timex(0, 0, 120_000)) is True


def test_unsynchronized_after_boot_without_ntp():
    # The kernel boots with STA_UNSYNC, TIME_ERROR and the maximum error at its 16 s limit.
    tx = Timex(TIME_ERROR, STA_UNSYNC | 0x0001, MAXERROR_LIMIT_US)
    assert clock_synchronized(adjtimex=lambda: tx) is False


def test_unsync_flag_alone_with_small_error_counts_as_synchronized():
    # chrony without rtcsync keeps STA_UNSYNC set while it disciplines the clock.
    assert clock_synchronized(adjtimex=lambda: Timex(TIME_ERROR, STA_UNSYNC, 50_000)) is True


def test_unknown_when_adjtimex_is_unavailable():
    assert clock_synchronized(adjtimex=lambda: None) is None


def test_configured_rtc_that_set_the_clock_counts_as_good(tmp_path: Path):
    (tmp_path / "rtc0").mkdir()
    (tmp_path / "rtc0" / "hctosys").write_text("1\n")
    bad = Timex(TIME_ERROR, STA_UNSYNC, MAXERROR_LIMIT_US)
    assert clock_synchronized(adjtimex=lambda: bad, rtc="rtc0", rtc_sysfs=tmp_path) is True
    assert clock_synchronized(adjtimex=lambda: bad, rtc="rtc1", rtc_sysfs=tmp_path) is False


def test_real_adjtimex_read_gives_a_plausible_answer():
    tx = read_adjtimex()
    if tx is None:
        pytest.skip("adjtimex is not available here")
    assert 0 <= tx.state <= TIME_ERROR
    assert tx.maxerror_us >= 0


async def test_virtual_auto_advance_lets_thread_work_finish_within_the_threshold():
    clock = VirtualClock(T0, auto_advance=True, autojump_threshold_s=0.001)
    seen: list[float] = []

    async def worker() -> None:
        for _ in range(3):
            await asyncio.to_thread(sum, range(10))
            await clock.sleep(30)
            seen.append(clock.monotonic())

    await asyncio.wait_for(worker(), timeout=30)
    assert seen == [30.0, 60.0, 90.0]
