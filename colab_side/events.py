"""The job's own record: ``events.jsonl`` on Drive and one log file per session.

Events are few (session start/end, install, node and chunk done, prune, error, done) and are
appended to Drive one line at a time. The session log is chatty, so it is kept on local disk,
echoed to the notebook's output (what the seed's ``tee`` gave) and copied to Drive's ``logs/`` at every
chunk boundary and at the end: only what is new since the last copy, written after what Drive already holds
(the whole log only the first time, or when Drive's copy is shorter than what was sent), so a session's Drive
traffic grows with its log, not with the square of its length.
"""

from __future__ import annotations

import datetime
import json
import sys
import threading
from collections import deque
from pathlib import Path

from colab_side.drive import Drive, DriveError


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


class Journal:
    def __init__(self, drive: Drive, events_path, drive_log_path, local_log_path, session: str, echo=None):
        self.drive = drive
        self.events_path = Path(events_path)
        self.drive_log_path = Path(drive_log_path)
        self.local_log_path = Path(local_log_path)
        self.local_log_path.parent.mkdir(parents=True, exist_ok=True)
        self.session = session
        self.echo = echo if echo is not None else sys.stdout  # the notebook's output (whatever it is now)
        self.tail: deque[str] = deque(maxlen=40)
        self._synced = 0  # bytes of the local log that Drive's copy holds
        self._lock = threading.Lock()

    def log(self, line: str) -> None:
        """One line to the session log and the notebook output."""
        line = line.rstrip("\n")
        with self._lock:
            self.tail.append(line)
            with open(self.local_log_path, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")
        if self.echo:
            print(line, file=self.echo, flush=True)

    @property
    def last_line(self) -> str:
        return self.tail[-1] if self.tail else ""

    def event(self, kind: str, **fields) -> None:
        record = {"time": utc_now(), "session": self.session, "event": kind, **fields}
        self.log(f"[{kind}] " + " ".join(f"{k}={v}" for k, v in fields.items()))
        try:
            self.drive.append_line(self.events_path, json.dumps(record, sort_keys=True))
        except DriveError as exc:
            self.log(f"could not record event {kind} on Drive: {exc}")

    def sync_log(self) -> None:
        """Send Drive what the session log gained since the last copy; a failure is logged, never raised
        (the next copy sends it again from the same place)."""
        try:
            with open(self.local_log_path, "rb") as handle:
                handle.seek(self._synced)
                new = handle.read()
            if not new:
                return
            if not (self._synced and self.drive.write_at(self.drive_log_path, self._synced, new)):
                self.drive.rewrite_bytes(self.drive_log_path, self.local_log_path.read_bytes()[:self._synced + len(new)])
            self._synced += len(new)
        except (DriveError, OSError) as exc:
            self.log(f"could not copy the session log to Drive: {exc}")


def read_events(path) -> list[dict]:
    """Every readable event of a local copy of ``events.jsonl``; [] if it cannot be read."""
    try:
        return parse_events(Path(path).read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return []


def parse_events(text: str) -> list[dict]:
    """Every readable event; a line cut by a kill or a sync is skipped."""
    events = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            events.append(record)
    return events
