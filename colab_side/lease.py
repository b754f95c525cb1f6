"""One writer per job: the lease ``<job>/lease.json``.

Two runtimes can run the same job at once (a second tab, a copy of the notebook, a restart while
the old runtime still lives). Each session takes the lease when it starts; the newest session wins,
since a new session is what the daemon's restart makes. The lease names its session, when it was
taken and until when it is renewed (the heartbeat renews it). Before every write to the store a
session checks that the lease is still its own; one that lost it raises ``Superseded`` and writes
nothing more. ``take`` says whether the lease it replaced was still live: the new session then says
in its heartbeat's history that it superseded that session (the loser no longer owns the heartbeat).

"Newest" is decided by the time the lease was taken, not by who wrote last: a renewal of the old
session that races the new one's take is undone by the new session at its next check.

What is left of the race: Drive has no compare-and-swap, so a check and the write after it are two
calls. The store checks the lease after its fresh read of the manifest, right before each attempt
to write it (and its twin), so a takeover can slip in only between the lease read and the end of
that one attempt (one small file; or later, if that attempt hung past its limit and lands late).
The old session's one late write then holds either a correct entry for an archive it wrote and
verified itself (archives are named per session and never rewritten), or a manifest read just
before that lacks what the new session committed in that window, or names archives it pruned.
The worst case is a chunk computed again (its archive an orphan, removed at publish; a missing or
mismatched archive is dropped at restore by its size and SHA-256), never a wrong entry.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


class Superseded(Exception):
    """A newer session holds the job's lease."""

    def __init__(self, owner: str):
        super().__init__(f"superseded by session {owner}")
        self.owner = owner


@dataclass(frozen=True)
class Taken:
    """Whose lease a take replaced: ``live`` when it had not expired (by this runtime's clock), so that
    session still runs and is superseded now; otherwise it was a session that died."""

    owner: str
    live: bool


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _valid(doc) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("session"), str) and _number(doc.get("taken"))


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

    def take(self) -> Taken | None:
        """Take the lease (newest wins); say whose it was, if another session's."""
        with self._lock:
            try:
                before = self.drive.read_json(self.path)
            except ValueError:
                before = None
            now = self.clock()
            self.drive.rewrite_json(self.path, self._record())
        if not _valid(before) or before["session"] == self.session:
            return None
        expires = before.get("expires")
        return Taken(before["session"], _number(expires) and expires > now)

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
