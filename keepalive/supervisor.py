"""What to do next: a pure function of (page, heartbeat, memory, now, config).

The heartbeat is the ground truth for "the job is alive"; the page is only a hint and the hands.
The rules, in the order they are applied:

1. A heartbeat with a new session id means a (re)start worked: every counter is reset.
2. The notebook's own final word wins: ``done`` → notify and stop (or stay); ``failed`` →
   notify with the reason and never restart; ``blocked`` → notify with what to do, and wait.
3. Only a human may answer the idle check (CAPTCHA) or sign in: notify once, wait, and carry on
   by itself once the page no longer shows it.
4. GPU usage limit: close the dialog (never "Connect without GPU") and back off, doubling.
5. A heartbeat whose sequence still advances is alive, whatever the page shows: never restart it.
6. "Dead" needs ``dead_after`` consecutive stale (or missing) observations. A page that cannot be
   read, or a heartbeat that cannot be parsed, is not evidence of death. (SkyPilot #10155 and
   #10162 restarted healthy jobs on single failed probes.)
7. Recovery of a dead job: reconnect, Run all, answer the dialogs, then wait for a heartbeat with a
   new session id; if none comes within ``recovery_timeout_seconds``, back off (doubling, capped)
   and try again. Lost runtimes are recovered without limit, unless restarts come faster than
   ``crash_loop_restarts`` in ``crash_loop_hours`` without any progress between them (THRASHING).

Nothing here reads a file, a clock or a browser: the loop passes all of it in.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from colab_side import heartbeat as hb
from keepalive.states import Action, Cause, PageState

FRESH, STALE, MISSING, CORRUPT = "fresh", "stale", "missing", "corrupt"


@dataclass(frozen=True)
class BeatView:
    """What the heartbeat watch saw this round."""

    verdict: str  # fresh, stale, missing, corrupt
    beat: hb.Heartbeat | None = None  # the last heartbeat that could be read
    since_change: float | None = None  # local seconds since seq or session last changed
    sync_lag: float | None = None  # Colab's write time to the PC first seeing it, seconds
    source_ok: bool = True  # False: the Drive folder holding the job is not there at all


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
    on_done: str = "exit"  # exit, or stay
    blind: bool = False  # keys mode: the page is never seen, so Run all is the one way back


@dataclass(frozen=True)
class Memory:
    """Everything the supervisor remembers between rounds."""

    session: str | None = None  # last heartbeat session seen
    bad_streak: int = 0
    recovering_since: float | None = None
    attempts: int = 0  # failed recovery attempts in a row
    next_try: float = 0.0
    gpu_backoff: float = 0.0
    gpu_wait_until: float = 0.0
    notified: frozenset = frozenset()  # causes the human was already told of
    restarts: tuple = ()  # (time, chunks_done) of every recovery started
    stopped: bool = False


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    memory: Memory
    cause: Cause | None = None
    notify: str | None = None  # done, failed, blocked, needs_human, recovered, giving_up

    def to_dict(self) -> dict:
        return {"action": self.action.value, "reason": self.reason,
                "cause": self.cause.value if self.cause else None, "notify": self.notify}


HUMAN_PAGES = {PageState.CAPTCHA: Cause.CAPTCHA, PageState.SIGNED_OUT: Cause.LOGIN_REQUIRED}
# How a recovery answers each page it meets.
RECOVERY_STEPS = {
    PageState.DISCONNECTED: Action.RECONNECT,
    PageState.IDLE: Action.RUN_ALL,
    PageState.AUTHORSHIP: Action.RUN_ANYWAY,
    PageState.DRIVE_CONSENT: Action.CONNECT_DRIVE,
    PageState.DRIVE_POPUP: Action.COMPLETE_DRIVE_POPUP,
    PageState.CONNECTING: Action.WAIT,
    PageState.RUNNING: Action.WAIT,
    PageState.UNKNOWN: Action.RELOAD,
}


def _notify_once(mem: Memory, cause: Cause, kind: str) -> tuple[Memory, str | None]:
    if cause.value in mem.notified:
        return mem, None
    return replace(mem, notified=mem.notified | {cause.value}), kind


def _beat_cause(beat: hb.Heartbeat, default: Cause) -> Cause:
    mapping = {hb.CODE_ERROR: Cause.CODE_ERROR, hb.DRIVE_ERROR: Cause.DRIVE_ERROR, hb.DRIVE_FULL: Cause.DRIVE_ERROR,
               hb.NO_GPU: Cause.GPU_UNAVAILABLE}
    return mapping.get(beat.cause or "", default)


def _backoff(start: float, cap: float, attempts: int) -> float:
    return min(cap, start * 2 ** max(0, attempts - 1))


def decide(page: PageState, beat: BeatView, mem: Memory, now: float, cfg: SupervisorConfig) -> Decision:
    if mem.stopped:
        return Decision(Action.WAIT, "stopped", mem)
    notify = None
    current = beat.beat

    # 1. a new session: whatever we did worked (or the user restarted it); reset every counter
    if current is not None and current.session != mem.session:
        recovered = mem.session is not None and (mem.recovering_since is not None or mem.attempts > 0)
        mem = replace(mem, session=current.session, bad_streak=0, recovering_since=None, attempts=0,
                      next_try=0.0, gpu_backoff=0.0, notified=frozenset(
                          c for c in mem.notified if c in (Cause.CAPTCHA.value, Cause.LOGIN_REQUIRED.value)))
        notify = "recovered" if recovered else None

    # 2. the notebook's own final word
    if current is not None and current.final:
        if current.phase == hb.DONE:
            mem, told = _notify_once(mem, Cause.JOB_DONE, "done")
            if cfg.on_done == "exit":
                return Decision(Action.STOP, "the job is done", replace(mem, stopped=True), Cause.JOB_DONE, told)
            return Decision(Action.WAIT, "the job is done; staying as configured", mem, Cause.JOB_DONE, told)
        if current.phase == hb.FAILED:
            cause = _beat_cause(current, Cause.CODE_ERROR)
            mem, told = _notify_once(mem, cause, "failed")
            return Decision(Action.STOP, f"the job failed: {current.reason}", replace(mem, stopped=True), cause, told)
        cause = _beat_cause(current, Cause.JOB_BLOCKED)
        mem, told = _notify_once(mem, cause, "blocked")
        return Decision(Action.WAIT, f"the job is blocked: {current.reason} — {current.action}", mem, cause, told)

    # 3. only a human may
    for state, cause in HUMAN_PAGES.items():
        if page is state:
            mem, told = _notify_once(mem, cause, "needs_human")
            return Decision(Action.NOTIFY_HUMAN if told else Action.WAIT,
                            f"{cause.value}: waiting for you in the browser", mem, cause, told)
    mem = replace(mem, notified=frozenset(c for c in mem.notified
                                          if c not in (Cause.CAPTCHA.value, Cause.LOGIN_REQUIRED.value)))

    # 4. GPU usage limit: close it, never accept a CPU runtime, back off
    if page is PageState.GPU_LIMIT:
        wait = min(cfg.gpu_backoff_cap, mem.gpu_backoff * 2 if mem.gpu_backoff else cfg.gpu_backoff_start)
        mem = replace(mem, gpu_backoff=wait, gpu_wait_until=now + wait, recovering_since=None)
        return Decision(Action.DISMISS_GPU_LIMIT, f"GPU usage limit: next try in {wait:.0f} s", mem,
                        Cause.GPU_UNAVAILABLE, notify)

    # 5. alive is alive
    if beat.verdict == FRESH:
        mem = replace(mem, bad_streak=0, recovering_since=None, attempts=0)
        return Decision(Action.WAIT, "heartbeat fresh", mem, None, notify)

    # 6. debounce: only stale or missing heartbeats count; unreadable ones do not
    if beat.verdict == CORRUPT:
        return Decision(Action.WAIT, "heartbeat unreadable this round (half-synced?); not counted", mem, None, notify)
    if not beat.source_ok:
        mem, told = _notify_once(mem, Cause.NO_HEARTBEAT_SOURCE, "needs_human")
        return Decision(Action.WAIT, "the Drive folder with the heartbeat is not found: set job.drive_folder",
                        mem, Cause.NO_HEARTBEAT_SOURCE, told or notify)
    mem = replace(mem, bad_streak=mem.bad_streak + 1)
    if mem.bad_streak < cfg.dead_after and mem.recovering_since is None:
        return Decision(Action.WAIT, f"heartbeat {beat.verdict} ({mem.bad_streak} of {cfg.dead_after})", mem, None, notify)

    # 7. recovery
    if now < max(mem.next_try, mem.gpu_wait_until):
        return Decision(Action.WAIT, f"backing off for {max(mem.next_try, mem.gpu_wait_until) - now:.0f} s", mem,
                        Cause.RUNTIME_LOST, notify)
    if mem.recovering_since is not None and now - mem.recovering_since > cfg.recovery_timeout_seconds:
        attempts = mem.attempts + 1
        mem = replace(mem, recovering_since=None, attempts=attempts,
                      next_try=now + _backoff(cfg.retry_backoff_start, cfg.retry_backoff_cap, attempts))
        return Decision(Action.RELOAD, f"no new heartbeat {cfg.recovery_timeout_seconds:.0f} s after Run all; "
                        f"retrying after back-off (attempt {attempts})", mem, Cause.RUNTIME_LOST, notify)
    started_now = mem.recovering_since is None
    if started_now:
        chunks = current.chunks_done if current else 0
        window = now - cfg.crash_loop_hours * 3600
        recent = [r for r in mem.restarts if r[0] >= window] + [(now, chunks)]
        if len(recent) > cfg.crash_loop_restarts and len({c for _, c in recent}) == 1:
            mem, told = _notify_once(mem, Cause.THRASHING, "giving_up")
            return Decision(Action.STOP, f"{len(recent)} restarts in {cfg.crash_loop_hours:g} h without progress: "
                            "giving up", replace(mem, stopped=True), Cause.THRASHING, told)
        mem = replace(mem, recovering_since=now, restarts=(*mem.restarts, (now, chunks)))
    if cfg.blind and page is PageState.UNKNOWN:
        step = Action.RUN_ALL if started_now else Action.WAIT  # one blind Run all per attempt
    else:
        step = RECOVERY_STEPS.get(page, Action.WAIT)
    return Decision(step, f"job dead (heartbeat {beat.verdict}); page {page.value}: {step.value}", mem,
                    Cause.RUNTIME_LOST, notify)
