"""The daemon's own record, in the user's state folder: an event log, its state, and a lock.

``events.jsonl`` gets every decision that is not a plain wait, every action with its result and
every heartbeat session change. It is bounded for a watch of weeks: past ``max_bytes`` it becomes
``events.1.jsonl`` (the one older file kept), and a failure repeated word for word is written once, then
counted (an ``repeated`` line with how many times, written when the run of repeats ends and every
``REPEAT_FLUSH`` repeats). The history of sessions is kept whole, folded as it happens, in ``sessions.json``
(a row a session: start, end, chunks gained, what ended it and its death certificate: cause, certainty,
evidence), which is what ``keepalive status`` reads. ``state.json`` holds what the
daemon shows (last action, restarts, when this PC last saw the heartbeat change);
``status_seen.json`` is the ``status`` command's own note of that. ``daemon.lock`` is an OS file lock held by the daemon watching
this job, so that a second one refuses to start; ``daemon.pid`` names it: its pid, since when it watches, its mode
(JSON; a plain pid from an older version is read too). ``status`` tells by the lock whether a daemon watches.
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

import filelock


MAX_BYTES = 2_000_000  # events.jsonl past this becomes events.1.jsonl: at most about twice this is kept
REPEAT_FLUSH = 360  # a run of identical failures is counted in one line per this many (an hour of 10 s rounds)
SESSIONS = "sessions.json"


class AlreadyRunning(RuntimeError):
    """Another daemon watches this job."""


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


class Journal:
    def __init__(self, state_dir, job: str, max_bytes: int = MAX_BYTES):
        self.folder = Path(state_dir) / job
        self.folder.mkdir(parents=True, exist_ok=True)
        self.events_path = self.folder / "events.jsonl"
        self.older_path = self.folder / "events.1.jsonl"
        self.max_bytes = max_bytes
        self._repeat: dict | None = None  # the failure being repeated: its first record and how often since
        self._sessions: list[dict] | None = None  # the daemon's fold of sessions, loaded at its first event
        self.state_path = self.folder / "state.json"
        self.lock_path = self.folder / "daemon.lock"
        self.pid_path = self.folder / "daemon.pid"
        self._lock: filelock.FileLock | None = None

    def record(self, event_name: str, **fields) -> dict:
        event = {"time": _now(), "event": event_name, **fields}
        if self._repeats(event):
            return event
        folded = event_name in FOLDED
        if folded and self._sessions is None:
            self._sessions = self.sessions()  # before this event is in the file a journal of old is folded from
        self._append(event)
        if folded and fold_session(self._sessions, event):
            self.save_state({"sessions": self._sessions}, SESSIONS)
        return event

    def _repeats(self, event: dict) -> bool:
        """Whether ``event`` is the failure just written, word for word (then counted, not written)."""
        key = _failure_key(event)
        repeat = self._repeat
        if key is not None and repeat is not None and repeat["key"] == key:
            repeat["times"] += 1
            repeat["until"] = event["time"]
            if repeat["times"] % REPEAT_FLUSH == 0:
                self._flush_repeats()
            return True
        self._flush_repeats()
        self._repeat = None if key is None else {"key": key, "times": 0, "counted": 0, "until": None}
        return False

    def _flush_repeats(self) -> None:
        repeat = self._repeat
        if repeat is None or repeat["times"] == repeat["counted"]:
            return
        event_name, error = repeat["key"]
        self._append({"time": _now(), "event": "repeated", "of": event_name, "error": error,
                      "times": repeat["times"] - repeat["counted"], "until": repeat["until"]})
        repeat["counted"] = repeat["times"]

    def _append(self, event: dict) -> None:
        with open(self.events_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(event, sort_keys=True, default=str) + "\n")
            size = handle.tell()
        if size > self.max_bytes:
            os.replace(self.events_path, self.older_path)

    def events(self) -> list[dict]:
        """Every event still kept (the older file's, then the current one's)."""
        events = []
        for path in (self.older_path, self.events_path):
            try:
                lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                continue
            for line in lines:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue  # a line cut by a crash
                if isinstance(event, dict):
                    events.append(event)
        return events

    def sessions(self) -> list[dict]:
        """One row per notebook session seen: start, end, how it ended, chunks gained (the whole history)."""
        if self._sessions is not None:
            return [dict(row) for row in self._sessions]
        saved = self.load_state(SESSIONS).get("sessions")
        if isinstance(saved, list):
            return [row for row in saved if isinstance(row, dict)]
        return fold_sessions([], self.events())  # a journal from before sessions.json

    def save_state(self, state: dict, name: str = "state.json") -> None:
        """Replace the state file ``name`` (the daemon's by default) in one step."""
        path = self.folder / name
        temp = path.with_name(name + ".tmp")
        temp.write_text(json.dumps(state, sort_keys=True, default=str, indent=1), encoding="utf-8")
        os.replace(temp, path)

    def load_state(self, name: str = "state.json") -> dict:
        try:
            state = json.loads((self.folder / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return state if isinstance(state, dict) else {}

    def lock(self, mode: str | None = None) -> None:
        """Take the job's OS lock, or raise AlreadyRunning naming the daemon that holds it.

        The operating system frees the lock when its process ends, however it ends (a crash, a kill,
        a power cut): nothing stale is left to remove by hand.
        """
        self._lock = self._lock or filelock.FileLock(self.lock_path, timeout=0)
        try:
            self._lock.acquire()
        except filelock.Timeout:
            pid = self.watcher_record().get("pid")
            other = f"(pid {pid}) " if pid else ""
            raise AlreadyRunning(f"another keepalive {other}already watches this job; stop it first") from None
        temp = self.pid_path.with_name("daemon.pid.tmp")
        temp.write_text(json.dumps({"pid": os.getpid(), "since": _now(), "mode": mode}))
        os.replace(temp, self.pid_path)

    def watcher_record(self) -> dict:
        """What the watching daemon wrote of itself: ``pid``, ``since``, ``mode`` (any may be missing)."""
        try:
            raw = self.pid_path.read_text(encoding="utf-8", errors="replace").strip()
            record = json.loads(raw) if raw.startswith("{") else {"pid": int(raw)}
        except (OSError, ValueError, RecursionError):
            return {}
        if not isinstance(record, dict):
            return {}
        pid = record.get("pid")
        return {**record, "pid": pid if type(pid) is int and pid > 0 else None}

    def watcher(self) -> dict | None:
        """The daemon watching this job (its record, possibly empty), or None when none does.

        Told by the OS lock, which a daemon holds as long as it lives: taken for an instant here when free.
        """
        if not self.lock_path.exists():
            return None
        probe = filelock.FileLock(self.lock_path, timeout=0)
        try:
            probe.acquire()
        except filelock.Timeout:
            return self.watcher_record()
        probe.release()
        return None

    def unlock(self) -> None:
        if self._lock is not None and self._lock.is_locked:
            self.pid_path.unlink(missing_ok=True)
            self._lock.release()


FOLDED = {"session_seen", "progress", "decision", "death"}


def _failure_key(event: dict) -> tuple | None:
    """What makes two failures the same one: the event and its error (a traceback or a count may differ)."""
    if not event["event"].endswith("_failed") or "error" not in event:
        return None
    return event["event"], str(event["error"])


def fold_session(rows: list[dict], event: dict) -> bool:
    """Fold one event into the sessions' rows; whether a row changed."""
    before = rows[-1].copy() if rows else None
    if event.get("event") == "session_seen":
        if rows:
            rows[-1].update(end=event["time"], ended_by=rows[-1].get("ended_by") or "restart")
        rows.append({"session": event.get("session"), "start": event["time"], "end": None,
                     "ended_by": None, "chunks_start": event.get("chunks_done", 0), "chunks_gained": 0})
        return True
    if rows and event.get("event") == "progress":
        rows[-1]["chunks_gained"] = max(0, event.get("chunks_done", 0) - rows[-1]["chunks_start"])
    elif rows and event.get("event") == "death" and rows[-1].get("session") == event.get("session"):
        rows[-1].update({key: event.get(key) for key in ("cause", "certainty", "evidence")})  # its certificate
    elif rows and event.get("event") == "decision" and event.get("cause") and event.get("action") != "wait":
        rows[-1]["ended_by"] = event.get("cause")
    return rows[-1] != before if rows else False


def fold_sessions(rows: list[dict], events) -> list[dict]:
    for event in events:
        fold_session(rows, event)
    return rows
