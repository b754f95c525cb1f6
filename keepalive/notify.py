"""Notifications, for what the human should know: done, failed, blocked, needs you, recovered,
giving up. Rate-limited per kind; every one also goes to the daemon's journal.

Two ways out, both optional: the desktop (one long-lived notifier with the product's icon, on an
event loop of its own that is closed properly, so nothing is printed at exit), and the phone:
``notify.urls`` in the config takes apprise URLs (ntfy, Telegram, e-mail, Pushover, webhooks...).
A terminal bell rings where the desktop cannot be reached. The ``record`` backend only journals.
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

TITLES = {
    Notice.DONE: "Colab job done",
    Notice.FAILED: "Colab job failed",
    Notice.BLOCKED: "Colab job needs a change",
    Notice.NEEDS_HUMAN: "Colab needs you in the browser",
    Notice.RECOVERED: "Colab job recovered",
    Notice.GIVING_UP: "keepalive gave up restarting",
    Notice.SOURCE_STALLED: "Colab job's heartbeat is not arriving",
    Notice.HEARTBEAT_UNREADABLE: "Colab job's heartbeat cannot be read",
}
APP_NAME = "colab-keepalive"
SEND_TIMEOUT_SECONDS = 10.0
ICON = Path(str(resources.files("keepalive").joinpath("icons", "keepalive.png")))  # package data


def url_scheme(url: str) -> str:
    """What may be shown of a notification URL: its scheme only (the rest holds tokens)."""
    return url.split("://", 1)[0] + "://…" if "://" in url else "(no scheme)"


class Desktop:
    """The desktop's notification service, reached through one notifier kept for the daemon's life."""

    def __init__(self, app_name: str = APP_NAME):
        self.app_name = app_name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._api = None

    def send(self, title: str, message: str) -> bool:
        """Show it; False where no notification service answers (then the caller rings)."""
        try:
            if self._api is None:
                from desktop_notifier import DesktopNotifier, Icon

                self._loop = asyncio.new_event_loop()
                self._api = DesktopNotifier(app_name=self.app_name, app_icon=Icon(path=ICON))
            self._loop.run_until_complete(
                asyncio.wait_for(self._api.send(title=title, message=message), SEND_TIMEOUT_SECONDS))
            return True
        except Exception:  # no service on this desktop, or none at all
            return False

    def close(self) -> None:
        """Disconnect from the service and close the loop while both still exist (no noise at exit)."""
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

        logging.getLogger("apprise").addHandler(logging.NullHandler())  # failures are journaled, not printed
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
                 enabled: bool = True, clock=time.monotonic, stream=sys.stderr, urls=(), desktop=None):
        self.backend = backend
        self.min_interval = min_interval
        self.journal = journal
        self.enabled = enabled
        self.clock = clock
        self.stream = stream
        self.desktop = desktop or Desktop()
        self.phone = Phone(urls) if urls else None
        self._last: dict[str, float] = {}

    def send(self, kind: str, message: str) -> bool:
        """Tell the human, unless the same kind was told less than ``min_interval`` ago."""
        now = self.clock()
        if not self.enabled or (kind in self._last and now - self._last[kind] < self.min_interval):
            return False
        self._last[kind] = now
        title = TITLES.get(kind, APP_NAME)
        if self.journal:
            self.journal.record("notification", what=kind, title=title, message=message)
        if self.phone is not None:
            reached = self.phone.send(title, message)
            if self.journal:
                self.journal.record("phone_notification", what=kind, ok=reached)
        if self.backend == "record" or self.backend == "desktop" and self.desktop.send(title, message):
            return True
        print(f"\a{title}: {message}", file=self.stream, flush=True)
        return True

    def close(self) -> None:
        self.desktop.close()
