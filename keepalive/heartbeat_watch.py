"""Watch the heartbeat file that the notebook writes to Drive, as the PC's Drive folder shows it.

Liveness is judged on the local clock only: the heartbeat is fresh while its sequence number (or
session) changed less than ``grace_seconds`` ago, as this PC measures it. The time written inside
the heartbeat, by Colab's clock, is used for one thing: to measure how late Drive's sync delivers
it (``sync_lag``), which is shown, never used to decide.
"""

from __future__ import annotations

import glob
import os
import string
import sys
import time
from pathlib import Path

from colab_side import heartbeat as hb
from keepalive.supervisor import CORRUPT, FRESH, MISSING, STALE, BeatView


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
    def __init__(self, drive_folder, job: str, grace_seconds: float, clock=time.monotonic, wall=time.time):
        self.drive_folder = Path(drive_folder) if drive_folder else None
        self.path = hb.heartbeat_path(self.drive_folder, job) if self.drive_folder else None
        self.grace = grace_seconds
        self.clock = clock
        self.wall = wall
        self.last: hb.Heartbeat | None = None
        self._key = None
        self._changed_at: float | None = None
        self.sync_lag: float | None = None

    def poll(self) -> BeatView:
        if self.drive_folder is None or not self.drive_folder.is_dir():
            return BeatView(MISSING, self.last, self._since(), self.sync_lag, source_ok=False)
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return self._view(MISSING if self.last is None else None)
        except OSError:
            return self._view(CORRUPT)
        try:
            beat = hb.parse(text)
        except hb.HeartbeatError:
            return self._view(CORRUPT)
        key = (beat.session, beat.seq)
        if key != self._key:
            self._key, self._changed_at, self.last = key, self.clock(), beat
            written = hb.timestamp(beat.time)
            if written is not None:
                self.sync_lag = max(0.0, self.wall() - written)
        return self._view(None)

    def _since(self) -> float | None:
        return None if self._changed_at is None else self.clock() - self._changed_at

    def _view(self, verdict: str | None) -> BeatView:
        since = self._since()
        if verdict is None:
            verdict = FRESH if since is not None and since <= self.grace else STALE
        return BeatView(verdict, self.last, since, self.sync_lag, source_ok=True)

    def file_age(self) -> float | None:
        """Seconds since the heartbeat file last changed on this PC (for the status command)."""
        try:
            return max(0.0, self.wall() - os.path.getmtime(self.path))
        except (OSError, TypeError):
            return None
