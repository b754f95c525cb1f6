"""The heartbeat writer: a thread that rewrites ``heartbeat.json`` every few seconds.

Nothing the Drive does may stop the job: each write runs in its own short-lived thread with a
time limit (``drive.run_with_limit``, shorter than the Drive's own), and an error or a hang only
skips that beat. The beat thread and a change of phase
never write at the same time: one lock serialises the writes, and the beat's ``seq`` is taken
under it, so a later write always carries a higher ``seq``. The file is rewritten in place (no
Trash copy per beat); the reader is forgiving of a cut file.

Before each write ``guard`` runs (the lease check and renewal): when it raises ``Superseded``,
this session writes no heartbeat again (the newer session owns the file) and ``on_superseded``
is called once.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid

from colab_side import heartbeat, vitals
from colab_side.drive import Drive, DriveError, run_with_limit
from colab_side.events import utc_now
from colab_side.lease import Superseded


class HeartbeatWriter:
    def __init__(self, drive: Drive, path, job: str, every: float = 30.0, limit: float = 20.0, log=print,
                 session: str | None = None):
        self.drive = drive
        self.path = path
        self.every = every
        self.limit = limit
        self.log = log
        self.guard = lambda: None
        self.vitals = vitals.read  # the VM's vital signs, read before each periodic beat
        self.on_superseded = lambda owner: None
        self.superseded: str | None = None
        self.beat = heartbeat.Heartbeat(
            job=job, session=session or uuid.uuid4().hex[:12], seq=0, time=utc_now(), phase=heartbeat.STARTING,
            session_started=utc_now(),
        )
        self._lock = threading.Lock()  # guards ``beat``
        self._write_lock = threading.Lock()  # one write at a time
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
        """Write the current beat within ``limit`` seconds; False if skipped, failed or too slow."""
        try:
            return run_with_limit(self._write, self.limit, "heartbeat write")
        except DriveError:  # too slow: the write goes on in its thread, this beat is skipped
            return False

    def _write(self) -> bool:
        if not self._write_lock.acquire(timeout=self.limit):
            return False  # an earlier write still hangs on Drive: skip this beat
        try:
            if self.superseded:
                return False
            self.guard()
            with self._lock:
                self.beat = dataclasses.replace(self.beat, seq=self.beat.seq + 1, time=utc_now())
                data = self.beat.to_json().encode()
            self.drive.rewrite_bytes(self.path, data)
            return True
        except Superseded as lost:
            self.superseded = lost.owner
            self._stop.set()
            self.on_superseded(lost.owner)
            return False
        except Exception as exc:  # the heartbeat must never take the job down
            self.log(f"heartbeat not written: {exc}")
            return False
        finally:
            self._write_lock.release()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.update(**self.vitals())
            except Exception as exc:  # a sign that cannot be read must not stop the beats
                self.log(f"vital signs not read: {exc}")
            self.write()

    def stop(self, final_write: bool = True) -> None:
        """End the beats; the final write (if any) is the last: a periodic one under way is waited for first."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(self.limit)
        if final_write:
            self.write()
