"""The daemon loop's bookkeeping: what it logs, counts, saves and tells, and how it stops.

The hands here are a scripted stand-in (the page is whatever the test says); the heartbeat is a
real file read by the real watch, the journal, notifier and view are the real ones. The browser
itself is exercised end to end in test_daemon_e2e.py.
"""

from __future__ import annotations

import io
import os
import signal
import threading

import pytest
from rich.console import Console

from colab_side import heartbeat as hb
from keepalive import config, status
from keepalive.hands.page import Observation
from keepalive.daemon import Daemon
from keepalive.heartbeat_watch import HeartbeatWatch
from keepalive.journal import Journal
from keepalive.notify import Notifier
from keepalive.states import Action, PageState
from keepalive.supervisor import SupervisorConfig
from keepalive.view import LiveView, render

GRACE = 10.0


class ScriptedHands:
    """Shows the page state the test sets; remembers what it was asked to do."""

    def __init__(self, page=PageState.RUNNING):
        self.page = page
        self.acted: list[Action] = []
        self.reopened = 0
        self.released = 0
        self.closed = False

    def observe(self) -> Observation:
        return Observation(self.page, {}, "scripted")

    def act(self, action: Action) -> bool:
        self.acted.append(action)
        return True

    def reopen(self) -> None:
        self.reopened += 1

    def release_runtime(self) -> bool:
        self.released += 1
        return True

    def close(self) -> None:
        self.closed = True


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class Rig:
    def __init__(self, tmp_path, page=PageState.RUNNING, poll_seconds=30.0, clock=None):
        self.drive = tmp_path / "drive"
        self.clock = clock
        self.cfg = config.load(env={"KEEPALIVE_HOME": str(tmp_path / "home")}, job="castle",
                               drive_folder=str(self.drive), poll_seconds=poll_seconds, url="http://127.0.0.1:9/drive/x")
        self.cfg.supervisor = SupervisorConfig(grace_seconds=GRACE, dead_after=2, recovery_timeout_seconds=100.0)
        self.hands = ScriptedHands(page)
        self.journal = Journal(self.cfg.dirs.state, self.cfg.job)
        self.out = io.StringIO()
        watch_clock = {"clock": clock} if clock else {}
        self.watch = HeartbeatWatch(self.drive, "castle", GRACE, **watch_clock)
        self.notifier = Notifier("record", 0, self.journal, **watch_clock)
        self.daemon = self.make_daemon()
        self.seq = 0

    def make_daemon(self):
        extra = {"clock": self.clock} if self.clock else {}
        return Daemon(self.cfg, self.hands, self.watch, self.journal, self.notifier,
                      LiveView(stream=self.out), **extra)

    def beat(self, session="s1", phase=hb.COMPUTING, **fields):
        self.seq += 1
        path = hb.heartbeat_path(self.drive, "castle")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(hb.Heartbeat(job="castle", session=session, seq=self.seq, phase=phase,
                                     time="2026-01-01T00:00:00+00:00", **fields).to_json())

    def events(self, name):
        return [e for e in self.journal.events() if e.get("event") == name]

    def notes(self):
        return [e["what"] for e in self.events("notification")]


@pytest.fixture
def restore_signals():
    saved = {name: signal.getsignal(getattr(signal, name)) for name in ("SIGINT", "SIGTERM") if hasattr(signal, name)}
    yield
    for name, handler in saved.items():
        signal.signal(getattr(signal, name), handler)


def test_a_dead_runtime_is_recovered_and_every_step_is_written_down(tmp_path):
    clock = Clock()
    rig = Rig(tmp_path, clock=clock)
    rig.beat(chunks_done=5)
    assert rig.daemon.step().action is Action.WAIT
    assert rig.events("decision") == []  # plain waits are not logged

    rig.hands.page = PageState.DISCONNECTED
    clock.now += GRACE + 1
    reconnect = rig.daemon.step()
    assert reconnect.action is Action.RECONNECT and reconnect.hurry  # the page's word: at once, then fast
    rig.hands.page = PageState.IDLE
    clock.now += 1.5
    assert rig.daemon.step().action is Action.RUN_ALL
    assert rig.hands.acted == [Action.RECONNECT, Action.RUN_ALL]

    decisions = rig.events("decision")
    assert [d["action"] for d in decisions] == ["reconnect", "run_all"]
    assert all(d["cause"] == "RUNTIME_LOST" and d["heartbeat"] == "stale" for d in decisions)
    assert [(a["action"], a["ok"]) for a in rig.events("action")] == [("reconnect", True), ("run_all", True)]
    saved = rig.journal.load_state()
    assert saved["restarts"] == 0  # a restart once a new session follows the Run all
    assert saved["last_action"] == "run_all" and "page idle" in saved["last_reason"]

    rig.hands.page = PageState.RUNNING
    rig.beat(session="s2", chunks_done=5)
    rig.daemon.step()
    rig.beat(session="s2", chunks_done=9)
    rig.daemon.step()
    rig.daemon.step()
    assert rig.notes() == ["recovered"]
    sessions = rig.journal.sessions()
    assert [s["session"] for s in sessions] == ["s1", "s2"]
    assert sessions[0]["ended_by"] == "RUNTIME_LOST" and sessions[1]["chunks_gained"] == 4
    assert rig.journal.load_state()["restarts"] == 1

    lines = rig.out.getvalue().splitlines()
    assert "heartbeat=stale" in lines[1] and "action=run_all" in rig.out.getvalue()


