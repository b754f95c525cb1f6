"""The daemon's loop: observe → decide → act → log, on a schedule.

Every ``poll_seconds`` it looks at the page (through the hands) and at the heartbeat (through the
watch), asks the supervisor what to do, does it, and writes it down; while a recovery follows the
page (the decision's ``hurry``) it looks again after ``fast_poll_seconds`` instead. A round that
raises is written to the journal and the loop goes on; if the loop itself ends by an error, that is
written down and said in one line before it ends. Every ``reopen_minutes`` it
reloads the notebook in its one tab, as the old ``.bat`` loop did, but without piling up tabs and
never in the middle of a recovery. The hands are the Selenium browser or the keys mode: both
offer ``observe()``, ``act(action)``, ``reopen()`` and ``close()``.
"""

from __future__ import annotations

import signal
import sys
import time
import traceback

import schedule

from colab_side import heartbeat as hb
from colab_side.events import utc_now
from keepalive import death
from keepalive.drive_store import DurableOnPC
from keepalive.states import Action, Cause, Verdict
from keepalive.status import count, describe, headline
from keepalive.supervisor import RUNNING_PAGES, Decision, Memory, decide, release_due

EXIT_CODES = {Cause.JOB_DONE: 0}
LAST_BEATS_KEPT = 6  # a session's last heartbeats kept for its death certificate
RELEASED_KEPT = 50  # sessions whose release is remembered in state.json
RELEASE_WAIT_SECONDS = 300.0  # after the job's last word, how long the page may show it running before release


def _lifetime(beat) -> float | None:
    """How long the session had run at its last beat (by the runtime's clock)."""
    start, end = hb.timestamp(beat.session_started), hb.timestamp(beat.time)
    return None if start is None or end is None else round(max(0.0, end - start))


