"""Shared fixtures: a real headless Chromium, and the Colab simulator running a test job."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import pytest
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).parent))

# No per-example time limit: on a busy 2-core machine one example can take 500 ms (a timing assertion in disguise).
settings.register_profile("suite", deadline=None)
settings.load_profile("suite")

from keepalive.hands.browser import BrowserConfig, BrowserError, open_browser, quit_browser  # noqa: E402
from keepalive_sim.colab_sim import ColabSimulator  # noqa: E402


def pytest_collection_modifyitems(items):
    """Under pytest-xdist (``--dist loadgroup``), the tests on the shared X display run in one worker."""
    for item in items:
        if "xvfb_display" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("xvfb"))


def chromium_available() -> bool:
    return bool(shutil.which("chromium") or shutil.which("google-chrome")) and bool(shutil.which("chromedriver"))


def wait_for(condition, timeout: float = 60.0) -> bool:
    """Poll ``condition`` until it is true or ``timeout`` seconds passed; say which."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


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
    quit_browser(driver)


@pytest.fixture
def sleeper_sim(tmp_path):
    """A simulator whose notebook job just prints and waits: for page and browser tests."""
    command = [sys.executable, "-c", "import time; print('job started', flush=True); time.sleep(60)"]
    with ColabSimulator(command, workdir=tmp_path / "sim", connect_seconds=0.3) as sim:
        yield sim


@pytest.fixture(scope="session")
def xvfb_display(tmp_path_factory):
    """A private X display (Xvfb) for a real, non-headless browser and real pyautogui input.

    One per session: pyautogui connects to the display when first imported and keeps it.
    """
    import subprocess
    import time

    if not shutil.which("Xvfb"):
        pytest.skip("needs Xvfb (Debian: apt-get install xvfb)")
    for number in range(90, 120):
        if not Path(f"/tmp/.X11-unix/X{number}").exists() and not Path(f"/tmp/.X{number}-lock").exists():
            break
    server = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not Path(f"/tmp/.X11-unix/X{number}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    xauthority = tmp_path_factory.mktemp("x") / "Xauthority"
    xauthority.touch()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DISPLAY", f":{number}")
        env.setenv("XAUTHORITY", str(xauthority))
        env.setenv("XDG_SESSION_TYPE", "x11")
        yield f":{number}"
    server.terminate()
    server.wait()
