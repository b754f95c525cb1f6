"""Giving the runtime back at the job's end, for sure.

``colab stop`` is not proof: 0.7.5 says ``Session 'N' not found.`` and exits 0 for a name it does not
know (``commands/session.py:335``), and it needs the Google login to unassign (``:345``). So a release
is confirmed only by a ``colab sessions`` answer in which neither our session's name nor the runtime it
held (as an orphan ``[?]``, which is given its name back first: ``adopt.py``) is listed. Until then it is tried again, with back-off through transport
errors; while the login is gone the human is told once that a runtime is still assigned and costs
quota, and the release goes on by itself once ``colab sessions`` answers again.

:func:`next_step` is the pure decision; :class:`Release` runs it against the CLI, in a thread of its own
so that the daemon's loop (and Ctrl+C) stay responsive.
"""

from __future__ import annotations

import threading
from enum import Enum

from keepalive.cli_mode.adopt import readopt
from keepalive.cli_mode.runner import ColabCli, Outcome, listed_endpoints, parse_sessions


class Step(str, Enum):
    RELEASED = "released"  # nothing of ours is listed: done
    STOP = "stop"  # our session is listed: `colab stop -s NAME`
    ORPHAN = "orphan"  # the runtime is listed as `[?]`: the CLI lost its name, `stop -s NAME` cannot reach it
    SIGN_IN = "sign_in"  # the login is gone: tell the human, wait, try again
    RETRY = "retry"  # the CLI answered nothing usable: back off, try again


def next_step(sessions: Outcome, out: str, session: str, endpoint: str | None) -> Step:
    """Pure: what to do next, from one ``colab sessions`` call (its outcome and what it printed)."""
    if sessions is Outcome.LOGIN_REQUIRED:
        return Step.SIGN_IN
    if sessions is not Outcome.OK:
        return Step.RETRY
    if session in parse_sessions(out):
        return Step.STOP
    if endpoint in listed_endpoints(out):
        return Step.ORPHAN
    return Step.RELEASED


def still_assigned(session: str, endpoint: str | None) -> str:
    """One line: what is still assigned, and how the human stops it."""
    held = f"runtime {endpoint} (session {session})" if endpoint else f"the runtime of session {session}"
    return f"{held} may still be assigned and cost quota: stop it with 'colab stop -s {session}'"


def orphaned(endpoint: str) -> str:
    return (f"runtime {endpoint} is still assigned and costs quota, but the colab CLI no longer knows its name "
            "(it lists it as [?]): stop it in Colab (Runtime > Manage sessions > Terminate)")


class Release:
    """One release, from the first ``colab sessions`` to the answer that confirms it.

    ``outcome`` stays None while it runs; then ``Step.RELEASED``, ``Step.ORPHAN``, or None after ``cancel``.
    """

    def __init__(self, cli: ColabCli, session: str, endpoint: str | None, notify, backoff_start: float,
                 backoff_cap: float, login_hint: str, home):
        self.cli, self.session, self.endpoint, self.notify, self.home = cli, session, endpoint, notify, home
        self.backoff_start, self.backoff_cap, self.login_hint = backoff_start, backoff_cap, login_hint
        self.outcome: Step | None = None
        self.told_sign_in = False
        self.late = False  # not confirmed at the first attempt: the human hears when it is
        self._cancelled = threading.Event()
        self._thread: threading.Thread | None = None

    def attempt(self) -> Step:
        """Ask, stop if our session is listed (given back its name first if the CLI forgot it), ask again; the
        step it ended on."""
        for _ in range(3):
            answer = self.cli.call("sessions")
            step = next_step(self.cli.outcome(answer), answer.out, self.session, self.endpoint)
            if step is Step.ORPHAN and readopt(self.home, self.session, self.endpoint):
                continue  # listed under our name again: stopped next time round
            if step is not Step.STOP:
                return step
            stopped = self.cli.outcome(self.cli.call("stop", "-s", self.session))
            if stopped is Outcome.LOGIN_REQUIRED:
                return Step.SIGN_IN
        return Step.RETRY  # listed after a stop: not gone yet

    def run(self) -> Step | None:
        """Until released (or orphaned, or cancelled), with back-off; the outcome."""
        wait = self.backoff_start
        while not self._cancelled.is_set():
            step = self.attempt()
            if step in (Step.RELEASED, Step.ORPHAN):
                self.finish(step)
                return step
            if step is Step.SIGN_IN and not self.told_sign_in:
                self.told_sign_in = True
                self.notify("runtime_assigned", f"LOGIN_REQUIRED: {still_assigned(self.session, self.endpoint)}; "
                            f"or {self.login_hint}: keepalive then releases it by itself")
            if self._cancelled.wait(wait):
                break
            wait = min(self.backoff_cap, wait * 2)
        return None

    def finish(self, step: Step) -> None:
        self.outcome = step
        if step is Step.ORPHAN:
            self.notify("runtime_assigned", orphaned(self.endpoint))
        elif self.late:
            self.notify("runtime_released", f"runtime {self.endpoint or self.session} released "
                                            f"(confirmed by 'colab sessions')")

    def in_background(self) -> None:
        self.late = True
        self._thread = threading.Thread(target=self.run, daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def cancel(self) -> None:
        self._cancelled.set()
