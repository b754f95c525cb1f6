"""Build the daemon once: config → hands → watch → journal → notifier → Daemon.

``keepalive run``, ``keepalive demo``, the bench and the tests all get their daemon from
``build``; the ``App`` it returns runs it (keeping the PC awake meanwhile) and owns ``close()``,
which lets go of everything ``build`` took, in reverse order, whatever happened.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shlex
import sys
from dataclasses import dataclass

from keepalive.daemon import Daemon
from keepalive.hands.protocol import Hands
from keepalive.heartbeat_watch import HeartbeatWatch, find_drive_folder
from keepalive.journal import Journal
from keepalive.notify import Notifier
from keepalive.states import Cause
from keepalive.view import LiveView


def make_hands(cfg) -> Hands:
    """The hands of ``cfg.mode``; nothing is started yet."""
    if cfg.mode == "cli":
        from keepalive.cli_mode.hands import CliHands

        return CliHands(cfg)
    if cfg.mode == "keys":
        from keepalive.hands.keys import KeyHands

        return KeyHands(cfg)
    from keepalive.hands.selenium import SeleniumHands

    return SeleniumHands(cfg)


@contextlib.contextmanager
def keep_awake(enabled: bool, warn):
    """Keep the PC from sleeping (wakepy); where no method works, one warning line and carry on."""
    if not enabled:
        yield
        return
    from wakepy import keep

    with keep.running(on_fail="pass") as mode:
        if not mode.active:
            tried = ", ".join(tried.method_name for tried in mode.result.query()) or "none"
            warn(f"cannot keep this PC awake (tried: {tried}); set it never to sleep while a job is watched")
        yield


def _warn(text: str) -> None:
    print(f"keepalive: warning: {text}", file=sys.stderr, flush=True)


@dataclass
class App:
    cfg: object
    journal: Journal
    notifier: Notifier
    hands: Hands
    daemon: Daemon
    warn: object = _warn

    def run(self) -> int:
        """Watch until the job ends or a signal; the exit code."""
        with keep_awake(self.cfg.keep_awake, self.warn):
            return self.daemon.run()

    def close(self) -> None:
        with contextlib.ExitStack() as stack:  # every step runs, even if one raises
            stack.callback(self.journal.unlock)
            stack.callback(self.notifier.close)
            stack.callback(self.hands.close)

    def __enter__(self) -> "App":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def build(cfg, *, hands: Hands | None = None, watch=None, notifier: Notifier | None = None, view=None,
          stream=None, lock: bool = True, warn=_warn, **daemon_extra) -> App:
    """Wire (and start) everything ``cfg`` asks for; any part may be given instead (tests).

    The job's lock is taken first, so that a second daemon refuses before opening a browser.
    """
    for warning in cfg.warnings:
        warn(warning)
    journal = Journal(cfg.dirs.state, cfg.job)
    if lock:
        journal.lock(cfg.mode)
    with contextlib.ExitStack() as undo:
        undo.callback(journal.unlock)
        hands = hands or make_hands(cfg)
        if not getattr(hands, "sees_page", True):  # keys mode: Run all is its one way back
            cfg.supervisor = dataclasses.replace(cfg.supervisor, blind=True)
        if getattr(hands, "human_hints", None):  # cli mode: "sign in" means a command, not the browser
            cfg.supervisor = dataclasses.replace(cfg.supervisor,
                                                 human_hints={**cfg.supervisor.human_hints, **hands.human_hints})
        if cfg.url:  # a job of another name running in this notebook: the command that watches it (supervisor.other_job)
            cfg.supervisor = dataclasses.replace(cfg.supervisor, human_hints={
                Cause.OTHER_JOB.value: f"keepalive run {shlex.quote(cfg.url)} --job {{job}}", **cfg.supervisor.human_hints})
        grace = cfg.supervisor.grace_seconds
        own_watch = getattr(hands, "heartbeat_watch", None)  # cli mode: the heartbeat comes over the CLI
        watch = watch or (own_watch(grace) if own_watch else
                          HeartbeatWatch(cfg.drive_folder or find_drive_folder(), cfg.job, grace))
        notifier = notifier or Notifier(cfg.notify_backend, cfg.notify_min_interval_seconds, journal,
                                        cfg.notify_enabled, urls=cfg.notify_urls, job=cfg.job)
        if hasattr(hands, "notify"):  # cli mode tells the human the Drive consent URL itself
            hands.notify = notifier.send
        undo.callback(notifier.close)
        undo.callback(hands.close)
        hands.start()
        daemon = Daemon(cfg, hands, watch, journal, notifier,
                        view or LiveView(cfg.view_refresh, grace, stream=stream), **daemon_extra)
        undo.pop_all()
    return App(cfg, journal, notifier, hands, daemon, warn)
