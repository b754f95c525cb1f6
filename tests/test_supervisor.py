"""The supervisor's rules, without a browser, a file or a clock."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from colab_side import heartbeat as hb
from keepalive.states import HEARTBEAT_CAUSES, Action, Cause, Notice, PageState, Verdict
from keepalive.supervisor import RULES, BeatView, Memory, SupervisorConfig, decide

CFG = SupervisorConfig(grace_seconds=60, dead_after=3, recovery_timeout_seconds=300, retry_backoff_start=10,
                       retry_backoff_cap=80, gpu_backoff_start=1800, gpu_backoff_cap=7200,
                       crash_loop_restarts=3, crash_loop_hours=1, step_retry_seconds=20)
FRESH, STALE, MISSING, CORRUPT = Verdict.FRESH, Verdict.STALE, Verdict.MISSING, Verdict.CORRUPT


def beat(session="s1", seq=1, phase=hb.COMPUTING, chunks=5, **more) -> hb.Heartbeat:
    return hb.Heartbeat(job="j", session=session, seq=seq, time="2026-01-01T00:00:00+00:00", phase=phase,
                        chunks_done=chunks, **more)


def view(verdict=FRESH, written_at=0.0, **beat_fields) -> BeatView:
    """A heartbeat as the watch reports it; by default written long ago (before any page evidence)."""
    return BeatView(verdict, beat(**beat_fields), written_at=written_at)


def run(rounds, mem=None, cfg=CFG, start=1000.0, step=30.0):
    """Feed (page, view) rounds ``step`` seconds apart; return every decision."""
    mem = mem or Memory(session="s1")
    decisions = []
    for i, (page, bv) in enumerate(rounds):
        decision = decide(page, bv, mem, start + i * step, cfg)
        mem = decision.memory
        decisions.append(decision)
    return decisions


def actions(decisions):
    return [d.action for d in decisions]


def test_the_rules_table_is_the_documented_order():
    assert [rule.__name__ for rule in RULES] == [
        "stopped", "new_session", "final_word", "offline", "colab_policy", "human_needed", "other_job", "usage_limit", "backing_off", "page_evidence",
        "alive", "no_source", "stalled", "debounce", "recover"]


def test_every_heartbeat_cause_has_a_daemon_cause():
    assert set(HEARTBEAT_CAUSES) == set(hb.Cause)


def test_an_advancing_heartbeat_is_never_restarted_whatever_the_page_shows():
    for page in PageState:
        # each round a new beat, written just before it is seen: the job is alive
        rounds = [(page, view(FRESH, seq=i, written_at=1000.0 + i * 30 - 1)) for i in range(6)]
        assert Action.RUN_ALL not in actions(run(rounds)), page


def test_the_page_showing_the_runtime_gone_starts_the_recovery_at_once():
    fresh_but_old = view(FRESH, written_at=900.0)  # a late beat, written before the page showed the loss
    decisions = run([(PageState.DISCONNECTED, fresh_but_old), (PageState.CONNECTING, fresh_but_old),
                     (PageState.IDLE, fresh_but_old)], step=2.0)
    assert actions(decisions) == [Action.RECONNECT, Action.WAIT, Action.RUN_ALL]
    assert all(d.cause is Cause.RUNTIME_LOST for d in decisions) and all(d.hurry for d in decisions)
    assert decisions[-1].memory.restarts == () and decisions[-1].memory.pending_restart == (1004.0, 5)
    # a restart once a new session follows the Run all
    after = run([(PageState.RUNNING, view(FRESH, session="s2", written_at=1010.0))], mem=decisions[-1].memory,
                start=1010.0)
    assert after[0].memory.restarts == ((1004.0, 5),) and after[0].memory.pending_restart is None


def test_a_heartbeat_written_after_the_page_showed_it_gone_vetoes_run_all():
    decisions = run([(PageState.DISCONNECTED, view(FRESH, seq=1, written_at=900.0)),
                     (PageState.IDLE, view(FRESH, seq=2, written_at=1001.0))], step=2.0)
    assert actions(decisions) == [Action.RECONNECT, Action.WAIT]
    assert "alive" in decisions[1].reason and decisions[1].memory.recovering_since is None
    assert decisions[1].memory.restarts == ()


def test_reconnect_to_a_live_vm_ends_the_recovery_without_a_restart():
    stale = view(STALE)
    decisions = run([(PageState.DISCONNECTED, view(FRESH)), (PageState.RUNNING, view(FRESH))], step=2.0)
    assert actions(decisions) == [Action.RECONNECT, Action.WAIT]
    assert "re-attached" in decisions[1].reason
    mem = decisions[1].memory
    assert mem.recovering_since is None and mem.restarts == () and mem.evidence_at is None
    assert not decisions[1].hurry
    assert run([(PageState.RUNNING, stale)] * 2, mem=mem)[0].action is Action.WAIT


def test_without_page_evidence_dead_needs_k_consecutive_bad_rounds():
    decisions = run([(PageState.IDLE, view(STALE))] * 3)
    assert actions(decisions) == [Action.WAIT, Action.WAIT, Action.RUN_ALL]
    decisions = run([(PageState.UNKNOWN, view(STALE)), (PageState.UNKNOWN, view(FRESH)),
                     (PageState.UNKNOWN, view(STALE)), (PageState.UNKNOWN, view(STALE))])
    assert set(actions(decisions)) == {Action.WAIT}


def test_an_unreadable_heartbeat_is_not_death_until_it_stays_so_past_the_grace():
    corrupt = [BeatView(CORRUPT, beat(), unreadable_for=t, error="not valid JSON") for t in (0, 30, 59)]
    assert set(actions(run([(PageState.IDLE, c) for c in corrupt]))) == {Action.WAIT}
    late = [BeatView(CORRUPT, beat(), unreadable_for=t, error="not valid JSON") for t in (61, 91, 121)]
    decisions = run([(PageState.IDLE, c) for c in late])
    assert actions(decisions) == [Action.WAIT, Action.WAIT, Action.RUN_ALL]
    assert [d.notify for d in decisions] == [Notice.HEARTBEAT_UNREADABLE, None, None]
    assert "unreadable for 61 s (not valid JSON)" in decisions[0].reason


def test_a_sync_stall_while_the_page_shows_the_job_running_is_told_once_and_never_restarted():
    # Drive for desktop paused 2 h: the page shows the job running the whole time
    rounds = [(PageState.RUNNING, BeatView(STALE, beat(), since_change=60.0 + 30 * i, sync_lag=42.0))
              for i in range(240)]
    decisions = run(rounds)
    assert set(actions(decisions)) == {Action.WAIT}
    assert [d.notify for d in decisions if d.notify] == [Notice.SOURCE_STALLED]
    assert decisions[0].cause is Cause.HEARTBEAT_STALLED and "42 s" in decisions[0].reason
    assert decisions[-1].memory.restarts == () and not decisions[-1].memory.stopped
    # the heartbeat comes back, then stalls again: told again
    again = run([(PageState.RUNNING, view(FRESH, seq=2)), (PageState.RUNNING, view(STALE, seq=2))],
                mem=decisions[-1].memory)
    assert again[1].notify is Notice.SOURCE_STALLED


def test_after_run_all_the_new_session_is_awaited_then_a_silent_running_page_is_a_stall():
    stale = view(STALE)
    decisions = run([(PageState.IDLE, stale)] * 3 + [(PageState.RUNNING, stale)] * 12)
    assert actions(decisions)[2] is Action.RUN_ALL
    assert set(actions(decisions[3:])) == {Action.WAIT}
    assert [d.cause for d in decisions[3:]].count(Cause.HEARTBEAT_STALLED) > 0
    assert decisions[-1].memory.restarts == () and decisions[-1].memory.pending_restart is not None  # no new session


def test_keys_mode_keeps_watching_through_a_two_hour_sync_stall():
    """Keys mode cannot see the page: a Drive-for-desktop stall looks like death, and blind Run alls follow, but
    none is followed by a new session, so none is a restart and the watch never gives up."""
    cfg = SupervisorConfig(dead_after=3, blind=True)  # the crash-loop limits as shipped: 6 in 3 h
    stalled = view(STALE, session="s1", chunks=40)
    decisions = run([(PageState.UNKNOWN, stalled)] * (2 * 360), cfg=cfg, step=10.0)  # 2 h of 10 s polls
    assert Action.STOP not in actions(decisions) and Cause.THRASHING not in [d.cause for d in decisions]
    assert actions(decisions).count(Action.RUN_ALL) > cfg.crash_loop_restarts  # it did keep trying
    assert decisions[-1].memory.restarts == ()
    # the sync comes back: the same session, still running, is alive; nothing is counted
    back = run([(PageState.UNKNOWN, view(FRESH, session="s1", seq=9, chunks=41, written_at=8300.0))],
               mem=decisions[-1].memory, start=8300.0)
    assert back[0].action is Action.WAIT and back[0].memory.restarts == () and back[0].memory.recovering_since is None


def test_recovery_walks_through_the_dialogs_then_a_new_session_is_recovered():
    stale = view(STALE)
    rounds = [(PageState.DISCONNECTED, stale), (PageState.IDLE, stale), (PageState.AUTHORSHIP, stale),
              (PageState.DRIVE_CONSENT, stale), (PageState.DRIVE_POPUP, stale), (PageState.RUNNING, stale),
              (PageState.RUNNING, view(FRESH, session="s2"))]
    decisions = run(rounds, step=2.0)
    assert actions(decisions) == [Action.RECONNECT, Action.RUN_ALL, Action.RUN_ANYWAY, Action.CONNECT_DRIVE,
                                  Action.COMPLETE_DRIVE_POPUP, Action.WAIT, Action.WAIT]
    last = decisions[-1]
    assert last.notify is Notice.RECOVERED
    assert last.memory.bad_streak == 0 and last.memory.recovering_since is None and last.memory.attempts == 0


def test_a_step_on_an_unchanged_page_is_repeated_no_sooner_than_the_retry_time():
    decisions = run([(PageState.DISCONNECTED, view(STALE))] * 6, step=5.0)  # offline: Reconnect does nothing
    assert actions(decisions) == [Action.RECONNECT, Action.WAIT, Action.WAIT, Action.WAIT, Action.RECONNECT,
                                  Action.WAIT]


def test_the_loop_is_hurried_while_the_page_changes_during_a_recovery_only():
    healthy = run([(PageState.RUNNING, view(FRESH, seq=i, written_at=2000.0)) for i in range(3)])
    assert not any(d.hurry for d in healthy)
    stuck = run([(PageState.DISCONNECTED, view(STALE))] * 8, step=10.0)
    assert stuck[0].hurry and not stuck[-1].hurry  # the page has not changed for over a minute


def test_no_new_session_after_the_recovery_timeout_reloads_and_backs_off_doubling():
    cfg = SupervisorConfig(dead_after=1, recovery_timeout_seconds=50, retry_backoff_start=10, retry_backoff_cap=25,
                           crash_loop_restarts=100)
    mem = Memory(session="s1")
    stale = view(STALE)
    first = decide(PageState.IDLE, stale, mem, 0, cfg)
    assert first.action is Action.RUN_ALL
    timeout = decide(PageState.IDLE, stale, first.memory, 60, cfg)
    assert timeout.action is Action.RELOAD and timeout.memory.next_try == 70
    assert decide(PageState.IDLE, stale, timeout.memory, 65, cfg).action is Action.WAIT
    again = decide(PageState.IDLE, stale, timeout.memory, 71, cfg)
    assert again.action is Action.RUN_ALL
    second_timeout = decide(PageState.IDLE, stale, again.memory, 130, cfg)
    assert second_timeout.memory.next_try == 130 + 20
    third = decide(PageState.IDLE, stale, second_timeout.memory, 151, cfg)
    third_timeout = decide(PageState.IDLE, stale, third.memory, 210, cfg)
    assert third_timeout.memory.next_try == 210 + 25  # capped


def test_a_session_that_ended_itself_is_restarted_at_once():
    ended = view(FRESH, phase=hb.RESTARTABLE, cause=hb.DRIVE_TIMEOUT, written_at=999.0)
    decisions = run([(PageState.IDLE, ended)])
    assert actions(decisions) == [Action.RUN_ALL] and decisions[0].cause is Cause.RUNTIME_LOST


@pytest.mark.parametrize("phase,action,notify,cause", [
    (hb.DONE, Action.STOP, Notice.DONE, Cause.JOB_DONE),
    (hb.FAILED, Action.STOP, Notice.FAILED, Cause.CODE_ERROR),
    (hb.BLOCKED, Action.WAIT, Notice.BLOCKED, Cause.JOB_BLOCKED),
])
def test_the_notebooks_final_word_wins_and_is_told_once(phase, action, notify, cause):
    final = view(STALE, phase=phase, reason="r", action="a")
    decisions = run([(PageState.DISCONNECTED, final)] * 4)
    assert decisions[0].action is action and decisions[0].notify is notify and decisions[0].cause is cause
    assert all(d.action in (Action.WAIT, action) for d in decisions)
    assert [d.notify for d in decisions[1:]] == [None] * 3
    assert not any(d.action in (Action.RECONNECT, Action.RUN_ALL) for d in decisions)


def test_a_restarted_job_seen_first_when_already_done_is_told_recovered_and_done():
    stale = view(STALE)
    rounds = [(PageState.DISCONNECTED, stale), (PageState.IDLE, stale), (PageState.RUNNING, stale),
              (PageState.IDLE, view(FRESH, session="s2", phase=hb.DONE))]  # it finished between two looks
    last = run(rounds, step=2.0)[-1]
    assert last.notices == (Notice.RECOVERED, Notice.DONE) and last.notify is Notice.DONE
    assert last.action is Action.STOP and last.to_dict()["notices"] == ["recovered", "done"]


@pytest.mark.parametrize("heartbeat_cause,cause", [(hb.NO_GPU, Cause.GPU_UNAVAILABLE),
                                                   (hb.DRIVE_FULL, Cause.DRIVE_FULL)])
def test_a_blocked_job_is_named_by_the_cause_table(heartbeat_cause, cause):
    decision = run([(PageState.IDLE, view(FRESH, phase=hb.BLOCKED, cause=heartbeat_cause))])[0]
    assert decision.cause is cause and decision.action is Action.WAIT


def test_done_can_stay():
    cfg = SupervisorConfig(on_done="stay")
    decisions = run([(PageState.IDLE, view(phase=hb.DONE))] * 2, cfg=cfg)
    assert actions(decisions) == [Action.WAIT, Action.WAIT]
    assert decisions[0].notify is Notice.DONE and decisions[1].notify is None


@pytest.mark.parametrize("page,cause", [(PageState.CAPTCHA, Cause.CAPTCHA),
                                        (PageState.SIGNED_OUT, Cause.LOGIN_REQUIRED)])
def test_human_pages_notify_once_then_resume_by_themselves(page, cause):
    stale = view(STALE)
    decisions = run([(page, stale)] * 5 + [(PageState.DISCONNECTED, stale)] * 3 + [(page, stale)])
    assert [d.notify for d in decisions[:5]] == [Notice.NEEDS_HUMAN, None, None, None, None]
    assert decisions[0].action is Action.NOTIFY_HUMAN and decisions[0].cause is cause
    assert all(d.action is Action.WAIT for d in decisions[1:5])
    assert Action.RECONNECT in actions(decisions[5:8])
    assert decisions[-1].notify is Notice.NEEDS_HUMAN  # a new CAPTCHA later is told again


def test_what_the_human_is_asked_to_do_can_come_from_the_hands():
    cfg = SupervisorConfig(human_hints={"LOGIN_REQUIRED": "run 'colab sessions' and sign in again"})
    decision = run([(PageState.SIGNED_OUT, view(STALE))], cfg=cfg)[0]
    assert decision.reason == "LOGIN_REQUIRED: run 'colab sessions' and sign in again"
    assert run([(PageState.CAPTCHA, view(STALE))], cfg=cfg)[0].reason == "CAPTCHA: waiting for you in the browser"


@pytest.mark.parametrize("refusal", [PageState.GPU_LIMIT, PageState.BACKEND_UNAVAILABLE])
def test_usage_limits_and_backend_refusals_are_dismissed_and_backed_off_doubling(refusal):
    stale = view(STALE)
    mem = Memory(session="s1", bad_streak=5)
    first = decide(refusal, stale, mem, 0, CFG)
    assert first.action is Action.DISMISS_GPU_LIMIT and first.cause is Cause.GPU_UNAVAILABLE
    assert first.memory.gpu_wait_until == 1800
    waiting = decide(PageState.DISCONNECTED, stale, first.memory, 100, CFG)
    assert waiting.action is Action.WAIT
    retry = decide(PageState.DISCONNECTED, stale, waiting.memory, 1801, CFG)
    assert retry.action is Action.RECONNECT
    second = decide(refusal, stale, retry.memory, 1802, CFG)
    assert second.memory.gpu_wait_until == 1802 + 3600
    third = decide(refusal, stale, second.memory, 6000, CFG)
    assert third.memory.gpu_wait_until == 6000 + 7200  # capped


def test_a_crash_loop_of_run_all_to_dead_runtimes_without_progress_gives_up():
    cfg = SupervisorConfig(dead_after=1, recovery_timeout_seconds=10_000, crash_loop_restarts=3, crash_loop_hours=1)
    mem = Memory(session="s0")
    decisions = []
    for i in range(6):
        # each restart yields a new session that dies again at once, with no new chunk
        d = decide(PageState.IDLE, view(STALE, session=f"s{i}", chunks=7), mem, i * 60.0, cfg)
        mem = d.memory
        decisions.append(d)
    stop = next(d for d in decisions if d.action is Action.STOP)
    assert stop.cause is Cause.THRASHING and stop.notify is Notice.GIVING_UP


def test_reloads_without_run_all_never_count_as_a_crash_loop():
    cfg = SupervisorConfig(dead_after=1, recovery_timeout_seconds=60, retry_backoff_start=10, retry_backoff_cap=10,
                           crash_loop_restarts=2, crash_loop_hours=3)
    decisions = run([(PageState.UNKNOWN, view(STALE))] * 200, cfg=cfg, step=15.0)  # the page never loads
    assert Action.RELOAD in actions(decisions) and Action.STOP not in actions(decisions)
    assert decisions[-1].memory.restarts == ()


def test_restarts_with_progress_are_not_a_crash_loop():
    cfg = SupervisorConfig(dead_after=1, recovery_timeout_seconds=10_000, crash_loop_restarts=3, crash_loop_hours=1)
    mem = Memory(session="s0")
    for i in range(8):
        d = decide(PageState.IDLE, view(STALE, session=f"s{i}", chunks=i), mem, i * 60.0, cfg)
        mem = d.memory
        assert d.action is not Action.STOP


def test_blind_mode_sends_one_run_all_per_attempt():
    cfg = SupervisorConfig(dead_after=1, blind=True, recovery_timeout_seconds=100)
    decisions = run([(PageState.UNKNOWN, view(STALE))] * 4, cfg=cfg)
    assert actions(decisions) == [Action.RUN_ALL, Action.WAIT, Action.WAIT, Action.WAIT]


def test_missing_drive_folder_is_named_not_restarted():
    no_source = BeatView(MISSING, None, source_ok=False)
    decisions = run([(PageState.IDLE, no_source)] * 4, mem=Memory())
    assert all(d.action is Action.WAIT for d in decisions)
    assert decisions[0].cause is Cause.NO_HEARTBEAT_SOURCE and decisions[0].notify is Notice.NEEDS_HUMAN
    assert [d.notify for d in decisions[1:]] == [None] * 3


def test_a_never_started_job_is_started():
    missing = BeatView(MISSING, None)
    decisions = run([(PageState.IDLE, missing)] * 3, mem=Memory())
    assert decisions[-1].action is Action.RUN_ALL


pages = st.lists(st.sampled_from(list(PageState)), min_size=1, max_size=60)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pages, st.floats(min_value=0.5, max_value=600))
def test_property_a_heartbeat_that_keeps_advancing_never_gets_run_all(page_list, step):
    # every round a new beat, written since the previous look, whatever the page shows
    rounds = [(page, view(FRESH, seq=i, written_at=1000.0 + (i - 0.5) * step)) for i, page in enumerate(page_list)]
    assert Action.RUN_ALL not in actions(run(rounds, step=step))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(list(PageState)), st.sampled_from(list(Verdict)),
                          st.sampled_from(list(hb.Phase)), st.integers(0, 3), st.booleans()), max_size=60))
def test_property_any_sequence_of_pages_and_heartbeats_is_decided(script):
    mem, now = Memory(), 0.0
    for page, verdict, phase, session, readable in script:
        bv = BeatView(verdict, beat(session=f"s{session}", phase=phase) if readable else None,
                      since_change=now, written_at=now - 1, unreadable_for=now if verdict is CORRUPT else None)
        decision = decide(page, bv, mem, now, CFG)
        assert isinstance(decision.action, Action) and decision.reason
        mem, now = decision.memory, now + 7.0


def test_a_job_of_another_name_begun_after_our_run_all_is_named_once_and_nothing_is_pressed_again():
    missing = BeatView(MISSING, None, since_change=1e6)
    first = run([(PageState.IDLE, missing)] * 3, mem=Memory())
    assert actions(first).count(Action.RUN_ALL) == 1  # the first start of a job that never ran
    ran = first[-1].memory.first_run_all_at
    began = BeatView(MISSING, None, since_change=1e6, other_job="castle", other_job_began=ran + 5)
    pages = [PageState.RUNNING, PageState.IDLE, PageState.DISCONNECTED, PageState.IDLE] * 10
    decisions = run([(page, began) for page in pages], mem=first[-1].memory, start=ran + 10)
    assert set(actions(decisions)) == {Action.WAIT}
    assert [n for d in decisions for n in d.notices] == [Notice.OTHER_JOB]
    assert "keepalive run --job castle" in decisions[0].reason and decisions[0].cause is Cause.OTHER_JOB


def test_a_job_of_another_name_already_running_elsewhere_does_not_stop_a_first_start():
    beside = BeatView(MISSING, None, since_change=1e6, other_job="castle", other_job_began=0.0)
    assert Action.RUN_ALL in actions(run([(PageState.IDLE, beside)] * 5, mem=Memory()))
