"""What to do next: a pure function of (page, heartbeat, memory, now, config).

Two witnesses. The page is the quick one: it shows a lost runtime within seconds. The heartbeat is
the slow one (Drive for desktop delivers it 5–120 s late, and sometimes not for hours) but it has
the veto: a heartbeat that advances is never restarted. ``decide`` applies ``RULES`` in order; each
rule is a small pure function that decides, or passes the round on (with its memory updated):

1. ``stopped``: after done, failed or giving up, nothing more.
2. ``new_session``: a heartbeat with a new session id means a (re)start worked: every counter is reset.
3. ``final_word``: the notebook's own word wins: ``done`` → stop (or stay); ``failed`` → never
   restart; ``blocked`` → tell the human what to do, and wait.
   ``offline``: Colab cannot be reached (the browser's error page, "Unable to connect to the runtime"):
   nothing on the page is acted on; told once; the notebook is loaded again with back-off (doubling,
   capped), in the same browser; any recovery under way starts afresh once Colab is back.
   ``colab_policy``: Colab stopped the runtime for its terms (disallowed code, a terms notice, an appeal
   link): told once, and from then on nothing is reconnected or run until a new session appears (the
   human ran it) or the daemon is started again.
4. ``human_needed``: only a human may answer the idle check (CAPTCHA) or sign in: notify once, wait,
   and carry on by itself once the page no longer shows it.
   ``other_job``: the Drive holds no heartbeat of the job watched, but a job of another name began a session
   there after this daemon's Run all (the notebook runs a job of another name): told once, with the command
   that watches it; nothing is pressed (a Run all would start that other job again for nothing). A job of
   another name that was already running (another notebook, watched by its own daemon) stops nothing.
5. ``usage_limit``: GPU usage limit or no backend: close the dialog (never "without GPU") and back
   off, doubling.
6. ``backing_off``: while a back-off runs, wait.
7. ``page_evidence``: the page shows the runtime gone (disconnected dialog, Connect/Reconnect), or
   the notebook wrote that its session ended by itself (``restartable``): a recovery starts now, with
   no debounce — Reconnect is harmless, it re-attaches to a live VM.
8. ``alive``: a heartbeat that advances is never restarted: fresh (changed within the grace) and,
   once the page has shown the runtime gone, written after that.
9. ``no_source``: the PC's Drive folder is not there: tell the human, never restart on no information.
10. ``stalled``: the page shows the job running but its heartbeat stopped arriving: "heartbeat source
    stalled" (a sync pause or an offline PC), told once with the measured lag; never a reload or a
    restart. (A Run all just sent is given ``recovery_timeout_seconds`` to show a new session first.)
11. ``debounce``: without page evidence, "dead" needs ``dead_after`` consecutive stale or missing
    rounds; an unreadable heartbeat counts only once it stayed unreadable past the grace (told once).
    (SkyPilot #10155 and #10162 restarted healthy jobs on single failed probes.)
12. ``recover``: reconnect, Run all, answer the dialogs, then wait for a heartbeat with a new
    session (a step on an unchanged page, and Run all, are repeated no sooner than
    ``step_retry_seconds``); none within ``recovery_timeout_seconds`` → reload and back off
    (doubling, capped). A live VM re-attached (the page shows the job running, no Run all sent)
    ends the recovery. Only a Run all sent to a dead runtime and followed by a new session is a restart (a
    Run all that no session followed, e.g. keys mode pressing blind through a Drive sync stall, is a failed
    recovery, retried with back-off, never counted); restarts faster than ``crash_loop_restarts`` in
    ``crash_loop_hours`` without progress stop the watch (THRASHING).

While a recovery runs and the page changed lately, a decision asks the loop to look again soon
(``hurry``), so that each step follows the page in seconds, not one per poll.
Nothing here reads a file, a clock or a browser: the loop passes all of it in.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from colab_side import heartbeat as hb
from keepalive.states import HEARTBEAT_CAUSES, Action, Cause, Notice, PageState, Verdict


@dataclass(frozen=True)
class BeatView:
    """What the heartbeat watch saw this round (times on the loop's clock, seconds)."""

    verdict: Verdict
    beat: hb.Heartbeat | None = None  # the last heartbeat that could be read
    since_change: float | None = None  # since its (session, seq) last changed
    sync_lag: float | None = None  # Colab's write time to the PC first seeing it
    source_ok: bool = True  # False: the Drive folder holding the job is not there at all
    written_at: float | None = None  # when the last beat was written, estimated never too early
    unreadable_for: float | None = None  # how long the file has been unreadable in a row
    error: str | None = None  # why it cannot be read, one line
    other_job: str | None = None  # no heartbeat of this job, but a job of this name began a session on the same Drive
    other_job_began: float | None = None  # when that session was first seen


@dataclass(frozen=True)
class SupervisorConfig:
    grace_seconds: float = 300.0
    dead_after: int = 3
    recovery_timeout_seconds: float = 900.0
    retry_backoff_start: float = 10.0
    retry_backoff_cap: float = 600.0
    gpu_backoff_start: float = 1800.0
    gpu_backoff_cap: float = 4 * 3600.0
    crash_loop_restarts: int = 6
    crash_loop_hours: float = 3.0
    fast_poll_seconds: float = 1.5  # how soon to look again while a recovery follows the page
    follow_seconds: float = 60.0  # keep looking fast this long after the page last changed
    step_retry_seconds: float = 30.0  # the same step on an unchanged page is repeated no sooner
    offline_backoff_start: float = 15.0  # Colab unreachable: look again after this long, doubling...
    offline_backoff_cap: float = 300.0  # ...up to this
    on_done: str = "exit"  # exit, or stay
    blind: bool = False  # keys mode: the page is never seen, so Run all is the one way back
    human_hints: dict = field(default_factory=dict)  # cause value → what the human should do (the hands know)


@dataclass(frozen=True)
class Memory:
    """Everything the supervisor remembers between rounds."""

    session: str | None = None  # last heartbeat session seen
    bad_streak: int = 0
    recovering_since: float | None = None
    evidence_at: float | None = None  # when the page (or the notebook) first said the runtime was gone
    run_all_at: float | None = None  # when this attempt sent Run all
    first_run_all_at: float | None = None  # when this daemon first sent Run all
    attempts: int = 0  # failed recovery attempts in a row
    next_try: float = 0.0
    gpu_backoff: float = 0.0
    gpu_wait_until: float = 0.0
    notified: frozenset = frozenset()  # causes the human was already told of
    restarts: tuple = ()  # (time, chunks_done) of every Run all sent to a dead runtime that a new session followed
    pending_restart: tuple | None = None  # (time, chunks_done) of the last such Run all, until a new session comes
    stopped: bool = False
    page: PageState | None = None  # the page last seen, and since when
    page_since: float = 0.0
    last_step: tuple | None = None  # (action, page, time) of the last step taken
    offline_since: float | None = None  # when Colab was first seen unreachable in this spell
    offline_looks: int = 0  # reloads so far in this spell (the back-off step)
    offline_next: float = 0.0  # when to load the notebook again


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    memory: Memory
    cause: Cause | None = None
    notices: tuple = ()  # what to tell the human, in the order the rules told it (one round can recover and end)
    hurry: bool = False  # look again after fast_poll_seconds, not the normal poll

    @property
    def notify(self) -> Notice | None:
        """The notice of the rule that decided (else the last one told on the way)."""
        return self.notices[-1] if self.notices else None

    def to_dict(self) -> dict:
        return {"action": self.action.value, "reason": self.reason,
                "cause": self.cause.value if self.cause else None,
                "notify": self.notify.value if self.notify else None,
                "notices": [notice.value for notice in self.notices]}


@dataclass(frozen=True)
class Round:
    """One round's inputs, passed from rule to rule."""

    page: PageState
    beat: BeatView
    mem: Memory
    now: float
    cfg: SupervisorConfig
    notices: tuple = ()  # told by earlier rules that passed the round on

    def conclude(self, action: Action, reason: str, cause: Cause | None = None, notify: Notice | None = None,
               **memory) -> Decision:
        return Decision(action, reason, replace(self.mem, **memory), cause, self._told(notify))

    def _told(self, notify: Notice | None) -> tuple:
        return self.notices + (notify,) if notify else self.notices

    def tell_once(self, cause: Cause, notice: Notice) -> tuple[Memory, Notice | None]:
        if cause.value in self.mem.notified:
            return self.mem, None
        return replace(self.mem, notified=self.mem.notified | {cause.value}), notice

    def forget(self, *causes: Cause) -> Memory:
        return replace(self.mem, notified=self.mem.notified - {c.value for c in causes})

    def passing(self, mem: Memory, notify: Notice | None = None) -> "Round":
        return replace(self, mem=mem, notices=self._told(notify))


HUMAN_PAGES = {PageState.CAPTCHA: Cause.CAPTCHA, PageState.SIGNED_OUT: Cause.LOGIN_REQUIRED}
REFUSAL_PAGES = (PageState.GPU_LIMIT, PageState.BACKEND_UNAVAILABLE)  # close, never "without GPU"; back off
GONE_PAGES = (PageState.DISCONNECTED,)  # the page itself says the runtime is gone
RUNNING_PAGES = (PageState.RUNNING, PageState.BUSY)  # connected and executing
# How a recovery answers each page it meets.
RECOVERY_STEPS = {
    PageState.DISCONNECTED: Action.RECONNECT,
    PageState.IDLE: Action.RUN_ALL,
    PageState.AUTHORSHIP: Action.RUN_ANYWAY,
    PageState.DRIVE_CONSENT: Action.CONNECT_DRIVE,
    PageState.DRIVE_POPUP: Action.COMPLETE_DRIVE_POPUP,
    PageState.CONNECTING: Action.WAIT,
    PageState.RUNNING: Action.WAIT,
    PageState.BUSY: Action.WAIT,
    PageState.UNKNOWN: Action.RELOAD,
}
STALL_CAUSES = (Cause.HEARTBEAT_STALLED, Cause.HEARTBEAT_UNREADABLE)
RECOVERY_RESET = dict(recovering_since=None, evidence_at=None, run_all_at=None, last_step=None)


def _backoff(start: float, cap: float, attempts: int) -> float:
    return min(cap, start * 2 ** max(0, attempts - 1))


def _seconds(value: float | None) -> str:
    return "?" if value is None else f"{value:.0f} s"


def _unreadable_too_long(r: Round) -> bool:
    return r.beat.verdict is Verdict.CORRUPT and (r.beat.unreadable_for or 0.0) > r.cfg.grace_seconds


def _heartbeat_bad(r: Round) -> bool:
    """Stale, missing, or unreadable past the grace: what counts towards "dead"."""
    return r.beat.verdict in (Verdict.STALE, Verdict.MISSING) or _unreadable_too_long(r)


def release_due(beat: hb.Heartbeat | None, seen_alive, released) -> bool:
    """Whether this daemon's runtime has ended and is still to be released: its session wrote its own final word
    (done, failed, blocked), this daemon saw that session alive before, and has not released it yet. The caller
    still waits while the page shows a job running (``RUNNING_PAGES``): a final heartbeat of an earlier session
    beside a running page is history, not this runtime's."""
    return beat is not None and beat.final and beat.session in seen_alive and beat.session not in released


# --- the rules, in order ------------------------------------------------------------------------------


def stopped(r: Round):
    return r.conclude(Action.WAIT, "stopped") if r.mem.stopped else r


def new_session(r: Round):
    current = r.beat.beat
    if current is None or current.session == r.mem.session:
        return r
    recovered = r.mem.session is not None and (r.mem.recovering_since is not None or r.mem.attempts > 0)
    keep = {c for c in r.mem.notified if c in (Cause.CAPTCHA.value, Cause.LOGIN_REQUIRED.value)}
    restarts = r.mem.restarts + ((r.mem.pending_restart,) if r.mem.pending_restart else ())
    mem = replace(r.mem, session=current.session, bad_streak=0, attempts=0, next_try=0.0, gpu_backoff=0.0,
                  notified=frozenset(keep), restarts=restarts, pending_restart=None, **RECOVERY_RESET)
    return r.passing(mem, Notice.RECOVERED if recovered else None)


def final_word(r: Round):
    current = r.beat.beat
    if current is None or not current.final:
        return r
    if current.phase == hb.Phase.DONE:
        mem, told = r.tell_once(Cause.JOB_DONE, Notice.DONE)
        if r.cfg.on_done == "exit":
            return replace(r, mem=mem).conclude(Action.STOP, "the job is done", Cause.JOB_DONE, told, stopped=True)
        return replace(r, mem=mem).conclude(Action.WAIT, "the job is done; staying as configured", Cause.JOB_DONE, told)
    if current.phase == hb.Phase.FAILED:
        cause = HEARTBEAT_CAUSES.get(current.cause, Cause.CODE_ERROR)
        mem, told = r.tell_once(cause, Notice.FAILED)
        return replace(r, mem=mem).conclude(Action.STOP, f"the job failed: {current.reason}", cause, told, stopped=True)
    cause = HEARTBEAT_CAUSES.get(current.cause, Cause.JOB_BLOCKED)
    mem, told = r.tell_once(cause, Notice.BLOCKED)
    return replace(r, mem=mem).conclude(Action.WAIT, f"the job is blocked: {current.reason} — {current.action}",
                                      cause, told)


OFFLINE_RESET = dict(offline_since=None, offline_looks=0, offline_next=0.0)
HUMAN_HINTS = {Cause.COLAB_POLICY.value: "Colab stopped the runtime for its terms (disallowed code, a terms notice or "
                                         "an appeal): read it in the browser; nothing is reconnected or run again "
                                         "until you start the job yourself or restart keepalive"}


def offline(r: Round):
    if r.page is not PageState.OFFLINE:
        if r.mem.offline_since is None:
            return r
        return r.passing(replace(r.forget(Cause.OFFLINE), **OFFLINE_RESET))  # back: judged afresh from here
    mem, told = r.tell_once(Cause.OFFLINE, Notice.OFFLINE)
    since = r.now if r.mem.offline_since is None else r.mem.offline_since
    looks = r.mem.offline_looks if r.mem.offline_since is not None else 0
    due = r.mem.offline_since is not None and r.now >= r.mem.offline_next
    looks += 1 if due else 0
    wait = _backoff(r.cfg.offline_backoff_start, r.cfg.offline_backoff_cap, looks + 1)
    mem = replace(mem, offline_since=since, offline_looks=looks, bad_streak=0, **RECOVERY_RESET,
                  offline_next=r.now + wait if due or r.mem.offline_since is None else r.mem.offline_next)
    spell = f" for {r.now - since:.0f} s" if r.now > since else ""
    reason = (f"OFFLINE: Colab cannot be reached{spell} (this PC offline, DNS, or an outage); "
              f"nothing is pressed; next look in {mem.offline_next - r.now:.0f} s")
    return replace(r, mem=mem).conclude(Action.RELOAD if due else Action.WAIT, reason, Cause.OFFLINE, told)


def colab_policy(r: Round):
    if r.page is not PageState.POLICY and Cause.COLAB_POLICY.value not in r.mem.notified:
        return r
    mem, told = r.tell_once(Cause.COLAB_POLICY, Notice.COLAB_POLICY)
    return replace(r, mem=replace(mem, bad_streak=0, **RECOVERY_RESET)).conclude(
        Action.NOTIFY_HUMAN if told else Action.WAIT, f"{Cause.COLAB_POLICY.value}: {HUMAN_HINTS[Cause.COLAB_POLICY.value]}",
        Cause.COLAB_POLICY, told)


def human_needed(r: Round):
    cause = HUMAN_PAGES.get(r.page)
    if cause is None:
        return r.passing(r.forget(*HUMAN_PAGES.values()))
    mem, told = r.tell_once(cause, Notice.NEEDS_HUMAN)
    hint = r.cfg.human_hints.get(cause.value, "waiting for you in the browser")
    return replace(r, mem=mem).conclude(Action.NOTIFY_HUMAN if told else Action.WAIT, f"{cause.value}: {hint}",
                                      cause, told)


def other_job(r: Round):
    began, ran = r.beat.other_job_began, r.mem.first_run_all_at
    if r.beat.beat is not None or not r.beat.other_job or ran is None or began is None or began < ran:
        return r
    mem, told = r.tell_once(Cause.OTHER_JOB, Notice.OTHER_JOB)
    command = r.cfg.human_hints.get(Cause.OTHER_JOB.value, "keepalive run --job {job}").replace("{job}", r.beat.other_job)
    reason = (f"this Drive holds no heartbeat of the job watched, but job '{r.beat.other_job}' began there after "
              f"this notebook's Run all: the notebook runs that job; nothing is pressed. To watch it: {command}")
    return replace(r, mem=replace(mem, bad_streak=0, **RECOVERY_RESET)).conclude(Action.WAIT, reason, Cause.OTHER_JOB,
                                                                               told)


def usage_limit(r: Round):
    if r.page not in REFUSAL_PAGES:
        return r
    wait = min(r.cfg.gpu_backoff_cap, r.mem.gpu_backoff * 2 if r.mem.gpu_backoff else r.cfg.gpu_backoff_start)
    return r.conclude(Action.DISMISS_GPU_LIMIT, f"{r.page.value}: next try in {wait:.0f} s", Cause.GPU_UNAVAILABLE,
                    gpu_backoff=wait, gpu_wait_until=r.now + wait, **RECOVERY_RESET)


def backing_off(r: Round):
    until = max(r.mem.next_try, r.mem.gpu_wait_until)
    if r.now >= until:
        return r
    return r.conclude(Action.WAIT, f"backing off for {until - r.now:.0f} s", Cause.RUNTIME_LOST)


def page_evidence(r: Round):
    current = r.beat.beat
    ended_itself = current is not None and current.phase == hb.Phase.RESTARTABLE
    if r.mem.evidence_at is not None or not (r.page in GONE_PAGES or ended_itself):
        return r
    since = r.now if r.mem.recovering_since is None else r.mem.recovering_since
    return r.passing(replace(r.mem, evidence_at=r.now, recovering_since=since))


def alive(r: Round):
    beat = r.beat
    if beat.verdict is not Verdict.FRESH:
        return r
    evidence = r.mem.evidence_at
    if evidence is not None and (beat.written_at is None or beat.written_at <= evidence):
        return r  # late beats written before the page showed the runtime gone prove nothing
    mem = replace(r.forget(*STALL_CAUSES), bad_streak=0, attempts=0, **RECOVERY_RESET)
    reason = "heartbeat fresh" if evidence is None else "heartbeat written after the page showed it gone: alive"
    return replace(r, mem=mem).conclude(Action.WAIT, reason)


def no_source(r: Round):
    if r.beat.source_ok:
        return r
    mem, told = r.tell_once(Cause.NO_HEARTBEAT_SOURCE, Notice.NEEDS_HUMAN)
    return replace(r, mem=mem).conclude(Action.WAIT, "the Drive folder with the heartbeat is not found: set "
                                      "job.drive_folder", Cause.NO_HEARTBEAT_SOURCE, told)


def stalled(r: Round):
    if r.page not in RUNNING_PAGES or not _heartbeat_bad(r):
        return r
    if r.beat.verdict is Verdict.MISSING and (r.beat.since_change or 0.0) <= r.cfg.grace_seconds:
        return r  # just started watching: the first heartbeat may still be on its way
    if r.mem.run_all_at is not None and r.now - r.mem.run_all_at <= r.cfg.recovery_timeout_seconds:
        return r  # a Run all just sent: the new session's first heartbeat is on its way
    beat = r.beat
    mem, told = r.tell_once(Cause.HEARTBEAT_STALLED, Notice.SOURCE_STALLED)
    reason = (f"heartbeat source stalled: the page shows the job running, but no new heartbeat for "
              f"{_seconds(beat.since_change)} (sync lag last measured {_seconds(beat.sync_lag)}); "
              "is Drive for desktop running and online? Nothing is restarted")
    return replace(r, mem=replace(mem, bad_streak=0, **RECOVERY_RESET)).conclude(
        Action.WAIT, reason, Cause.HEARTBEAT_STALLED, told)


def debounce(r: Round):
    mem, told = r.mem, None
    if _unreadable_too_long(r):
        mem, told = r.tell_once(Cause.HEARTBEAT_UNREADABLE, Notice.HEARTBEAT_UNREADABLE)
    if r.mem.recovering_since is not None:
        return r.passing(mem, told)
    if not _heartbeat_bad(r):
        return replace(r, mem=mem).conclude(Action.WAIT, f"heartbeat unreadable this round ({r.beat.error}); "
                                          "not counted", None, told)
    mem = replace(mem, bad_streak=mem.bad_streak + 1)
    what = r.beat.verdict.value
    if _unreadable_too_long(r):
        what = f"unreadable for {_seconds(r.beat.unreadable_for)} ({r.beat.error}), counted as stale"
    if mem.bad_streak < r.cfg.dead_after:
        return replace(r, mem=mem).conclude(
            Action.WAIT, f"heartbeat {what} ({mem.bad_streak} of {r.cfg.dead_after})", None, told)
    return r.passing(replace(mem, recovering_since=r.now), told)


def recover(r: Round):
    mem, cfg, now, page = r.mem, r.cfg, r.now, r.page
    if now - mem.recovering_since > cfg.recovery_timeout_seconds:
        attempts = mem.attempts + 1
        return r.conclude(Action.RELOAD, f"no new heartbeat {cfg.recovery_timeout_seconds:.0f} s into the recovery; "
                        f"retrying after back-off (attempt {attempts})", Cause.RUNTIME_LOST, attempts=attempts,
                        next_try=now + _backoff(cfg.retry_backoff_start, cfg.retry_backoff_cap, attempts),
                        **RECOVERY_RESET)
    if cfg.blind and page is PageState.UNKNOWN:
        step = Action.RUN_ALL if mem.run_all_at is None else Action.WAIT  # one blind Run all per attempt
    else:
        step = RECOVERY_STEPS.get(page, Action.WAIT)
    if page in RUNNING_PAGES and mem.run_all_at is None:
        return r.conclude(Action.WAIT, "re-attached to the runtime: the page shows the job running", None,
                        **RECOVERY_RESET)
    if step is Action.RUN_ALL and mem.run_all_at is not None:
        last = mem.run_all_at  # the page may show idle for a moment between the dialogs: one Run all is enough
    else:
        last = mem.last_step[2] if mem.last_step is not None and mem.last_step[:2] == (step, page) else None
    if step is not Action.WAIT and last is not None and now - last < cfg.step_retry_seconds:
        return r.conclude(Action.WAIT, f"{step.value} sent {now - last:.0f} s ago; page {page.value}",
                        Cause.RUNTIME_LOST)
    if step is Action.RUN_ALL and mem.run_all_at is None:
        chunks = r.beat.beat.chunks_done if r.beat.beat else 0
        recent = [t for t in mem.restarts if t[0] >= now - cfg.crash_loop_hours * 3600] + [(now, chunks)]
        if len(recent) > cfg.crash_loop_restarts and len({c for _, c in recent}) == 1:
            mem, told = r.tell_once(Cause.THRASHING, Notice.GIVING_UP)
            return replace(r, mem=mem).conclude(
                Action.STOP, f"{len(recent)} restarts in {cfg.crash_loop_hours:g} h without progress: giving up",
                Cause.THRASHING, told, stopped=True)
        mem = replace(mem, pending_restart=(now, chunks))  # a restart once a new session follows it
    if step is Action.RUN_ALL:
        mem = replace(mem, run_all_at=now, first_run_all_at=mem.first_run_all_at or now)
    if step is not Action.WAIT:
        mem = replace(mem, last_step=(step, page, now))
    why = "the page showed it gone" if mem.evidence_at is not None else f"heartbeat {r.beat.verdict.value}"
    return replace(r, mem=mem).conclude(step, f"job dead ({why}); page {page.value}: {step.value}", Cause.RUNTIME_LOST)


RULES = (stopped, new_session, final_word, offline, colab_policy, human_needed, other_job, usage_limit, backing_off,
         page_evidence, alive, no_source, stalled, debounce, recover)


def decide(page: PageState, beat: BeatView, mem: Memory, now: float, cfg: SupervisorConfig) -> Decision:
    if page is not mem.page:
        mem = replace(mem, page=page, page_since=now)
    outcome = Round(page, beat, mem, now, cfg)
    for rule in RULES:  # the last rule always decides
        outcome = rule(outcome)
        if isinstance(outcome, Decision):
            break
    following = outcome.memory.recovering_since is not None and (
        now - outcome.memory.page_since < cfg.follow_seconds or outcome.action is not Action.WAIT)
    return replace(outcome, hurry=following and outcome.action is not Action.STOP)