def test_restarts_survive_a_daemon_restart(tmp_path):
    clock = Clock()
    rig = Rig(tmp_path, page=PageState.IDLE, clock=clock)
    rig.beat()
    rig.daemon.step()
    clock.now += GRACE + 1
    rig.daemon.step()
    rig.daemon.step()
    rig.beat(session="s2")
    rig.daemon.step()
    assert rig.journal.load_state()["restarts"] == 1
    again = rig.make_daemon()
    assert again.state["restarts"] == 1


def test_the_scheduled_reopen_waits_while_a_recovery_is_under_way(tmp_path):
    clock = Clock()
    rig = Rig(tmp_path, page=PageState.IDLE, clock=clock)
    rig.beat()
    rig.daemon.step()
    rig.daemon.reopen()
    assert rig.hands.reopened == 1 and len(rig.events("reopen")) == 1
    clock.now += GRACE + 1
    rig.daemon.step()
    rig.daemon.step()  # now recovering: Run all issued, waiting for a new session
    rig.daemon.reopen()
    assert rig.hands.reopened == 1 and len(rig.events("reopen")) == 1


def test_done_stops_the_loop_with_exit_0_and_one_notification(tmp_path, restore_signals, capsys):
    rig = Rig(tmp_path, poll_seconds=0.05)
    rig.beat(phase=hb.DONE, chunks_done=10, chunks_total=10, progress=1.0)
    assert rig.daemon.run() == 0
    assert rig.notes() == ["done"]
    assert rig.hands.acted == [] and rig.hands.closed
    assert rig.events("daemon_stop")[-1]["reason"] == "the job is done"
    said = capsys.readouterr().err.splitlines()
    assert said[-2].startswith("keepalive: DONE: the job finished — 0 restarts")
    assert "runtime was not released: this daemon did not see session s1 run" in said[-1]  # found done: history


def test_a_failed_job_stops_with_exit_1_and_is_never_restarted(tmp_path, restore_signals, capsys):
    rig = Rig(tmp_path, page=PageState.IDLE, poll_seconds=0.05)
    rig.beat(phase=hb.FAILED, cause=hb.CODE_ERROR, reason="DepthMap_1 ended in ERROR in 2 sessions",
             action="look at logs/ and fix the input")
    assert rig.daemon.run() == 1
    assert rig.notes() == ["failed"]
    assert rig.hands.acted == []
    assert "DepthMap_1" in rig.events("daemon_stop")[-1]["reason"]
    assert capsys.readouterr().err.splitlines()[-2] == ("keepalive: CODE_ERROR: DepthMap_1 ended in ERROR in 2 sessions"
                                                       " — to do: look at logs/ and fix the input")


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_a_signal_stops_cleanly_saving_state_and_closing_the_browser(tmp_path, restore_signals, signame):
    rig = Rig(tmp_path, poll_seconds=0.05)
    rig.beat()
    stepped = threading.Event()
    original = rig.daemon.step

    def step():
        decision = original()
        stepped.set()
        return decision

    rig.daemon.step = step
    sender = threading.Thread(target=lambda: stepped.wait(30) and os.kill(os.getpid(), getattr(signal, signame)))
    sender.start()
    code = rig.daemon.run()
    sender.join()
    assert code == 130
    assert rig.hands.closed
    assert rig.events("daemon_stop")[-1]["reason"] == "signal"
    assert rig.journal.load_state()["job"] == "castle"


class FlakyHands(ScriptedHands):
    """Raises on the first ``failures`` looks, as a vanished tab or a bug would."""

    def __init__(self, page, failures):
        super().__init__(page)
        self.failures = failures

    def observe(self) -> Observation:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("the tab went away")
        return super().observe()


