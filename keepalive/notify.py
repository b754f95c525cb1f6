"""Desktop notifications, for what the human should know: done, failed, blocked, needs you,
recovered, giving up. Rate-limited per kind; a terminal bell where no desktop notifier works.
Every notification also goes to the daemon's journal (the ``record`` backend does only that,
for tests and headless runs)."""

from __future__ import annotations

import sys
import time

TITLES = {
    "done": "Colab job done",
    "failed": "Colab job failed",
    "blocked": "Colab job needs a change",
    "needs_human": "Colab needs you in the browser",
    "recovered": "Colab job recovered",
    "giving_up": "keepalive gave up restarting",
}


def _desktop_send(title: str, message: str) -> bool:
    try:
        from desktop_notifier import DesktopNotifierSync

        DesktopNotifierSync(app_name="colab-keepalive").send(title=title, message=message)
        return True
    except Exception:  # no notification service on this desktop (or none at all): ring instead
        return False


class Notifier:
    def __init__(self, backend: str = "desktop", min_interval: float = 600.0, journal=None,
                 enabled: bool = True, clock=time.monotonic, stream=sys.stderr):
        self.backend = backend
        self.min_interval = min_interval
        self.journal = journal
        self.enabled = enabled
        self.clock = clock
        self.stream = stream
        self._last: dict[str, float] = {}

    def send(self, kind: str, message: str) -> bool:
        """Tell the human, unless the same kind was told less than ``min_interval`` ago."""
        now = self.clock()
        if not self.enabled or (kind in self._last and now - self._last[kind] < self.min_interval):
            return False
        self._last[kind] = now
        title = TITLES.get(kind, "colab-keepalive")
        if self.journal:
            self.journal.record("notification", what=kind, title=title, message=message)
        if self.backend == "desktop" and _desktop_send(title, message):
            return True
        if self.backend != "record":
            print(f"\a{title}: {message}", file=self.stream, flush=True)
        return True
