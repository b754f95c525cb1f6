"""``keepalive run`` as a person starts it in a terminal: asked for the URL once, remembered,
stopped by Ctrl+C or SIGTERM, and a second daemon for the same job refused. Real processes, a
real headless Chromium, the Colab simulator. (Config layers, status and doctor: test_keepalive_cli.py.)
"""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import threading

import pytest

from conftest import chromium_available, wait_for
from keepalive.journal import Journal

CONFIG = """
[job]
name = "castle"
drive_folder = "{drive}"
[daemon]
poll_seconds = 0.3
[notify]
backend = "record"
[browser]
headless = true
[supervisor]
grace_seconds = 2.0
dead_after = 2
"""


def keepalive_env(home, origin=None):
    env = dict(os.environ, KEEPALIVE_HOME=str(home))
    env.pop("KEEPALIVE_CONFIG", None)
    if origin:
        env["KEEPALIVE_COLAB_ORIGIN"] = origin
    return env


def keepalive(*args, home, origin=None):
    return subprocess.run([sys.executable, "-m", "keepalive", *args], env=keepalive_env(home, origin),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)


class Terminal:
    """``keepalive`` started in a pseudo-terminal, as from a shell; its output collected."""

    def __init__(self, *args, home, origin):
        master, slave = pty.openpty()
        self.master = master
        self.proc = subprocess.Popen([sys.executable, "-m", "keepalive", *args], env=keepalive_env(home, origin),
                                     stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
        os.close(slave)
        self.chunks: list[bytes] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        while True:
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            if not data:
                return
            self.chunks.append(data)

    @property
    def text(self) -> str:
        return b"".join(self.chunks).decode(errors="replace")

    def type(self, line: str):
        os.write(self.master, line.encode() + b"\r")

    def stop(self, signum) -> int:
        self.proc.send_signal(signum)
        code = self.proc.wait(60)
        os.close(self.master)
        return code


def events(home, job="castle"):
    path = home / "state" / job / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def profile_browsers(home) -> list[str]:
    """Command lines of browsers running on this test's profile."""
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in ps.splitlines() if f"--user-data-dir={home}" in line]


def test_without_a_url_and_without_a_terminal_it_says_how_to_pass_one(tmp_path):
    proc = keepalive("run", home=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "keepalive run https://colab.research.google.com/drive/" in proc.stderr


def test_a_url_typed_at_the_prompt_is_checked_in_one_line(tmp_path):
    term = Terminal("run", home=tmp_path, origin="http://127.0.0.1:9")
    assert wait_for(lambda: "Paste the Colab notebook URL" in term.text)
    term.type("https://example.com/notebook")
    assert term.proc.wait(60) == 2
    term.reader.join(10)
    assert "is not a Colab notebook URL: paste one like http://127.0.0.1:9/drive/" in term.text
    assert not (tmp_path / "config" / "config.toml").exists()


@pytest.mark.browser
@pytest.mark.skipif(not chromium_available(), reason="needs chromium and chromedriver")
def test_asked_once_remembered_stopped_by_signals_and_never_two_at_once(tmp_path, sleeper_sim):
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    (home / "config" / "config.toml").write_text(CONFIG.format(drive=tmp_path / "drive"))
    (tmp_path / "drive").mkdir()
    origin = sleeper_sim.origin

    first = Terminal("run", home=home, origin=origin)
    assert wait_for(lambda: "Paste the Colab notebook URL" in first.text)
    first.type(sleeper_sim.notebook_url)
    # the job's heartbeat never comes: the daemon reconnects and presses Run all on the simulator
    assert wait_for(lambda: sleeper_sim.state()["run_all_count"] >= 1, timeout=90), first.text[-2000:]
    assert "colab-keepalive — castle" in first.text  # the live view, in a terminal

    second = keepalive("run", home=home, origin=origin)
    assert second.returncode == 2 and second.stderr.count("\n") == 1
    assert f"(pid {first.proc.pid}) already watches this job" in second.stderr

    assert first.stop(signal.SIGTERM) == 130
    stops = [e for e in events(home) if e["event"] == "daemon_stop"]
    assert len(stops) == 1 and stops[0]["reason"] == "signal"
    assert wait_for(lambda: not profile_browsers(home), timeout=30)  # browser closed, as configured
    assert not (home / "state" / "castle" / "daemon.pid").exists()
    freed = Journal(home / "state", "castle")
    freed.lock()  # the lock was let go
    freed.unlock()
    assert f'url = "{sleeper_sim.notebook_url}"' in (home / "config" / "config.toml").read_text()
    assert "grace_seconds = 2.0" in (home / "config" / "config.toml").read_text()

    status = json.loads(keepalive("status", "--json", home=home, origin=origin).stdout)
    # the first start of a job that never ran is not a restart
    assert status["heartbeat"] == "missing" and status["restarts"] == 0 and status["last_action"]

    again = Terminal("run", home=home, origin=origin)  # no URL given: the remembered one, no question
    assert wait_for(lambda: len([e for e in events(home) if e["event"] == "daemon_start"]) == 2)
    assert again.stop(signal.SIGINT) == 130
    assert "Paste the Colab notebook URL" not in again.text
    assert [e["url"] for e in events(home) if e["event"] == "daemon_start"] == [sleeper_sim.notebook_url] * 2