def test_a_round_that_raises_is_written_down_and_the_loop_goes_on(tmp_path, restore_signals, capsys):
    rig = Rig(tmp_path, poll_seconds=0.05)
    rig.hands = FlakyHands(PageState.RUNNING, failures=3)
    rig.daemon = rig.make_daemon()
    rig.beat(phase=hb.DONE)
    assert rig.daemon.run() == 0
    failed = rig.events("round_failed")  # the same failure is written once, then counted
    assert len(failed) == 1 and "RuntimeError: the tab went away" in failed[0]["error"]
    assert "observe" in failed[0]["traceback"]
    [repeated] = rig.events("repeated")
    assert repeated["of"] == "round_failed" and repeated["times"] == 2 and repeated["error"] == failed[0]["error"]
    assert capsys.readouterr().err.count("a round failed") == 1  # said once in a row, not every round


@pytest.mark.parametrize("content", [b"\xff\xfe\x00", b"[" * 200_000, b'{"job": "castle", "seq": "1"}',
                                     b'{"job":"castle","session":"s","seq":1,"time":"t","phase":"computing",'
                                     b'"progress":"50%","warnings":5}'])
def test_no_heartbeat_content_stops_the_daemon(tmp_path, content):
    rig = Rig(tmp_path)
    path = hb.heartbeat_path(rig.drive, "castle")
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    for _ in range(3):
        assert rig.daemon.step() is not None
    assert rig.events("round_failed") == []


class RecoveringHands(ScriptedHands):
    """A page that follows the daemon's steps; Run all starts a new session that finishes at once."""

    def __init__(self, rig):
        super().__init__(PageState.DISCONNECTED)
        self.rig = rig

    def act(self, action: Action) -> bool:
        super().act(action)
        if action is Action.RECONNECT:
            self.page = PageState.IDLE
        elif action is Action.RUN_ALL:
            self.page = PageState.IDLE  # the new session finished at once: its cells are no longer running
            self.rig.beat(session="s2", phase=hb.DONE)
        return True


def test_a_recovery_follows_the_page_fast_whatever_the_poll(tmp_path, restore_signals):
    rig = Rig(tmp_path, poll_seconds=3600.0)  # without hurrying, the second look would be an hour away
    rig.cfg.supervisor = SupervisorConfig(grace_seconds=GRACE, fast_poll_seconds=0.05)
    rig.hands = RecoveringHands(rig)
    rig.daemon = rig.make_daemon()
    rig.beat()
    deadline = threading.Timer(60.0, lambda: setattr(rig.daemon, "stopping", True))  # a hung loop fails, not hangs
    deadline.start()
    try:
        code = rig.daemon.run()
    finally:
        deadline.cancel()
    assert code == 0 and rig.hands.acted == [Action.RECONNECT, Action.RUN_ALL]


class BrokenReopenHands(ScriptedHands):
    def reopen(self) -> None:
        raise OSError("chromedriver is gone")


def test_a_scheduled_reopen_that_raises_is_written_down_and_the_watch_goes_on(tmp_path):
    rig = Rig(tmp_path)
    rig.hands = BrokenReopenHands()
    rig.daemon = rig.make_daemon()
    rig.beat()
    rig.daemon.step()
    rig.daemon.reopen()
    assert "OSError: chromedriver is gone" in rig.events("reopen_failed")[0]["error"]
    assert rig.daemon.step().action is Action.WAIT


@pytest.mark.parametrize("saved", ['{"restarts": "many"}', '{"restarts": [1]}', "[1, 2]", "\xff"])
def test_a_damaged_saved_state_does_not_stop_the_daemon_from_starting(tmp_path, saved):
    rig = Rig(tmp_path)
    rig.journal.state_path.write_text(saved, encoding="latin-1")
    assert rig.make_daemon().state["restarts"] == 0


def test_a_sync_pause_under_a_running_page_is_one_notification_and_no_action(tmp_path):
    clock = Clock()
    rig = Rig(tmp_path, clock=clock)
    rig.beat()
    rig.daemon.step()
    for _ in range(200):  # 200 rounds of 30 s: Drive for desktop paused 100 minutes
        clock.now += 30
        rig.daemon.step()
    assert rig.notes() == ["source_stalled"] and rig.hands.acted == []
    assert rig.journal.load_state()["restarts"] == 0 and rig.journal.load_state()["cause"] == "HEARTBEAT_STALLED"
    assert "cause=HEARTBEAT_STALLED" in rig.out.getvalue()


