"""The supervisor's rules, without a browser, a file or a clock."""

from __future__ import annotations

import pytest

from colab_side import heartbeat as hb
from keepalive.states import Action, Cause, PageState
from keepalive.supervisor import BeatView, Memory, SupervisorConfig, decide

CFG = SupervisorConfig(grace_seconds=60, dead_after=3, recovery_timeout_seconds=300, retry_backoff_start=10,
                       retry_backoff_cap=80, gpu_backoff_start=1800, gpu_backoff_cap=7200,
                       crash_loop_restarts=3, crash_loop_hours=1)


def beat(session="s1", seq=1, phase=hb.COMPUTING, chunks=5, **more) -> hb.Heartbeat:
    return hb.Heartbeat(job="j", session=session, seq=seq, time="2026-01-01T00:00:00+00:00", phase=phase,
                        chunks_done=chunks, **more)


def view(verdict="fresh", **beat_fields) -> BeatView:
    return BeatView(verdict, beat(**beat_fields))


def run(rounds, mem=None, cfg=CFG, start=1000.0, step=30.0):
    """Feed (page, view) rounds; return every decision."""
    mem = mem or Memory(session="s1")
    decisions = []
    for i, (page, bv) in enumerate(rounds):
        decision = decide(page, bv, mem, start + i * step, cfg)
        mem = decision.memory
        decisions.append(decision)
    return decisions


def test_fresh_heartbeat_is_never_restarted_whatever_the_page_shows():
    for page in PageState:
        if page in (PageState.CAPTCHA, PageState.SIGNED_OUT, PageState.GPU_LIMIT):
            continue
        decisions = run([(page, view("fresh"))] * 5)
        assert {d.action for d in decisions} == {Action.WAIT}, page


def test_dead_needs_k_consecutive_stale_observations():
    decisions = run([(PageState.DISCONNECTED, view("stale"))] * 3)
    assert [d.action for d in decisions] == [Action.WAIT, Action.WAIT, Action.RECONNECT]


def test_unreadable_heartbeat_and_unknown_page_are_not_death():
    rounds = [(PageState.DISCONNECTED, view("stale")), (PageState.UNKNOWN, view("corrupt")),
              (PageState.DISCONNECTED, view("stale")), (PageState.DISCONNECTED, view("fresh")),
              (PageState.DISCONNECTED, view("stale")), (PageState.DISCONNECTED, view("stale"))]
    assert all(d.action is Action.WAIT for d in run(rounds))


def test_recovery_walks_through_the_dialogs_then_waits_for_a_new_session():
    stale = view("stale")
    rounds = [(PageState.DISCONNECTED, stale)] * 3 + [
        (PageState.IDLE, stale), (PageState.AUTHORSHIP, stale), (PageState.DRIVE_CONSENT, stale),
        (PageState.DRIVE_POPUP, stale), (PageState.RUNNING, stale), (PageState.RUNNING, view("fresh", session="s2"))]
    decisions = run(rounds)
    assert [d.action for d in decisions[2:]] == [
        Action.RECONNECT, Action.RUN_ALL, Action.RUN_ANYWAY, Action.CONNECT_DRIVE,
        Action.COMPLETE_DRIVE_POPUP, Action.WAIT, Action.WAIT]
    last = decisions[-1]
    assert last.notify == "recovered"
    assert last.memory.bad_streak == 0 and last.memory.recovering_since is None and last.memory.attempts == 0


def test_no_new_session_after_recovery_timeout_backs_off_doubling():
    cfg = SupervisorConfig(dead_after=1, recovery_timeout_seconds=50, retry_backoff_start=10, retry_backoff_cap=25,
                           crash_loop_restarts=100)
    mem = Memory(session="s1")
    stale = view("stale")
    first = decide(PageState.IDLE, stale, mem, 0, cfg)
    assert first.action is Action.RUN_ALL
    timeout = decide(PageState.RUNNING, stale, first.memory, 60, cfg)
    assert timeout.action is Action.RELOAD and timeout.memory.next_try == 70
    waiting = decide(PageState.IDLE, stale, timeout.memory, 65, cfg)
    assert waiting.action is Action.WAIT
    again = decide(PageState.IDLE, stale, waiting.memory, 71, cfg)
    assert again.action is Action.RUN_ALL
    second_timeout = decide(PageState.IDLE, stale, again.memory, 130, cfg)
    assert second_timeout.memory.next_try == 130 + 20
    third = decide(PageState.IDLE, stale, second_timeout.memory, 151, cfg)
    third_timeout = decide(PageState.IDLE, stale, third.memory, 210, cfg)
    assert third_timeout.memory.next_try == 210 + 25  # capped


@pytest.mark.parametrize("phase,action,notify,cause", [
    (hb.DONE, Action.STOP, "done", Cause.JOB_DONE),
    (hb.FAILED, Action.STOP, "failed", Cause.CODE_ERROR),
    (hb.BLOCKED, Action.WAIT, "blocked", Cause.JOB_BLOCKED),
])
def test_the_notebooks_final_word_wins_and_is_told_once(phase, action, notify, cause):
    final = view("stale", phase=phase, reason="r", action="a")
    decisions = run([(PageState.DISCONNECTED, final)] * 4)
    assert decisions[0].action is action and decisions[0].notify == notify and decisions[0].cause is cause
    assert all(d.action in (Action.WAIT, action) for d in decisions)
    assert [d.notify for d in decisions[1:]] == [None] * 3
    assert not any(d.action in (Action.RECONNECT, Action.RUN_ALL) for d in decisions)


