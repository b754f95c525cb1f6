"""``keepalive run --mode cli`` and ``keepalive doctor --mode cli`` as the user runs them, on the fake ``colab``:
a daemon killed mid-job and started again attaches to the job it left, to the uninterrupted result; no token of the
CLI's ever reaches our output or files; bad setups are one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import tomlkit

from cli_stand import IMAGES_ON_VM, CliStand, reference_result
from conftest import wait_for
from colab_side import heartbeat as hb

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the fake colab finds a VM's processes in /proc")
RUN = [sys.executable, "-m", "keepalive", "run", "--mode", "cli", "--images", IMAGES_ON_VM, "--job", "castle",
       "--gpu", "T4"]


def write_config(s: CliStand) -> None:
    path = Path(s.env["KEEPALIVE_HOME"]) / "config" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomlkit.dumps({
        "daemon": {"poll_seconds": 0.3, "keep_awake": False}, "notify": {"backend": "record"},
        "supervisor": {"grace_seconds": 4.0, "dead_after": 2, "recovery_timeout_seconds": 45.0},
        "cli": {"job_args": s.cli.job_args, "consent_wait_seconds": 0.5},
    }), encoding="utf-8")


def start(s: CliStand, *args: str, out: Path) -> subprocess.Popen:
    return subprocess.Popen([*RUN, *args], env=s.env, stdin=subprocess.DEVNULL, stdout=open(out, "ab"),
                            stderr=subprocess.STDOUT)


def kept_text(s: CliStand) -> str:
    """Everything keepalive wrote: its journal, state, the VM log, the heartbeat mirror, its output."""
    root = Path(s.env["KEEPALIVE_HOME"])
    return "".join(p.read_text(errors="replace") for p in root.rglob("*") if p.is_file() and p.suffix != ".zip")


@pytest.fixture
def stand(tmp_path):
    made = CliStand(tmp_path / "stand", images=4)
    write_config(made)
    yield made
    made.close()


def test_a_killed_daemon_started_again_attaches_to_its_job_and_the_result_is_unchanged(stand, tmp_path):
    log = tmp_path / "daemon.out"
    first = start(stand, out=log)
    try:
        assert wait_for(lambda: (b := stand.heartbeat()) is not None and b.phase == hb.COMPUTING
                        and b.chunks_done >= 2, 120), log.read_text()
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    second = start(stand, out=log)
    assert second.wait(timeout=240) == 0, log.read_text()[-3000:]
    assert stand.heartbeat().phase == hb.DONE
    assert stand.fake.allocations() == ["T4"]  # the second daemon found the runtime and the job it left
    assert stand.fake.assignments() == {}  # and gave it back at done
    assert stand.job.result_files() == reference_result(tmp_path / "reference", 4) != {}
    status = subprocess.run([sys.executable, "-m", "keepalive", "status", "--mode", "cli", "--job", "castle", "--json"],
                            env=stand.env, capture_output=True, text=True, timeout=60)
    assert json.loads(status.stdout)["phase"] == "done"
    output = kept_text(stand) + log.read_text()
    tokens = stand.fake.tokens()
    colab_log = (Path(stand.env["HOME"]) / ".config" / "colab-cli" / "colab.log").read_text()
    assert tokens and all(token in colab_log for token in tokens)  # the CLI's own debug log holds them
    assert not [token for token in tokens if token in output] and "Bearer" not in output  # none reach ours


def test_ctrl_c_while_the_release_waits_for_the_login_says_plainly_what_is_still_assigned(stand, tmp_path):
    log = tmp_path / "daemon.out"
    daemon = start(stand, out=log)
    try:
        assert wait_for(lambda: (b := stand.heartbeat()) is not None and b.chunks_done >= 1, 120), log.read_text()
        stand.fake.fault("login_expired", True)  # `colab stop` will need the login (session.py:345)
        assert wait_for(lambda: "Ctrl+C leaves it assigned" in log.read_text(), 240), log.read_text()[-3000:]
        daemon.send_signal(signal.SIGINT)
        assert daemon.wait(timeout=60) == 0  # the job is done
    finally:
        if daemon.poll() is None:
            daemon.kill()
    out = log.read_text()
    assert "may still be assigned and cost quota: stop it with 'colab stop -s keepalive-castle'" in out
    assert len(stand.fake.assignments()) == 1  # and so it is: told, not hidden
    assert "Traceback" not in out


def doctor(s: CliStand, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "keepalive", "doctor", "--mode", "cli", *args], env=s.env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)


def test_doctor_reports_the_version_the_login_and_the_sessions_without_tokens(stand):
    subprocess.run(["colab", "new", "-s", "keepalive-meshroom", "--gpu", "T4"], env=stand.env, check=True,
                   capture_output=True, timeout=60)
    report = doctor(stand)
    assert report.returncode == 0, report.stderr
    assert "version: 0.7.5" in report.stdout and "login: signed in" in report.stdout
    assert "Hardware" not in report.stdout and "T4  <- keepalive's" in report.stdout
    assert not [token for token in stand.fake.tokens() if token in report.stdout + report.stderr]
    stand.fake.fault("login_expired", True)
    report = doctor(stand)
    assert "signed out" in report.stdout and "colab sessions" in report.stdout
    assert "state=" not in report.stdout  # the sign-in URL the CLI printed is not repeated


def test_an_unsupported_cli_version_is_one_line_saying_what_to_install(stand, tmp_path):
    stand.fake.fault("version", "0.6.0")
    result = subprocess.run(RUN, env=stand.env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "0.6.0 is not supported" in result.stderr
    assert "pipx install" in result.stderr and "Traceback" not in result.stderr
    assert doctor(stand).returncode == 1


@pytest.mark.parametrize("change, said", [
    ({"PATH": os.defpath}, "pipx install google-colab-cli"),
    ({}, "--images /content/drive/MyDrive"),
])
def test_a_missing_cli_or_images_folder_is_one_line(stand, change, said):
    env = dict(stand.env, **change)
    command = RUN if change else [a for a in RUN if a != IMAGES_ON_VM and a != "--images"]
    result = subprocess.run(command, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert said in result.stderr and "Traceback" not in result.stderr
