"""cli mode end to end: the daemon drives the fake ``colab`` (backed by local VMs) through reclaims, refusals,
transport errors, a lost login, Drive consent and its own restart, to ``done`` with the uninterrupted result."""

from __future__ import annotations

import sys
import threading

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


def test_reclaimed_runtimes_are_replaced_and_the_result_matches_an_uninterrupted_run(stand, tmp_path):
    s = stand(images=6)
    daemon = s.daemon()
    first: dict = {}

    def reclaim_twice():
        first["session"] = s.heartbeat().session
        s.fake.reclaim(s.endpoint())
        if wait_for(computing_with(s, first_chunks + 2, first["session"]), 120):
            s.fake.reclaim(s.endpoint())

    first_chunks = 2
    when(computing_with(s, first_chunks), reclaim_twice)
    assert daemon.run() == 0
    assert s.heartbeat().phase == hb.DONE
    assert len(s.fake.allocations()) == 3
    assert len(notes(daemon, "recovered")) == 2
    assert s.job.result_files() == reference_result(tmp_path / "reference", 6) != {}


def test_a_refused_allocation_backs_off_doubling_and_never_asks_for_a_cpu_runtime(stand):
    s = stand(images=3, chunk_seconds=0.02)
    s.fake.fault("refuse_new", 3)
    daemon = s.daemon()
    assert daemon.run() == 0
    refusals = [d for d in events(daemon, "decision") if d.get("action") == "dismiss_gpu_limit"]
    assert [d["cause"] for d in refusals] == ["GPU_UNAVAILABLE"] * 3
    waits = [float(d["reason"].split("next try in ")[1].split()[0]) for d in refusals]
    assert waits == [1.0, 2.0, 4.0]
    assert s.fake.asks() == ["T4"] * 4  # never a CPU runtime for a GPU job
    assert s.fake.allocations() == ["T4"]


def test_transport_errors_are_not_taken_for_a_dead_runtime(stand):
    s = stand(images=4)
    daemon = s.daemon()
    when(computing_with(s, 1), lambda: s.fake.fault("transport_errors", 4))
    assert daemon.run() == 0
    assert s.fake.allocations() == ["T4"]
    assert not notes(daemon, "recovered")


def test_an_expired_login_is_one_notification_with_the_command_then_it_waits(stand):
    s = stand(images=5, chunk_seconds=0.3)
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


def test_drive_consent_is_one_notification_with_the_url_and_the_mount_is_confirmed_on_the_vm(stand):
    s = stand(images=3, chunk_seconds=0.02)
    s.fake.fault("drive_consent", "required")
    daemon = s.daemon()
    consent = lambda: [n for n in notes(daemon, "needs_human") if "accounts.google.com" in n["message"]]  # noqa: E731
    when(lambda: consent(), lambda: s.fake.fault("drive_consent", "granted"))
    assert daemon.run() == 0
    assert len(consent()) == 1
    assert s.heartbeat().phase == hb.DONE


def test_a_restarted_daemon_attaches_to_the_running_job_instead_of_starting_another(stand, tmp_path):
    s = stand(images=5, chunk_seconds=0.3)
    first = s.daemon()
    when(computing_with(s, 1), lambda: setattr(first, "stopping", True))
    assert first.run() == 130
    session = s.heartbeat().session
    first.hands.close()
    second = s.daemon()
    assert second.run() == 0
    assert s.fake.allocations() == ["T4"]
    sessions = {e["session"] for e in events(second, "session_seen")}
    assert sessions <= {session}
    assert s.job.result_files() == reference_result(tmp_path / "reference", 5) != {}
