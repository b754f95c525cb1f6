"""Shared fixtures: a real headless Chromium, and the Colab simulator running a test job."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from keepalive.browser import BrowserConfig, BrowserError, open_browser  # noqa: E402
from keepalive.simulator.colab_sim import ColabSimulator  # noqa: E402


def chromium_available() -> bool:
    return bool(shutil.which("chromium") or shutil.which("google-chrome")) and bool(shutil.which("chromedriver"))


def headless_config() -> BrowserConfig:
    return BrowserConfig(headless=True, extra_args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])


@pytest.fixture
def chromium_driver(tmp_path):
    if not chromium_available():
        pytest.skip("needs chromium and chromedriver (Debian: apt-get install chromium chromium-driver)")
    try:
        driver = open_browser(headless_config(), tmp_path / "profile")
    except BrowserError as exc:
        pytest.skip(str(exc))
    yield driver
    driver.quit()


@pytest.fixture
def sleeper_sim(tmp_path):
    """A simulator whose notebook job just prints and waits: for page and browser tests."""
    command = [sys.executable, "-c", "import time; print('job started', flush=True); time.sleep(60)"]
    with ColabSimulator(command, workdir=tmp_path / "sim", connect_seconds=0.3) as sim:
        yield sim