@pytest.mark.parametrize("phase", [hb.DONE, hb.FAILED])
def test_a_session_seen_alive_is_released_once_at_its_end_and_never_again_after_a_restart(tmp_path, phase):
    rig = Rig(tmp_path, page=PageState.RUNNING)
    rig.beat(chunks_done=3)
    rig.daemon.step()
    rig.beat(phase=phase, cause=None if phase == hb.DONE else hb.CODE_ERROR)
    rig.hands.page = PageState.IDLE
    rig.daemon.step()
    assert rig.hands.released == 1
    assert [(e["session"], e["ok"]) for e in rig.events("runtime_released")] == [("s1", True)]
    assert rig.journal.load_state()["released_sessions"] == ["s1"]
    again = rig.make_daemon()  # a restarted daemon: it remembers what it released, and releases nothing
    again.step()
    again.step()
    assert rig.hands.released == 1


def test_a_final_heartbeat_beside_a_page_running_a_job_never_releases_the_runtime(tmp_path):
    """The user started the job again by hand (or a second tab did): the page's job is not the session that ended."""
    rig = Rig(tmp_path, page=PageState.RUNNING)
    rig.beat(chunks_done=3)
    rig.daemon.step()
    rig.beat(phase=hb.BLOCKED, cause=hb.DRIVE_FULL)  # blocked: the daemon stays and watches
    for _ in range(3):
        rig.daemon.step()
    assert rig.hands.released == 0
    rig.hands.page = PageState.IDLE  # the page's job ended too: now the runtime is idle and costs quota
    rig.daemon.step()
    assert rig.hands.released == 1


def test_a_restarted_daemon_facing_a_final_heartbeat_releases_nothing(tmp_path):
    rig = Rig(tmp_path, page=PageState.IDLE)
    rig.beat(phase=hb.DONE)  # the previous daemon's session: never seen alive by this one
    rig.daemon.step()
    assert rig.hands.released == 0 and rig.events("runtime_released") == []


def test_a_job_that_ends_while_the_page_still_shows_it_running_is_released_once_the_page_ends(tmp_path):
    clock = Clock()
    rig = Rig(tmp_path, page=PageState.RUNNING, clock=clock)
    rig.beat(chunks_done=3)
    rig.daemon.step()
    rig.beat(phase=hb.DONE)  # the job's last word; its cell still finishes for a moment
    rig.daemon.step()
    assert rig.hands.released == 0 and not rig.daemon.stopping
    clock.now += 5
    rig.hands.page = PageState.IDLE
    rig.daemon.step()
    assert rig.hands.released == 1 and rig.daemon.stopping and rig.daemon.final.cause.value == "JOB_DONE"


# --- a job of another name on the same Drive --------------------------------------------------------------------


def other_beat(drive, job, session="t1", seq=1, phase=hb.COMPUTING):
    path = hb.heartbeat_path(drive, job)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(hb.Heartbeat(job=job, session=session, seq=seq, phase=phase,
                                 time="2026-01-01T00:00:00+00:00").to_json())


def test_a_job_of_another_name_begun_by_our_run_all_is_named_and_never_run_again_after_it_ends(tmp_path):
    clock = Clock()
    rig = Rig(tmp_path, page=PageState.IDLE, clock=clock)
    other_beat(rig.drive, "temple", session="elsewhere", phase=hb.DONE)  # a job of another notebook, long done
    while Action.RUN_ALL not in rig.hands.acted:  # the first start of castle, never seen yet
        rig.daemon.step()
        clock.now += 1
    rig.hands.acted.clear()
    other_beat(rig.drive, "temple", session="t2")  # but the notebook runs temple
    for seq, page in enumerate([PageState.RUNNING] * 3 + [PageState.IDLE] * 10 + [PageState.DISCONNECTED] * 3):
        if seq == 3:
            other_beat(rig.drive, "temple", session="t2", seq=9, phase=hb.DONE)  # temple finished
        rig.hands.page = page
        rig.daemon.step()
        clock.now += GRACE
    assert rig.hands.acted == [] and rig.hands.released == 0
    assert rig.notes() == ["other_job"]
    state = rig.journal.load_state()
    assert state["cause"] == "OTHER_JOB" and "keepalive run --job temple" in state["note"]


