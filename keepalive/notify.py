"""Notifications, for what the human should know: done, failed, blocked, needs you, recovered,
giving up. Rate-limited per kind; every one also goes to the daemon's journal.

Each one names the job, says what happened and what to do (``compose``, pure): the title is
"<job>: <what>", the message the daemon's reason, the facts the view shows (wall time, restarts,
the result on Drive) and the next step.

Two ways out, both optional: the desktop (one long-lived notifier with the product's icon, on an
event loop of its own that is closed properly, so nothing is printed at exit), and the phone:
``notify.urls`` in the config takes apprise URLs (ntfy, Telegram, e-mail, Pushover, webhooks...).
Where the desktop cannot be reached (no D-Bus session, no notification server) one warning line
says so, once, and a terminal bell rings for this and every later notification; desktop-notifier's
own failure report (a traceback) is kept off the console. The ``record`` backend only journals.
Notification URLs hold tokens: they are never printed or journaled, only their scheme.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from importlib import resources
from pathlib import Path

from keepalive.states import Notice
from keepalive.status import clock_text, count, number, result_text, text

TITLES = {
    Notice.DONE: "Colab job done",
    Notice.FAILED: "Colab job failed",
    Notice.BLOCKED: "Colab job needs a change",
    Notice.NEEDS_HUMAN: "Colab needs you in the browser",
    Notice.RECOVERED: "Colab job recovered",
    Notice.GIVING_UP: "keepalive gave up restarting",
    Notice.SOURCE_STALLED: "Colab job's heartbeat is not arriving",
    Notice.HEARTBEAT_UNREADABLE: "Colab job's heartbeat cannot be read",
    Notice.OFFLINE: "Colab cannot be reached",
    Notice.COLAB_POLICY: "Colab stopped the runtime for its terms",
    Notice.OTHER_JOB: "keepalive watches a job that is not on your Drive",
    Notice.RUNTIME_ASSIGNED: "Colab runtime still assigned after the end",
    Notice.RUNTIME_RELEASED: "Colab runtime released",
}
# What the human should do after each kind, where the reason does not say it already.
NEXT_STEPS = {
    Notice.DONE: "Nothing to do: the result is on your Drive.",
    Notice.FAILED: "A restart will not mend it: fix what it names, then run '{run}' again.",
    Notice.BLOCKED: "Do what it says; keepalive waits and carries on when the job can.",
    Notice.NEEDS_HUMAN: "Only you can do it (same Google account); keepalive waits and carries on by itself after.",
    Notice.RECOVERED: "Nothing to do: the job resumes from what Drive holds.",
    Notice.GIVING_UP: "Look at the notebook in the browser and at 'keepalive status', then run '{run}' again.",
    Notice.SOURCE_STALLED: "Check that Google Drive for desktop runs and syncs on this PC; keepalive does not restart.",
    Notice.HEARTBEAT_UNREADABLE: "Check that Google Drive for desktop runs and syncs on this PC.",
    Notice.OFFLINE: "Check this PC's connection; keepalive presses nothing and looks again with back-off.",
    Notice.COLAB_POLICY: ("Read Colab's notice in the browser; keepalive reconnects and runs nothing until you start "
                          "the job yourself or run '{run}' again."),
    Notice.OTHER_JOB: "Stop this keepalive (Ctrl+C) and watch the job that runs, with the command it names.",
    Notice.RUNTIME_ASSIGNED: "Until it is stopped it uses your Colab quota.",
    Notice.RUNTIME_RELEASED: "Nothing to do: it no longer uses your quota.",
}
APP_NAME = "colab-keepalive"
SEND_TIMEOUT_SECONDS = 10.0
ICON = Path(str(resources.files("keepalive").joinpath("icons", "keepalive.png")))  # package data


def compose(kind: str, reason: str, facts: dict | None = None, job: str | None = None) -> tuple[str, str]:
    """Title and message of one notification: which job, what happened, the figures, what to do.

    ``facts`` is what the view shows (``keepalive.status.describe``); any of it may be missing.
    """
    facts = facts if isinstance(facts, dict) else {}
    job = text(job or facts.get("job"))
    facts = {**facts, "job": job or None}
    title = f"{job}: {TITLES.get(kind, APP_NAME)}" if job else TITLES.get(kind, APP_NAME)
    what = text(reason, 4000).rstrip(".")  # a consent URL must stay whole
    if kind == Notice.RECOVERED:  # the round's reason ("heartbeat fresh") says little; the new session does
        saved = number(facts.get("chunks_durable_on_pc"))
        what = f"a new session computes after the runtime was lost (restarts so far: {count(facts.get('restarts'))}" + \
            ("" if saved is None else f"; {count(saved)} chunks saved on Drive") + ")"
        if text(facts.get("last_death")):
            what += f". Why it was lost: {text(facts.get('last_death'), 600).rstrip('.')}"
    parts = [f"Job {job}: {what}." if job else f"{what[:1].upper()}{what[1:]}."]
    if kind in (Notice.DONE, Notice.FAILED, Notice.GIVING_UP):
        wall = number(facts.get("job_seconds"))
        figures = ([f"{clock_text(wall)} from its first start"] if wall is not None else []) + \
            [f"{count(facts.get('restarts'))} restart{'' if count(facts.get('restarts')) == 1 else 's'}"]
        result = result_text(facts) if kind == Notice.DONE else ""
        parts.append(", ".join(figures + ([result] if result else [])) + ".")
    to_do = text(facts.get("what_to_do"))
    if kind == Notice.FAILED and to_do and to_do not in what:
        parts.append(f"To do: {to_do.rstrip('.')}.")
    parts.append(NEXT_STEPS.get(kind, "").format(run=f"keepalive run --job {job}" if job else "keepalive run"))
    return title, " ".join(part for part in parts if part)


def url_scheme(url: str) -> str:
    """What may be shown of a notification URL: its scheme only (the rest holds tokens)."""
    return url.split("://", 1)[0] + "://…" if "://" in url else "(no scheme)"


class _Failures(logging.Handler):
    """What desktop-notifier reports at WARNING and above: it logs a failed send (with a traceback) instead of
    raising, so its log is the only word of a failure. Kept here, never printed."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def why(self) -> str | None:
        """One line: the last failure's cause, or None if nothing failed since the last ``clear``."""
        if not self.records:
            return None
        record = self.records[-1]
        error = record.exc_info[1] if record.exc_info else None
        return text(f"{type(error).__name__}: {error}" if error else record.getMessage(), 200)

    def clear(self) -> None:
        self.records.clear()


