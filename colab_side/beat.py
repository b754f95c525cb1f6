"""The heartbeat writer: a thread that rewrites ``heartbeat.json`` every few seconds.

Nothing the Drive does may stop the job: each write runs in its own short-lived thread with a
time limit, and an error or a hang only skips that beat.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid

from colab_side import heartbeat
from colab_side.drive import Drive
from colab_side.events import utc_now


class HeartbeatWriter:
    def __init__(self, drive: Drive, path, job: str, every: float = 30.0, limit: float = 20.0, log=print):
        self.drive = drive
        self.path = path
        self.every = every
        self.limit = limit
        self.log = log
        self.beat = heartbeat.Heartbeat(
            job=job, session=uuid.uuid4().hex[:12], seq=0, time=utc_now(), phase=heartbeat.STARTING,
            session_started=utc_now(),
        )
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)

    @property
    def session(self) -> str:
        return self.beat.session

    def start(self) -> None:
        self.write()
        self._thread.start()

    def update(self, **fields) -> None:
        """Change fields; a change of phase is written at once."""
        with self._lock:
            phase_changed = "phase" in fields and fields["phase"] != self.beat.phase
            self.beat = dataclasses.replace(self.beat, **fields)
        if phase_changed:
            self.write()

    def write(self) -> bool:
        with self._lock:
            self.beat = dataclasses.replace(self.beat, seq=self.beat.seq + 1, time=utc_now())
            data = self.beat.to_json().encode()
        outcome = []
        writer = threading.Thread(target=lambda: outcome.append(self._write(data)), daemon=True)
        writer.start()
        writer.join(self.limit)
        return bool(outcome and outcome[0])

    def _write(self, data: bytes) -> bool:
        try:
            self.drive.write_bytes(self.path, data)
            return True
        except Exception as exc:  # the heartbeat must never take the job down
            self.log(f"heartbeat not written: {exc}")
            return False

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.write()

    def stop(self) -> None:
        self._stop.set()
        self.write()
