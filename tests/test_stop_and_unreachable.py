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
        '[daemon]\nkeep_awake = false\npoll_seconds = 0.5\n', encoding="utf-8")
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
        out, err = proc.communicate(timeout=60)  # within a minute, as promised
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    first = out.splitlines()[0]
    assert first.startswith("keepalive doctor: Colab cannot be reached (ERR_CONNECTION_REFUSED)")
    assert "Traceback" not in err