def test_jobs_of_other_names_already_there_do_not_stop_a_first_start(tmp_path):
    clock = Clock()
    rig = Rig(tmp_path, page=PageState.IDLE, clock=clock)
    other_beat(rig.drive, "temple")  # another notebook's job, running, watched by its own daemon
    other_beat(rig.drive, "_meshroom")  # not a job: the install cache's folder
    for _ in range(4):
        rig.daemon.step()
        clock.now += GRACE
    assert Action.RUN_ALL in rig.hands.acted and "other_job" not in rig.notes()


def test_a_session_started_by_this_daemons_run_all_is_released_even_if_it_ends_before_a_live_beat(tmp_path):
    """No GPU at once: the session this daemon started writes 'blocked' as its first word; its runtime is ours."""
    clock = Clock()
    rig = Rig(tmp_path, page=PageState.IDLE, clock=clock)
    rig.beat(chunks_done=3)
    rig.daemon.step()
    clock.now += GRACE + 1
    rig.daemon.step()
    clock.now += 1
    assert rig.daemon.step().action is Action.RUN_ALL
    rig.beat(session="s2", phase=hb.BLOCKED, cause=hb.NO_GPU)
    clock.now += 1
    rig.daemon.step()
    assert rig.hands.released == 1
    assert [e["session"] for e in rig.events("runtime_released")] == ["s2"]


def test_a_session_that_dies_gets_its_cause_in_its_row_the_view_status_and_the_notification(tmp_path):
    clock = Clock()
    rig = Rig(tmp_path, clock=clock)
    rig.beat(chunks_done=5, ram_used_bytes=10 << 30, ram_total_bytes=12 << 30,
             session_started="2026-01-01T00:00:00+00:00")
    rig.daemon.step()
    rig.beat(chunks_done=6, ram_used_bytes=int(11.9 * (1 << 30)), ram_total_bytes=12 << 30,
             session_started="2025-12-31T21:00:00+00:00")
    rig.daemon.step()
    rig.hands.page = PageState.DISCONNECTED
    clock.now += GRACE + 1
    rig.daemon.step()
    rig.hands.page = PageState.RUNNING
    rig.beat(session="s2", chunks_done=6)
    rig.daemon.step()
    rig.daemon.step()

    assert [(d["session"], d["cause"]) for d in rig.events("death")] == [("s1", "out_of_memory")]  # once
    first, second = rig.journal.sessions()
    assert (first["cause"], first["certainty"]) == ("out_of_memory", "likely") and "99%" in first["evidence"]
    assert second["session"] == "s2" and "cause" not in second
    shown = rig.daemon.shown["last_death"]
    assert shown == "session s1 after 3:00:00: out of memory (likely: RAM 99% used in the last beats)"
    panel = Console(file=io.StringIO(), width=200, record=True)
    panel.print(render(rig.daemon.shown))
    assert shown in " ".join(panel.export_text().split())  # the live panel shows it
    assert rig.out.getvalue().count(f"[castle] runtime lost: {shown}\n") == 1  # and the plain lines, once
    recovered = [e for e in rig.events("notification") if e["what"] == "recovered"]
    assert len(recovered) == 1 and "Why it was lost: session s1 after 3:00:00: out of memory" in recovered[0]["message"]
    lines = status.sessions_table(Journal(rig.cfg.dirs.state, "castle").sessions())  # as another process reads it
    assert lines[1].split() == ["start", "(UTC)", "end", "(UTC)", "lifetime", "how", "it", "ended"]
    assert lines[2].endswith("out of memory (likely: RAM 99% used in the last beats)")
    assert lines[3].endswith("  running")
    assert status.sessions_table(rig.journal.sessions(), final="done")[3].endswith("  done")  # the job's last word
    said = status.render_text(status.collect(rig.cfg))  # `keepalive status`, from what the daemon saved
    assert f"last runtime lost: {shown}" in said and lines[2] in said


def test_a_session_that_ended_done_has_no_death_and_a_watch_given_up_certifies_its_last(tmp_path):
    clock = Clock()
    rig = Rig(tmp_path, clock=clock)
    rig.beat(phase=hb.DONE, chunks_done=6, chunks_total=6)
    assert rig.daemon.step().action is Action.STOP
    assert rig.events("death") == [] and rig.daemon.shown["last_death"] is None

    failed = Rig(tmp_path / "failed", clock=clock)
    failed.beat(session="s2", phase=hb.FAILED, cause="CODE_ERROR", reason="Meshing_1 failed in 3 sessions")
    assert failed.daemon.step().action is Action.STOP
    assert [(d["session"], d["cause"], d["certainty"]) for d in failed.events("death")] == \
        [("s2", "notebook", "certain")]
    assert "Meshing_1 failed in 3 sessions" in failed.journal.sessions()[-1]["evidence"]