class Desktop:
    """The desktop's notification service, reached through one notifier kept for the daemon's life."""

    def __init__(self, app_name: str = APP_NAME):
        self.app_name = app_name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._api = None
        self.failures = _Failures()
        logger = logging.getLogger("desktop_notifier")
        logger.addHandler(self.failures)
        logger.propagate = False  # its "Notification failed" traceback never reaches the console
        self.why: str | None = None  # why the last send failed, one line

    def send(self, title: str, message: str) -> bool:
        """Show it; False where no notification service answers (``why`` says why; then the caller rings)."""
        self.failures.clear()
        try:
            if self._api is None:
                from desktop_notifier import DesktopNotifier, Icon

                self._loop = asyncio.new_event_loop()
                self._api = DesktopNotifier(app_name=self.app_name, app_icon=Icon(path=ICON))
            self._loop.run_until_complete(
                asyncio.wait_for(self._api.send(title=title, message=message), SEND_TIMEOUT_SECONDS))
            self.why = self.failures.why()
        except Exception as exc:  # no service on this desktop, or none at all
            self.why = text(f"{type(exc).__name__}: {exc}", 200)
        return self.why is None

    def close(self) -> None:
        """Disconnect from the service and close the loop while both still exist (no noise at exit)."""
        logging.getLogger("desktop_notifier").removeHandler(self.failures)
        if self._loop is None:
            return
        bus = getattr(getattr(self._api, "_backend", None), "bus", None)
        try:
            if bus is not None:
                bus.disconnect()
                self._loop.run_until_complete(asyncio.wait_for(bus.wait_for_disconnect(), SEND_TIMEOUT_SECONDS))
        except Exception:  # already gone
            pass
        finally:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()
            self._loop, self._api = None, None


class Phone:
    """Notification URLs (apprise): one message to every one of them."""

    def __init__(self, urls):
        import apprise

        quiet = logging.getLogger("apprise")  # its records can quote a URL with its token: never printed or logged
        quiet.addHandler(logging.NullHandler())
        quiet.propagate = False  # not even by a handler on the root logger (a service's log)
        self.apprise = apprise.Apprise()
        for number, url in enumerate(urls, 1):
            if not self.apprise.add(url):
                raise ValueError(f"notify.urls entry {number} ({url_scheme(url)}) is not a notification URL "
                                 "apprise knows: see https://github.com/caronc/apprise/wiki")

    def send(self, title: str, message: str) -> bool:
        return bool(self.apprise.notify(body=message, title=title))


def check_urls(urls) -> None:
    """ValueError naming the first notification URL that apprise does not know."""
    if urls:
        Phone(urls)


class Notifier:
    def __init__(self, backend: str = "desktop", min_interval: float = 600.0, journal=None,
                 enabled: bool = True, clock=time.monotonic, stream=None, urls=(), desktop=None,
                 job: str | None = None):
        self.job = job
        self.backend = backend
        self.min_interval = min_interval
        self.journal = journal
        self.enabled = enabled
        self.clock = clock
        self.stream = stream  # None: sys.stderr as it is when told (the live view routes it above its panel)
        self.desktop = desktop or Desktop()
        self.phone = Phone(urls) if urls else None
        self._last: dict[str, float] = {}
        self._desktop_works = True  # until the desktop failed once: then the bell, without trying again

    def send(self, kind: str, reason: str, facts: dict | None = None) -> bool:
        """Tell the human, unless the same kind was told less than ``min_interval`` ago.

        ``facts``: what the view shows of the job (``keepalive.status.describe``), for the figures.
        """
        now = self.clock()
        if not self.enabled or (kind in self._last and now - self._last[kind] < self.min_interval):
            return False
        self._last[kind] = now
        title, message = compose(kind, reason, facts, self.job)
        if self.journal:
            self.journal.record("notification", what=kind, title=title, message=message)
        if self.phone is not None:
            reached = self.phone.send(title, message)
            if self.journal:
                self.journal.record("phone_notification", what=kind, ok=reached)
        if self.backend == "record" or self.backend == "desktop" and self._on_desktop(title, message):
            return True
        print(f"\a{title}: {message}", file=self.stream or sys.stderr, flush=True)
        return True

    def _on_desktop(self, title: str, message: str) -> bool:
        if not self._desktop_works:
            return False
        if self.desktop.send(title, message):
            return True
        self._desktop_works = False
        why = text(getattr(self.desktop, "why", None)) or "no notification service answered"
        print(f"keepalive: warning: desktop notifications do not work here ({why}); the terminal bell rings "
              "instead", file=self.stream or sys.stderr, flush=True)
        return False

    def close(self) -> None:
        self.desktop.close()
