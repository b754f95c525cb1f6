"""Watch the heartbeat file that the notebook writes to Drive, as the PC's Drive folder shows it.

Liveness is judged on the local clock only: the heartbeat is fresh while its sequence number (or
session) changed less than ``grace_seconds`` ago, as this PC measures it. The time written inside
the heartbeat, by Colab's clock, is used for one thing: to measure how late Drive's sync delivers
it (``sync_lag``), which is shown, and to estimate when the latest beat was written on the PC's
clock (``written_at``), corrected by the least lag measured lately so that a clock offset between
Colab and the PC cancels out; the estimate is never earlier than the truth (see docs/supervisor.md).
"""

from __future__ import annotations

import glob
import os
import string
import sys
import time
from collections import deque
from pathlib import Path

from colab_side import heartbeat as hb
from keepalive.states import Verdict
from keepalive.supervisor import BeatView


def find_drive_folder(home: Path | None = None) -> Path | None:
    """The "My Drive" folder of Google Drive for desktop, if it can be found."""
    home = home or Path.home()
    if sys.platform == "win32":
        for letter in string.ascii_uppercase[6:] + string.ascii_uppercase[3:6]:  # G: first, as the app does
            candidate = Path(f"{letter}:/My Drive")
            if candidate.is_dir():
                return candidate
        return None
    if sys.platform == "darwin":
        found = sorted(glob.glob(str(home / "Library" / "CloudStorage" / "GoogleDrive-*" / "My Drive")))
        return Path(found[0]) if found else None
    return None  # Linux has no official client: configure job.drive_folder


class HeartbeatWatch:
    LAGS_KEPT = 64  # the lag floor is the least of the last this many measured lags

    def __init__(self, drive_folder, job: str, grace_seconds: float, clock=time.monotonic, wall=time.time):
        self.drive_folder = Path(drive_folder) if drive_folder else None
        self.path = hb.heartbeat_path(self.drive_folder, job) if self.drive_folder else None
        self.grace = grace_seconds
        self.clock = clock
        self.wall = wall
        self.last: hb.Heartbeat | None = None
        self._key = None
        self._changed_at: float | None = None
        self._written_at: float | None = None
        self._lags: deque[float] = deque(maxlen=self.LAGS_KEPT)
        self._unreadable_since: float | None = None
        self.sync_lag: float | None = None

    def poll(self) -> BeatView:
        if self.drive_folder is None or not self.drive_folder.is_dir():
            return BeatView(Verdict.MISSING, self.last, self._since(), self.sync_lag, source_ok=False)
        try:
            beat = hb.read(self.path)
        except FileNotFoundError:
            self._unreadable_since = None
            return self._view(Verdict.MISSING if self.last is None else None)
        except (OSError, hb.HeartbeatError) as exc:
            if self._unreadable_since is None:
                self._unreadable_since = self.clock()
            error = str(exc) if isinstance(exc, hb.HeartbeatError) else f"cannot read it ({exc.strerror or exc})"
            return self._view(Verdict.CORRUPT, error)
        self._unreadable_since = None
        key = (beat.session, beat.seq)
        if key != self._key:
            self._key, self._changed_at, self.last = key, self.clock(), beat
            self._note_written(beat)
        return self._view(None)

    def _note_written(self, beat: hb.Heartbeat) -> None:
        written = hb.timestamp(beat.time)
        if written is None:
            self.sync_lag = None
            self._written_at = self._changed_at  # unknown: as late as possible, which can only veto more
            return
        lag = self.wall() - written  # the sync's delay plus the PC's clock ahead of Colab's
        self._lags.append(lag)
        self.sync_lag = max(0.0, lag)
        self._written_at = self._changed_at - (lag - min(self._lags))

    def _since(self) -> float | None:
        return None if self._changed_at is None else self.clock() - self._changed_at

    def _view(self, verdict: Verdict | None, error: str | None = None) -> BeatView:
        since = self._since()
        if verdict is None:
            verdict = Verdict.FRESH if since is not None and since <= self.grace else Verdict.STALE
        unreadable = None if self._unreadable_since is None else self.clock() - self._unreadable_since
        return BeatView(verdict, self.last, since, self.sync_lag, source_ok=True, written_at=self._written_at,
                        unreadable_for=unreadable, error=error)

    def file_age(self) -> float | None:
        """Seconds since the heartbeat file last changed on this PC (for the status command)."""
        try:
            return max(0.0, self.wall() - os.path.getmtime(self.path))
        except (OSError, TypeError):
            return None
