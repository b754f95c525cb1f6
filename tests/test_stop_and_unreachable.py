"""A real ``keepalive run`` stopped by Ctrl+C or SIGTERM in each state leaves no browser process behind, and
``keepalive doctor`` on an unreachable Colab ends with a sentence and a non-zero code."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import psutil
import pytest

from conftest import chromium_available, wait_for
from keepalive.journal import Journal

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not chromium_available(), reason="needs chromium and chromedriver")]


def closed_port_origin() -> str:
    """An origin on this machine where nothing listens: connections are refused, as with Colab unreachable."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def start_keepalive(tmp_path, origin: str, *args: str) -> subprocess.Popen:
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True, exist_ok=True)
    (tmp_path / "drive").mkdir(exist_ok=True)
    (home / "config" / "config.toml").write_text(
        f'[job]\nname = "demo"\ndrive_folder = "{tmp_path / "drive"}"\n[notify]\nbackend = "record"\n'
        '[daemon]\nkeep_awake = false\npoll_seconds = 0.5\n[browser]\npage_load_seconds = 5.0\n', encoding="utf-8")
    env = dict(os.environ, KEEPALIVE_HOME=str(home), KEEPALIVE_COLAB_ORIGIN=origin)
    return subprocess.Popen([sys.executable, "-m", "keepalive", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def browsers(proc: subprocess.Popen) -> list[psutil.Process]:
    try:
        return [p for p in psutil.Process(proc.pid).children(recursive=True)
                if "chrom" in p.name().lower()]
    except psutil.NoSuchProcess:
        return []


def gone(process: psutil.Process) -> bool:
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def decided(tmp_path, cause: str | None = None, page: str | None = None) -> bool:
    for event in Journal(tmp_path / "home" / "state", "demo").events():
        if event.get("event") == "decision" and (cause is None or event.get("cause") == cause) and (
                page is None or event.get("page") == page):
            return True
    return False


@pytest.mark.parametrize("where, how", [("starting", signal.SIGINT), ("page", signal.SIGINT),
                                        ("offline", signal.SIGINT), ("offline", signal.SIGTERM),
                                        ("page", signal.SIGTERM)])
def test_a_signal_in_any_state_stops_the_daemon_within_seconds_and_leaves_no_browser(tmp_path, sleeper_sim,
                                                                                      where, how):
    origin = closed_port_origin() if where == "offline" else sleeper_sim.origin
    proc = start_keepalive(tmp_path, origin, "run", f"{origin}/drive/demo", "--headless")
    try:
        assert wait_for(lambda: browsers(proc) or proc.poll() is not None, timeout=120), "no browser started"
        if where == "page":
            assert wait_for(lambda: decided(tmp_path, page="disconnected"), timeout=120)
        elif where == "offline":
            assert wait_for(lambda: decided(tmp_path, cause="OFFLINE"), timeout=120)
        started = browsers(proc)
        assert started and proc.poll() is None, proc.stderr.read() if proc.poll() is not None else ""
        proc.send_signal(how)
        code = proc.wait(timeout=60)  # a deadline, not a measure: ending takes seconds
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code in (130, 1, 0), proc.stderr.read()
    assert wait_for(lambda: all(gone(p) for p in started), timeout=20), [p.pid for p in started if not gone(p)]
    assert "Traceback" not in proc.stderr.read()


def test_doctor_on_an_unreachable_colab_says_so_and_fails(tmp_path):
    origin = closed_port_origin()
    proc = start_keepalive(tmp_path, origin, "doctor", f"{origin}/drive/demo", "--headless",
                           "--out", str(tmp_path / "doc"))
    try:
        out, err = proc.communicate(timeout=180)  # a deadline, not a measure: seconds alone, more on a busy machine
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    first = out.splitlines()[0]
    assert first.startswith("keepalive doctor: Colab cannot be reached (ERR_CONNECTION_REFUSED)")
    assert "Traceback" not in err


def test_doctor_on_a_colab_that_never_answers_says_so_within_its_page_load_limit(tmp_path):
    with socket.socket() as silent:  # connections are accepted by the kernel, never answered: an outage
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        origin = f"http://127.0.0.1:{silent.getsockname()[1]}"
        proc = start_keepalive(tmp_path, origin, "doctor", f"{origin}/drive/demo", "--headless",
                               "--out", str(tmp_path / "doc"))
        try:
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 1, err
    assert out.startswith("keepalive doctor: Colab does not answer (the notebook did not load within 5 s)"), (out, err)


def test_a_dead_browser_is_started_again_at_most_once_per_back_off_step(tmp_path, sleeper_sim):
    from types import SimpleNamespace

    from conftest import headless_config
    from keepalive.hands.browser import BrowserError
    from keepalive.hands.selenium import SeleniumHands

    now = [0.0]
    cfg = SimpleNamespace(origin=sleeper_sim.origin, url=sleeper_sim.notebook_url, page={},
                          browser=headless_config(), profile_dir=tmp_path / "profile")
    hands = SeleniumHands(cfg, clock=lambda: now[0], restart_backoff=(10.0, 40.0))
    hands.start()
    try:
        for step, wait in enumerate((10.0, 20.0, 40.0, 40.0)):
            os.killpg(hands.driver.service.process.pid, signal.SIGKILL)  # the browser dies under the daemon
            hands.reopen()
            assert hands.restarts == step + 1 and hands.observe().state.value != "unknown"
            os.killpg(hands.driver.service.process.pid, signal.SIGKILL)
            for _ in range(3):  # however often it is asked before the step has passed: no new browser
                with pytest.raises(BrowserError, match="next start in"):
                    hands.reopen()
            assert hands.restarts == step + 1
            now[0] += wait
    finally:
        hands.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="DISPLAY is how Linux names a screen")
def test_no_display_is_named_and_headless_suggested_before_anything_starts(tmp_path, monkeypatch):
    from keepalive.hands.browser import BrowserConfig, BrowserError, open_browser

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(BrowserError, match="no display .* add --headless"):
        open_browser(BrowserConfig(headless=False), tmp_path / "profile")


def test_a_profile_in_use_names_the_daemon_that_holds_it_then_the_browser_left_over(tmp_path, sleeper_sim):
    from conftest import headless_config
    from keepalive.hands.browser import BrowserError, open_browser

    proc = start_keepalive(tmp_path, sleeper_sim.origin, "run", sleeper_sim.notebook_url, "--headless")
    profile = tmp_path / "home" / "data" / "browser-profile"
    left = []
    try:
        assert wait_for(lambda: decided(tmp_path, page="disconnected"), timeout=120)
        with pytest.raises(BrowserError) as held:
            open_browser(headless_config(), profile)  # a second job's daemon, say: the same profile
        assert f"another keepalive daemon, pid {proc.pid}" in str(held.value)
        left = browsers(proc)
        proc.kill()  # SIGKILL: nothing of keepalive runs to close its browser
        proc.wait()
        with pytest.raises(BrowserError) as leftover:
            open_browser(headless_config(), profile)
        assert "left over from an earlier run" in str(leftover.value) and "kill " in str(leftover.value)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for process in left:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass


CRASH_WITH_A_BROWSER = r"""
import sys
sys.path.insert(0, "tests")
from conftest import headless_config
from keepalive.hands.browser import open_browser
driver = open_browser(headless_config(), sys.argv[1])
print(driver.service.process.pid, flush=True)
sys.stdin.readline()  # the test has listed the browser's processes
raise RuntimeError("a bug, with the browser still open")
"""


def test_a_program_that_dies_of_an_exception_leaves_no_browser(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", CRASH_WITH_A_BROWSER, str(tmp_path / "profile")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    driver = psutil.Process(int(proc.stdout.readline()))
    started = [driver, *driver.children(recursive=True)]
    out, err = proc.communicate("go\n", timeout=120)
    assert proc.returncode == 1 and "RuntimeError: a bug" in err
    assert len(started) > 2 and wait_for(lambda: all(gone(p) for p in started), timeout=20)
