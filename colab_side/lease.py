"""One writer per job: the lease ``<job>/lease.json``.

Two runtimes can run the same job at once (a second tab, a copy of the notebook, a restart while
the old runtime still lives). Each session takes the lease when it starts; the newest session wins,
since a new session is what the daemon's restart makes. The lease names its session, when it was
taken and until when it is renewed (the heartbeat renews it). Before every write to the store a
session checks that the lease is still its own; one that lost it raises ``Superseded`` and writes
nothing more.

"Newest" is decided by the time the lease was taken, not by who wrote last: a renewal of the old
session that races the new one's take is undone by the new session at its next check.
"""

from __future__ import annotations

import threading
import time


class Superseded(Exception):
    """A newer session holds the job's lease."""

    def __init__(self, owner: str):
        super().__init__(f"superseded by session {owner}")
        self.owner = owner


def _valid(doc) -> bool:
    return (isinstance(doc, dict) and isinstance(doc.get("session"), str)
            and isinstance(doc.get("taken"), (int, float)) and not isinstance(doc.get("taken"), bool))


class Lease:
    def __init__(self, drive, path, session: str, ttl: float, clock=time.time):
        self.drive = drive
        self.path = path
        self.session = session
        self.ttl = ttl
        self.clock = clock
        self.taken = clock()
        self.lost_to: str | None = None
        self._lock = threading.Lock()

    def _record(self) -> dict:
        return {"session": self.session, "taken": self.taken, "expires": self.clock() + self.ttl}

    def take(self) -> None:
        """Take the lease (newest wins); say whose it was."""
        with self._lock:
            try:
                before = self.drive.read_json(self.path)
            except ValueError:
                before = None
            self.drive.rewrite_json(self.path, self._record())
        return before.get("session") if _valid(before) and before["session"] != self.session else None

    def check(self, renew: bool = False) -> None:
        """Raise Superseded if a newer session took the lease; put ours back if an older one
        overwrote it; with ``renew``, push our expiry on."""
        with self._lock:
            if self.lost_to:
                raise Superseded(self.lost_to)
            try:
                doc = self.drive.read_json(self.path)
            except ValueError:  # cut by a kill mid-rewrite: nobody holds it but us
                doc = None
            if _valid(doc) and doc["session"] != self.session and (doc["taken"], doc["session"]) > (self.taken, self.session):
                self.lost_to = doc["session"]
                raise Superseded(self.lost_to)
            if renew or not _valid(doc) or doc["session"] != self.session:
                self.drive.rewrite_json(self.path, self._record())
