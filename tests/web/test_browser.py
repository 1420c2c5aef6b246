"""A real browser loads the status page served with demo data: the chart and the current mode render.

Needs Debian's ``chromium`` (``.ci/run`` installs it). Skipped on a developer machine without it,
never in CI. Screenshots (phone size, light and dark) go to ``out/screenshots/`` or
``$ATSD_SCREENSHOT_DIR``.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from atsd.web import DemoStatusSource, start
from atsd.web.app import bound_port
from tests.web.conftest import NOW, make_cfg

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = Path(os.environ.get("ATSD_SCREENSHOT_DIR") or Path(__file__).resolve().parents[2] / "out" / "screenshots")

pytestmark = pytest.mark.browser


@pytest.fixture
def chromium() -> str:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI (.ci/run installs Debian's chromium)")
        pytest.skip("chromium is not installed")
    return CHROMIUM


@pytest.fixture
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for name in ("status-light.png", "status-dark.png"):
        (SHOTS / name).unlink(missing_ok=True)
    return SHOTS


@pytest.fixture
async def page_url() -> AsyncIterator[str]:
    cfg = make_cfg()
    runner = await start(cfg, DemoStatusSource(cfg, NOW), bind="127.0.0.1", port=0)  # as the daemon serves it
    yield f"http://127.0.0.1:{bound_port(runner)}/"
    await runner.cleanup()


async def headless(chromium: str, profile: Path, url: str, *extra: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
        f"--user-data-dir={profile}", "--virtual-time-budget=5000", *extra, url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    return out.decode(errors="replace")


async def test_page_renders_the_chart_and_current_mode_in_a_real_browser(chromium: str, page_url: str,
                                                                         tmp_path: Path, shots: Path) -> None:
    source = DemoStatusSource(make_cfg(), NOW)
    mode = source.snapshot()["mode"].value
    dom = await headless(chromium, tmp_path / "profile", page_url, "--dump-dom")
    assert re.search(rf'<span id="mode"[^>]*>{mode}</span>', dom), dom[:2000]
    chart = re.search(r'<svg id="chart"[^>]*data-slots="(\d+)"[^>]*>(.*?)</svg>', dom, re.S)
    assert chart, "the chart did not render"
    assert int(chart.group(1)) == 12 * 4 + 48 * 4  # 12 h of history and the 48-hour plan
    svg = chart.group(2)
    assert svg.count('class="price') >= 200 and 'class="pred"' in svg and 'class="meas"' in svg
    assert 'class="band"' in svg and "mode-band m-" in svg
    assert "loading…" not in dom and "updated 12:00" in dom  # 10:00Z is noon in Helsinki
    assert dom.count('<li><time>') >= 3  # recent decisions, each with its reason

    for name, extra in (("status-light.png", ()), ("status-dark.png", ("--force-dark-mode",
                                                                     "--blink-settings=preferredColorScheme=0"))):
        shot = shots / name
        await headless(chromium, tmp_path / f"profile-{name}", page_url, f"--screenshot={shot}",
                       "--window-size=412,915", *extra)
        assert (await asyncio.to_thread(shot.stat)).st_size > 10_000, name


async def test_private_page_asks_for_the_token_and_shows_no_house_data(chromium: str, tmp_path: Path) -> None:
    cfg = make_cfg(private=True)
    runner = await start(cfg, DemoStatusSource(cfg, NOW), bind="127.0.0.1", port=0)
    try:
        dom = await headless(chromium, tmp_path / "profile", f"http://127.0.0.1:{bound_port(runner)}/", "--dump-dom")
    finally:
        await runner.cleanup()
    assert '<section id="login" class="card">' in dom  # no longer hidden
    assert 'data-slots=' not in dom and "c/kWh is in the" not in dom
