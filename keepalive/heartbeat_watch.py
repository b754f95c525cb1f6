"""Watch the heartbeat file that the notebook writes to Drive, as the PC's Drive folder shows it.

Liveness is judged on the local clock only: the heartbeat is fresh while its sequence number (or
session) changed less than ``grace_seconds`` ago, as this PC measures it. The time written inside
the heartbeat, by Colab's clock, is used for one thing: to measure how late Drive's sync delivers
it (``sync_lag``), which is shown, and to estimate when the latest beat was written on the PC's
clock (``written_at``), corrected by the least lag measured lately so that a clock offset between
Colab and the PC cancels out; the estimate is never earlier than the truth (see docs/supervisor.md), also when
either clock steps: lags are measured on the loop's steady clock (a step of the PC's wall clock changes none),
and only against lags of the same session since its clock last went back (a new VM's clock, or a VM's clock
stepped back, starts the floor afresh).
"""

from __future__ import annotations

import dataclasses
import glob
import string
import sys
import time
from collections import deque
from pathlib import Path

from colab_side import heartbeat as hb
from colab_side.layout import is_job_name
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


class BeatTracker:
    """Judges what the PC sees of the heartbeat, on the PC's clocks; pure (the watch feeds it from the
    file, the supervisor traces from a model of Drive's sync). ``now`` is the loop's clock, ``wall`` the
    PC's wall clock, both seconds."""

    LAGS_KEPT = 64  # the lag floor is the least of the last this many measured lags

    def __init__(self, grace_seconds: float):
        self.grace = grace_seconds
        self.last: hb.Heartbeat | None = None
        self.sync_lag: float | None = None
        self._key = None
        self._changed_at: float | None = None
        self._written_at: float | None = None
        self._lags: deque[float] = deque(maxlen=self.LAGS_KEPT)
        self._wall_at_zero: float | None = None  # the PC's wall clock minus the loop's, when first measured
        self._lag_clock: tuple | None = None  # (session, its latest write time) the lags are measured against
        self._unreadable_since: float | None = None
        self._first_look: float | None = None

    def seen(self, beat: hb.Heartbeat, now: float, wall: float) -> BeatView:
        self._unreadable_since = None
        if (beat.session, beat.seq) != self._key:
            self._key, self._changed_at, self.last = (beat.session, beat.seq), now, beat
            self._note_written(beat, now, wall)
        return self._view(now, None)

    def missing(self, now: float) -> BeatView:
        self._unreadable_since = None
        return self._view(now, Verdict.MISSING if self.last is None else None)

    def unreadable(self, error: str, now: float) -> BeatView:
        if self._unreadable_since is None:
            self._unreadable_since = now
        return self._view(now, Verdict.CORRUPT, error)

    def no_source(self, now: float) -> BeatView:
        return BeatView(Verdict.MISSING, self.last, self._since(now), self.sync_lag, source_ok=False)

    def _note_written(self, beat: hb.Heartbeat, now: float, wall: float) -> None:
        written = hb.timestamp(beat.time)
        if written is None:
            self.sync_lag = None
            self._written_at = self._changed_at  # unknown: as late as possible, which can only veto more
            return
        if self._wall_at_zero is None:
            self._wall_at_zero = wall - now
        if self._lag_clock is None or beat.session != self._lag_clock[0] or written < self._lag_clock[1]:
            self._lags.clear()  # another VM's clock, or this one's stepped back: earlier lags say nothing of it
        self._lag_clock = (beat.session, written)
        lag = now + self._wall_at_zero - written  # the sync's delay plus the PC's clock ahead of Colab's
        self._lags.append(lag)
        self.sync_lag = max(0.0, lag)
        self._written_at = self._changed_at - (lag - min(self._lags))

    def _since(self, now: float) -> float:
        """Since the heartbeat last changed; since the first look while none was ever seen."""
        if self._first_look is None:
            self._first_look = now
        return now - (self._first_look if self._changed_at is None else self._changed_at)

    def _view(self, now: float, verdict: Verdict | None, error: str | None = None) -> BeatView:
        since = self._since(now)
        if verdict is None:
            verdict = Verdict.FRESH if self._changed_at is not None and since <= self.grace else Verdict.STALE
        unreadable = None if self._unreadable_since is None else now - self._unreadable_since
        return BeatView(verdict, self.last, since, self.sync_lag, source_ok=True, written_at=self._written_at,
                        unreadable_for=unreadable, error=error)


class OtherJobs:
    """Which other job on the same Drive began a session while this daemon watched a job that has no heartbeat
    there; pure (the watch feeds it what it reads, with the loop's clock). The sessions there at the first look
    are the baseline; a job or a session seen after that began during the watch, at the time first seen."""

    def __init__(self):
        self._known: dict[str, str] | None = None  # job → the session last seen
        self.began: tuple[str, float] | None = None  # (job, when) of the latest session begun during the watch

    def seen(self, beats: dict[str, hb.Heartbeat], now: float) -> tuple[str, float] | None:
        if self._known is None:
            self._known = {job: beat.session for job, beat in beats.items()}
        for job in sorted(beats):
            if self._known.get(job) != beats[job].session:
                self._known[job] = beats[job].session
                self.began = (job, now)
        return self.began


class HeartbeatWatch:
    """Reads the heartbeat file each round and lets a ``BeatTracker`` judge it."""

    # Whether every final heartbeat ``poll`` passes on is one of this run's own sessions. Not here: a final
    # beat on Drive may be an earlier run's, so the daemon releases only sessions it saw alive itself.
    final_beats_are_this_runs = False

    def __init__(self, drive_folder, job: str, grace_seconds: float, clock=time.monotonic, wall=time.time):
        self.drive_folder = Path(drive_folder) if drive_folder else None
        self.path = hb.heartbeat_path(self.drive_folder, job) if self.drive_folder else None
        self.job = job
        self.tracker = BeatTracker(grace_seconds)
        self.others = OtherJobs()
        self.clock = clock
        self.wall = wall

    def poll(self) -> BeatView:
        now = self.clock()
        if self.drive_folder is None or not self.drive_folder.is_dir():
            return self.tracker.no_source(now)
        try:
            beat = hb.read(self.path)
        except FileNotFoundError:
            missing = self.tracker.missing(now)
            began = self.others.seen(self._other_beats(), now) if missing.beat is None else None
            return dataclasses.replace(missing, other_job=began[0], other_job_began=began[1]) if began else missing
        except hb.HeartbeatError as exc:
            return self.tracker.unreadable(str(exc), now)
        except OSError as exc:
            return self.tracker.unreadable(f"cannot read it ({exc.strerror or exc})", now)
        return self.tracker.seen(beat, now, self.wall())

    def _other_beats(self) -> dict[str, hb.Heartbeat]:
        """The readable heartbeats of the other jobs in this Drive's keepalive folder."""
        beats = {}
        for path in sorted((self.drive_folder / hb.ROOT_NAME).glob(f"*/{hb.FILENAME}")):
            job = path.parent.name
            if job == self.job or not is_job_name(job):
                continue
            try:
                beats[job] = hb.read(path)
            except (OSError, hb.HeartbeatError):
                continue
        return beats
