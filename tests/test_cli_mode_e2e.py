"""cli mode end to end: the daemon drives the fake ``colab`` (backed by local VMs) through reclaims, refusals,
transport errors, a lost login, Drive consent and its own restart, to ``done`` with the uninterrupted result."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from cli_stand import CliStand, reference_result
from conftest import wait_for
from colab_side import heartbeat as hb

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the fake colab finds a VM's processes in /proc")


@pytest.fixture
def stand(tmp_path):
    made = []

    def make(**options):
        made.append(CliStand(tmp_path / f"stand{len(made)}", **options))
        return made[-1]

    yield make
    for each in made:
        each.close()


def events(daemon, kind: str) -> list[dict]:
    return [e for e in daemon.journal.events() if e.get("event") == kind]


def notes(daemon, what: str) -> list[dict]:
    return [e for e in events(daemon, "notification") if e.get("what") == what]


def when(condition, then, timeout: float = 120.0) -> threading.Thread:
    """Run ``then`` in the background once ``condition`` holds."""
    def watch():
        if wait_for(condition, timeout):
            then()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def computing_with(stand, chunks: int, not_session: str | None = None):
    def check():
        beat = stand.heartbeat()
        return (beat is not None and beat.phase == hb.COMPUTING and beat.chunks_done >= chunks
                and beat.session != not_session)
    return check


IMAGES = 4


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return reference_result(tmp_path_factory.mktemp("reference"), IMAGES)


def test_reclaimed_runtimes_are_replaced_transport_errors_are_not_and_the_result_is_unchanged(stand, uninterrupted):
    s = stand(images=IMAGES, waiter_cell_seconds=2.0)
    daemon = s.daemon()

    def faults():
        first = s.heartbeat().session
        s.fake.fault("transport_errors", 4)  # a bad minute of the proxy: not a dead runtime
        if wait_for(computing_with(s, 2), 60):
            s.fake.reclaim(s.endpoint())
        if wait_for(computing_with(s, 4, first), 120):
            s.fake.reclaim(s.endpoint())

    when(computing_with(s, 1), faults)
    assert daemon.run() == 0
    assert s.heartbeat().phase == hb.DONE
    assert len(s.fake.allocations()) == 3  # the first runtime and one per reclaim, none for the transport errors
    assert s.fake.assignments() == {}  # released at done: no quota burns
    assert [e["ok"] for e in events(daemon, "runtime_released")] == [True]
    assert len(notes(daemon, "recovered")) == 2
    assert s.job.result_files() == uninterrupted != {}
    calls = s.fake.calls()
    assert all(with_session for command, with_session in calls if command not in ("version", "sessions"))
    assert sum(1 for command, _ in calls if command == "exec") > 8  # short cells: the waiter was attached again


def test_a_refused_allocation_backs_off_doubling_never_asks_for_cpu_and_drive_consent_is_asked_once(stand):
    s = stand(images=3, chunk_seconds=0.02, consent_wait_seconds=0.0)  # Enter before the human granted it
    s.fake.fault("refuse_new", 3)
    s.fake.fault("drive_consent", "required")
    daemon = s.daemon()
    consent = lambda: [n for n in notes(daemon, "needs_human") if "accounts.google.com" in n["message"]]  # noqa: E731
    restarted = lambda: ("restart-kernel", True) in s.fake.calls()  # noqa: E731
    when(lambda: consent() and restarted(), lambda: s.fake.fault("drive_consent", "granted"))  # the human, late
    assert daemon.run() == 0
    refusals = [d for d in events(daemon, "decision") if d.get("action") == "dismiss_gpu_limit"]
    assert [d["cause"] for d in refusals] == ["GPU_UNAVAILABLE"] * 3
    waits = [float(d["reason"].split("next try in ")[1].split()[0]) for d in refusals]
    assert waits == [1.0, 2.0, 4.0]
    assert s.fake.asks() == ["T4"] * 4  # never a CPU runtime for a GPU job
    assert s.fake.allocations() == ["T4"]
    assert len(consent()) == 1  # the early Enter left drive.mount waiting: kernel restarted, mounted again
    assert s.heartbeat().phase == hb.DONE


def test_an_expired_login_is_one_notification_with_the_command_then_it_waits(stand):
    s = stand(images=3, chunk_seconds=0.3)
    daemon = s.daemon()
    told = lambda: [n for n in notes(daemon, "needs_human") if "LOGIN_REQUIRED" in n["message"]]  # noqa: E731

    def sign_out():
        s.fake.fault("login_expired", True)
        signed_out_at = s.heartbeat().chunks_done
        wait_for(told, 60)
        wait_for(computing_with(s, signed_out_at + 2), 60)  # the job goes on; the daemon waits for the human
        s.fake.fault("login_expired", False)  # the human signed in again

    when(computing_with(s, 1), sign_out)
    assert daemon.run() == 0
    assert len(told()) == 1
    assert "colab sessions" in told()[0]["message"]
    assert s.fake.allocations() == ["T4"]  # waiting, not replacing the runtime


def released_notes(daemon, kind: str) -> list[str]:
    return [n["message"] for n in notes(daemon, kind)]


def test_a_login_expired_at_done_is_told_once_and_the_runtime_released_after_the_login(stand):
    s = stand(images=3, chunk_seconds=0.2, release_backoff_start=0.2, release_backoff_cap=1.0)
    daemon = s.daemon()
    assigned = lambda: released_notes(daemon, "runtime_assigned")  # noqa: E731

    def sign_out_then_in():
        s.fake.fault("login_expired", True)  # the job goes on; `stop` will need the login (session.py:345)
        if wait_for(assigned, 180):
            s.fake.fault("login_expired", False)  # the human ran `colab sessions` and signed in

    when(computing_with(s, 1), sign_out_then_in)
    assert daemon.run() == 0
    assert s.heartbeat().phase == hb.DONE
    assert s.fake.assignments() == {}  # released once the login was back, confirmed by `colab sessions`
    told = assigned()
    assert len(told) == 1 and "LOGIN_REQUIRED" in told[0] and "colab stop -s keepalive-castle" in told[0]
    assert len(released_notes(daemon, "runtime_released")) == 1
    assert [e["ok"] for e in events(daemon, "runtime_released")] == [False]  # not yet, when the job ended


def test_a_502_on_stop_is_retried_until_colab_sessions_shows_the_runtime_gone(stand):
    s = stand(images=2, chunk_seconds=0.05, release_backoff_start=0.2, release_backoff_cap=1.0)
    s.fake.fault("stop_errors", 3)  # commands/session.py:345: unassign raising on a 502
    daemon = s.daemon()
    assert daemon.run() == 0
    assert s.fake.assignments() == {}
    assert [c for c, _ in s.fake.calls()].count("stop") == 4  # three 502s, then terminated
    assert len(released_notes(daemon, "runtime_released")) == 1


def test_a_job_an_earlier_run_left_blocked_is_started_again_after_the_fix(stand, tmp_path):
    s = stand(images=2, chunk_seconds=0.05, gpu="", release_backoff_start=0.2, release_backoff_cap=1.0)
    first = s.daemon()  # a CPU runtime for a GPU job: the job says blocked NO_GPU
    when(lambda: s.heartbeat() is not None and s.heartbeat().phase == hb.BLOCKED and not s.fake.assignments(),
         lambda: setattr(first, "stopping", True), timeout=240)
    assert first.run() == 130
    blocked = s.heartbeat()
    assert blocked.phase == hb.BLOCKED and s.fake.assignments() == {}  # released at blocked
    s.apps.pop().close()
    s.cli = dataclasses.replace(s.cli, gpu="T4")  # the fix
    second = s.daemon()
    assert second.run() == 0
    assert s.heartbeat().phase == hb.DONE and s.heartbeat().session != blocked.session
    assert s.fake.allocations() == ["NONE", "T4"] and s.fake.assignments() == {}
    status = subprocess.run([sys.executable, "-m", "keepalive", "status", "--mode", "cli", "--job", "castle"],
                            env=s.env, capture_output=True, text=True, timeout=60)
    assert "phase done" in status.stdout
    assert f"previous run: blocked (NO_GPU" in status.stdout and blocked.session in status.stdout


def test_a_flaky_sessions_answer_and_failed_downloads_stop_nothing_and_allocate_nothing(stand):
    s = stand(images=4, chunk_seconds=0.3, release_backoff_start=0.2, release_backoff_cap=1.0)
    daemon = s.daemon()
    left = lambda name: s.fake.server.read()["faults"].get(name)  # noqa: E731

    def flake():
        s.fake.fault("sessions_omit", 1)  # one answer leaves the live runtime out: 0.7.5 prunes its name
        if wait_for(lambda: left("sessions_omit") == 0, 60):
            s.fake.fault("download_errors", 3)  # 502s whose message holds the runtime's proxy token

    when(computing_with(s, 1), flake)
    assert daemon.run() == 0
    assert left("sessions_omit") == 0 and left("download_errors") == 0
    assert s.heartbeat().phase == hb.DONE
    assert s.fake.allocations() == ["T4"]  # no new runtime
    assert [c for c, _ in s.fake.calls()].count("stop") == 1  # only the release at done
    assert s.fake.assignments() == {}
    assert len(notes(daemon, "recovered")) == 0 and daemon.state["restarts"] == 0
    home = Path(s.env["KEEPALIVE_HOME"])
    kept = "".join(p.read_text(errors="replace") for p in home.rglob("*") if p.is_file() and p.suffix != ".zip")
    tokens = s.fake.tokens()
    assert tokens and not [token for token in tokens if token in kept]