def test_blocked_for_no_gpu_is_named():
    decision = run([(PageState.IDLE, view("fresh", phase=hb.BLOCKED, cause=hb.NO_GPU))])[0]
    assert decision.cause is Cause.GPU_UNAVAILABLE and decision.action is Action.WAIT


def test_done_can_stay():
    cfg = SupervisorConfig(on_done="stay")
    decisions = run([(PageState.IDLE, view(phase=hb.DONE))] * 2, cfg=cfg)
    assert [d.action for d in decisions] == [Action.WAIT, Action.WAIT]
    assert decisions[0].notify == "done" and decisions[1].notify is None


@pytest.mark.parametrize("page,cause", [(PageState.CAPTCHA, Cause.CAPTCHA), (PageState.SIGNED_OUT, Cause.LOGIN_REQUIRED)])
def test_human_pages_notify_once_then_resume_by_themselves(page, cause):
    stale = view("stale")
    decisions = run([(page, stale)] * 5 + [(PageState.DISCONNECTED, stale)] * 3 + [(page, stale)])
    assert [d.notify for d in decisions[:5]] == ["needs_human", None, None, None, None]
    assert decisions[0].action is Action.NOTIFY_HUMAN and decisions[0].cause is cause
    assert all(d.action is Action.WAIT for d in decisions[1:5])
    assert Action.RECONNECT in [d.action for d in decisions[5:8]]
    assert decisions[-1].notify == "needs_human"  # a new CAPTCHA later is told again


def test_gpu_limit_is_dismissed_and_backed_off_doubling():
    stale = view("stale")
    mem = Memory(session="s1", bad_streak=5)
    first = decide(PageState.GPU_LIMIT, stale, mem, 0, CFG)
    assert first.action is Action.DISMISS_GPU_LIMIT and first.cause is Cause.GPU_UNAVAILABLE
    assert first.memory.gpu_wait_until == 1800
    waiting = decide(PageState.DISCONNECTED, stale, first.memory, 100, CFG)
    assert waiting.action is Action.WAIT
    retry = decide(PageState.DISCONNECTED, stale, waiting.memory, 1801, CFG)
    assert retry.action is Action.RECONNECT
    second = decide(PageState.GPU_LIMIT, stale, retry.memory, 1802, CFG)
    assert second.memory.gpu_wait_until == 1802 + 3600
    third = decide(PageState.GPU_LIMIT, stale, second.memory, 6000, CFG)
    assert third.memory.gpu_wait_until == 6000 + 7200  # capped


def test_crash_loop_without_progress_gives_up():
    cfg = SupervisorConfig(dead_after=1, recovery_timeout_seconds=10_000, crash_loop_restarts=3, crash_loop_hours=1)
    mem = Memory(session="s0")
    decisions = []
    for i in range(6):
        # each restart yields a new session that dies again at once, with no new chunk
        d = decide(PageState.IDLE, view("stale", session=f"s{i}", chunks=7), mem, i * 60.0, cfg)
        mem = d.memory
        decisions.append(d)
    assert decisions[-1].action is Action.STOP or any(d.action is Action.STOP for d in decisions)
    stop = next(d for d in decisions if d.action is Action.STOP)
    assert stop.cause is Cause.THRASHING and stop.notify == "giving_up"


def test_restarts_with_progress_are_not_a_crash_loop():
    cfg = SupervisorConfig(dead_after=1, recovery_timeout_seconds=10_000, crash_loop_restarts=3, crash_loop_hours=1)
    mem = Memory(session="s0")
    for i in range(8):
        d = decide(PageState.IDLE, view("stale", session=f"s{i}", chunks=i), mem, i * 60.0, cfg)
        mem = d.memory
        assert d.action is not Action.STOP


def test_blind_mode_sends_one_run_all_per_attempt():
    cfg = SupervisorConfig(dead_after=1, blind=True, recovery_timeout_seconds=100)
    decisions = run([(PageState.UNKNOWN, view("stale"))] * 4, cfg=cfg)
    assert [d.action for d in decisions] == [Action.RUN_ALL, Action.WAIT, Action.WAIT, Action.WAIT]


def test_missing_drive_folder_is_named_not_restarted():
    no_source = BeatView("missing", None, source_ok=False)
    decisions = run([(PageState.DISCONNECTED, no_source)] * 4, mem=Memory())
    assert all(d.action is Action.WAIT for d in decisions)
    assert decisions[0].cause is Cause.NO_HEARTBEAT_SOURCE and decisions[0].notify == "needs_human"
    assert [d.notify for d in decisions[1:]] == [None] * 3


def test_a_never_started_job_is_started():
    missing = BeatView("missing", None)
    decisions = run([(PageState.IDLE, missing)] * 3, mem=Memory())
    assert decisions[-1].action is Action.RUN_ALL
