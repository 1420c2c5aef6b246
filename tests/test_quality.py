"""The code itself: ruff's lint and mypy's types (strict on core) are part of the test suite.

mypy found a real bug here once (an attribute shadowing a method of the web's StatusSource), so it
runs with the tests rather than only when someone remembers to.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run_tool(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    exe = BIN / name
    if not exe.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing on CI: install the dev extra")
        pytest.skip(f"{name} is not installed")
    return subprocess.run([str(exe), *args], cwd=REPO, capture_output=True, text=True, timeout=300)


def test_ruff_finds_nothing():
    r = run_tool("ruff", "check", "atsd", "tests")
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_finds_nothing():
    r = run_tool("mypy", "atsd")
    assert r.returncode == 0, r.stdout + r.stderr