class Daemon:
    def __init__(self, cfg, hands, watch, journal, notifier, view, clock=time.monotonic):
        self.cfg = cfg
        self.hands = hands
        self.watch = watch
        self.journal = journal
        self.notifier = notifier
        self.view = view
        self.clock = clock
        saved = journal.load_state()
        self.memory = Memory()
        self.state = {"job": cfg.job, "restarts": count(saved.get("restarts")), "last_action": None,
                      "last_reason": None, "last_action_time": None, "cause": None, "last_death": None}
        self._restarts_seen = 0
        self._failed_rounds = 0
        self._chunks = None
        self._last_beats: list = []  # the current session's last heartbeats (its vital signs at its end)
        self._pages_after: set[str] = set()  # the page states seen since the newest of them
        # Sessions whose runtime was released at their end (kept across restarts), and sessions this daemon saw
        # alive (a fresh heartbeat that was not final): only those may be released (supervisor.release_due).
        self._released: list[str] = [s for s in saved.get("released_sessions") or [] if isinstance(s, str)]
        self._seen_alive: set[str] = set()
        self._release_wait_since: float | None = None
        self.watch_last_final: str | None = None  # the session of the final heartbeat last read
        self.durable = DurableOnPC(getattr(watch, "drive_folder", None), cfg.job)
        self.stopping = False
        self._interruptible = False  # a signal now ends the round at once (a browser call can block for long)
        self.final: Decision | None = None
        self.shown: dict = {}  # what the view shows now
        self.scheduler = schedule.Scheduler()

    # --- one round ----------------------------------------------------------------------------------

    def step(self) -> Decision | None:
        """One round; one that raises is written down (and said, once in a row) and None is returned."""
        return self._guarded("round", self._round)

    def _guarded(self, what: str, work):
        try:
            outcome = work()
        except Exception as exc:  # a page, a file or a bug: the watch must go on
            self._failed_rounds += 1
            self.journal.record(f"{what}_failed", error=f"{type(exc).__name__}: {exc}",
                                traceback=traceback.format_exc(limit=10), in_a_row=self._failed_rounds)
            if self._failed_rounds == 1:
                print(f"keepalive: a {what} failed ({type(exc).__name__}: {exc}); carrying on", file=sys.stderr)
            return None
        self._failed_rounds = 0
        return outcome

    def _round(self) -> Decision:
        observation = self.hands.observe()
        beat = self.watch.poll()
        decision = decide(observation.state, beat, self.memory, self.clock(), self.cfg.supervisor)
        self._note_heartbeat(beat, observation.state)
        had_session = self.memory.session is not None
        if self.memory.pending_restart is not None and decision.memory.pending_restart is None and beat.beat:
            self._seen_alive.add(beat.beat.session)  # the session this daemon's Run all started (it may end at once)
        self.memory = decision.memory
        if len(self.memory.restarts) > self._restarts_seen:
            if had_session:  # the very first start of a job that never ran is not a restart
                self.state["restarts"] += len(self.memory.restarts) - self._restarts_seen
            self._restarts_seen = len(self.memory.restarts)
        self.state.update(self.durable.facts())
        for notice in decision.notices:  # with what the view shows: wall time, restarts, the result
            self.notifier.send(notice, decision.reason, self._facts(beat))
        if decision.action is not Action.WAIT or decision.notices:
            self.journal.record("decision", page=observation.state.value, heartbeat=beat.verdict.value,
                                **decision.to_dict())
        if decision.action not in (Action.WAIT, Action.STOP, Action.NOTIFY_HUMAN):
            done = self.hands.act(decision.action)
            self.journal.record("action", action=decision.action.value, ok=done, reason=decision.reason)
            self.state.update(last_action=decision.action.value, last_reason=decision.reason,
                              last_action_time=utc_now())
        self.state["cause"] = decision.cause.value if decision.cause else None
        self.state["note"] = decision.reason if decision.cause else None
        release_waits = self._release_at_end(beat, observation.state)
        if decision.action is Action.STOP:
            self.final = decision
            self._certify_end()  # e.g. given up on a runtime that kept dying: its last session's certificate
        if self.final is not None and not self._hold_for_release(release_waits):
            self.stopping = True
        self.journal.save_state(self.state)
        self.shown = self._facts(beat)
        self.view.update(self.shown)
        return decision

    def _facts(self, beat) -> dict:
        return describe(beat.beat, beat.verdict, beat.since_change, beat.sync_lag, self.state, error=beat.error)

    def _release_at_end(self, beat, page) -> bool:
        """At the end (done, failed, blocked) of a session this daemon saw alive: disconnect and delete its runtime,
        once, so no units burn; never while the page shows a job running, never twice across restarts.
        True while such a release waits only for the page to stop showing a job running."""
        current = beat.beat
        self.watch_last_final = current.session if current is not None and current.final else None
        if current is not None and (not current.final and beat.verdict is Verdict.FRESH
                                    or current.final and getattr(self.watch, "final_beats_are_this_runs", False)):
            self._seen_alive.add(current.session)  # (cli mode: a relaunched job may end within one poll)
        if not self.cfg.release_runtime_at_end:
            return False
        if not release_due(current, self._seen_alive, self._released):
            return False
        if page in RUNNING_PAGES:
            return True  # ours has ended, but the page still shows a job running: wait for it
        self._released = [*self._released, current.session][-RELEASED_KEPT:]
        self.state["released_sessions"] = self._released
        ok = self.hands.release_runtime()
        self.journal.record("runtime_released", session=current.session, phase=current.phase, ok=ok)
        return False

    def _hold_for_release(self, release_waits: bool) -> bool:
        """Whether the ended watch stays a while longer: the job's last word came while the page still shows it
        running (its last seconds); the runtime is released once the page shows it ended, or never (then said)."""
        if not release_waits:
            return False
        now = self.clock()
        self._release_wait_since = self._release_wait_since or now
        if now - self._release_wait_since < RELEASE_WAIT_SECONDS:
            return True
        self.journal.record("runtime_not_released", reason="the page still shows a job running")
        print("keepalive: the runtime was NOT released: the page still shows a job running; when it is yours and "
              "finished, use Runtime > Disconnect and delete runtime", file=sys.stderr)
        return False

    def _note_heartbeat(self, beat, page) -> None:
        current = beat.beat
        if current is None:
            self._pages_after.add(str(page))
            return
        seen = {"session": current.session, "seq": current.seq}
        if {k: (self.state.get("heartbeat_seen") or {}).get(k) for k in seen} != seen:
            self.state["heartbeat_seen"] = {**seen, "pc_time": time.time()}  # status judges age by this PC's clock
        if current.session != self.memory.session:
            self._certify_end(before=current.session)
            self.journal.record("session_seen", session=current.session, chunks_done=current.chunks_done,
                                phase=current.phase)
        self._note_vitals(current, page)
        if current.chunks_done != self._chunks:
            self._chunks = current.chunks_done
            self.journal.record("progress", session=current.session, chunks_done=current.chunks_done,
                                phase=current.phase)

    def _note_vitals(self, current, page) -> None:
        """Keep the session's last few beats, and the page states seen since the newest of them."""
        last = self._last_beats[-1] if self._last_beats else None
        if last is None or last.session != current.session:
            self._last_beats, self._pages_after = [current], set()
        elif last.seq != current.seq:
            self._last_beats, self._pages_after = [*self._last_beats, current][-LAST_BEATS_KEPT:], set()
        self._pages_after.add(str(page))

    def _certify_end(self, before: str | None = None) -> None:
        """The session whose beats are kept has ended (session ``before`` follows it, or the watch ends): write down
        the most likely cause with its evidence, once; a job that ended done did not die."""
        last = self._last_beats[-1] if self._last_beats else None
        if last is None or last.session == before or last.phase == hb.DONE:
            if before is not None:
                self.state["last_death"] = None  # what is shown is of the session just before the current one
            return
        if (self.state.get("last_death") or {}).get("session") == last.session:
            return
        found = death.infer(self._last_beats, self._pages_after)
        self.journal.record("death", session=last.session, **found.to_dict())
        self.state["last_death"] = {"session": last.session, **found.to_dict(),
                                    "lifetime_seconds": _lifetime(last)}

    def reopen(self) -> None:
        """The scheduled reopen: reload the one tab, unless a recovery is under way (guarded like a round)."""
        if self.memory.recovering_since is None and not self.stopping:
            self._guarded("reopen", self._reopen)

    def _reopen(self) -> None:
        self.hands.reopen()
        self.journal.record("reopen")

    # --- the loop -----------------------------------------------------------------------------------

    def _on_signal(self, signum, _frame) -> None:
        self.stopping = True
        if self._interruptible:  # in a round or a reopen: stop now; the browser is closed on the way out
            self._interruptible = False
            raise KeyboardInterrupt

    def _interval(self, decision: Decision | None) -> float:
        if decision is not None and decision.hurry:
            return min(self.cfg.supervisor.fast_poll_seconds, self.cfg.poll_seconds)
        return self.cfg.poll_seconds

    def run(self) -> int:
        """Loop until the job is done, failed, given up, or a signal; return the exit code."""
        previous = {}
        for name in ("SIGINT", "SIGTERM", "SIGBREAK"):
            if hasattr(signal, name):
                previous[name] = signal.signal(getattr(signal, name), self._on_signal)
        self.scheduler.every(self.cfg.reopen_minutes).minutes.do(self.reopen)
        self.journal.record("daemon_start", url=self.cfg.url, mode=self.cfg.mode)
        ended_by = "signal"
        try:
            with self.view:
                next_round = time.monotonic()
                while not self.stopping:
                    self._interruptible = True
                    if time.monotonic() >= next_round:
                        next_round = time.monotonic() + self._interval(self.step())
                    self.scheduler.run_pending()
                    self._interruptible = False
                    time.sleep(min(0.2, max(0.01, next_round - time.monotonic())))
        except BaseException as exc:
            ended_by = "signal" if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, KeyboardInterrupt):
                self.journal.record("daemon_crash", error=ended_by, traceback=traceback.format_exc(limit=10))
                print(f"keepalive: stopped by an error ({ended_by}); details in {self.journal.events_path}",
                      file=sys.stderr)
            raise
        finally:
            self._interruptible = False
            for name, handler in previous.items():
                signal.signal(getattr(signal, name), handler)
            self.scheduler.clear()
            self.journal.record("daemon_stop", reason=self.final.reason if self.final else ended_by)
            self.journal.save_state(self.state)
            self.hands.close()
        if self.final is None:
            return 130
        code = EXIT_CODES.get(self.final.cause, 1)
        told = headline(self.shown)  # as the panel said it last: done with its figures, a failure with what to do
        print(f"keepalive: {told[0] if told else self.final.reason}", file=sys.stderr)
        ended = self.watch_last_final
        if self.cfg.release_runtime_at_end and ended is not None and ended not in self._released:
            print(f"keepalive: the runtime was not released: this daemon did not see session {ended} run, so it may "
                  "be running something else; if the notebook is idle, use Runtime > Disconnect and delete runtime",
                  file=sys.stderr)
        return code
