"""A pure model of the outside world on a simulated clock, for supervisor traces and the recovery bench.

A Colab runtime runs a job and may die; the Colab page shows what the page model would read; Google
Drive for desktop delivers each version of ``heartbeat.json`` to the PC late (a random lag per
version, nothing during a sync pause or while the PC is offline, never an older version over a newer
one). ``run_trace`` drives the real supervisor and the real heartbeat judge (``BeatTracker``) through
it, round by round, and counts what matters: Run all sent to a live job (must be 0), restarts of
dead runtimes, and the delays from each death to Run all and to computing again.

No files, no browser, no real time: a simulated day takes a second.
"""

from __future__ import annotations

import datetime
import random
from dataclasses import dataclass, field

from colab_side import heartbeat as hb
from keepalive.heartbeat_watch import BeatTracker
from keepalive.states import Action, Notice, PageState
from keepalive.supervisor import Memory, SupervisorConfig, decide

EPOCH = datetime.datetime(2026, 12, 1, tzinfo=datetime.timezone.utc).timestamp()


def _inside(t: float, spans) -> tuple[float, float] | None:
    return next(((a, b) for a, b in spans if a <= t < b), None)


@dataclass
class Faults:
    """What happens to the world, in simulated seconds from the start."""

    deaths: list[float] = field(default_factory=list)  # the runtime dies (a disconnect, a recycle)
    stalls: list[tuple[float, float]] = field(default_factory=list)  # Drive for desktop paused
    offline: list[tuple[float, float]] = field(default_factory=list)  # the PC has no network
    unreadable: list[tuple[float, float]] = field(default_factory=list)  # the PC's copy cannot be read


class SyncLag:
    """When a version of the file written at ``written`` reaches the PC."""

    def __init__(self, rng: random.Random, low: float = 5.0, high: float = 120.0, blocked=()):
        self.rng, self.low, self.high, self.blocked = rng, low, high, list(blocked)

    def arrival(self, written: float) -> float:
        at = written + self.rng.uniform(self.low, self.high)
        while (span := _inside(at, self.blocked)) is not None:
            at = span[1] + self.rng.uniform(self.low, 2 * self.low)  # caught up a little after it resumes
        return at


class World:
    """The runtime, its page and the PC's copy of the heartbeat; ``act`` is what the hands would do."""

    beat_seconds = 30.0  # colab_side's default heartbeat interval
    chunk_seconds = 240.0
    install_seconds = 90.0  # from Run all to computing (install, plan)
    notice_seconds = 3.0  # the page shows a lost runtime this long after it died
    connect_seconds = 12.0
    reload_seconds = 4.0

    def __init__(self, faults: Faults, sync: SyncLag, colab_clock_ahead: float = 0.0):
        self.faults = faults
        self.sync = sync
        self.colab_clock_ahead = colab_clock_ahead
        self.vm: str | None = None  # None (no VM), "fresh" (connected, nothing run), "job"
        self.attached = False
        self.connecting_until = 0.0
        self.reloading_until = 0.0
        self.reload_waiting = False  # a reload asked for while offline
        self.died_at: float | None = None
        self.session_count = 0
        self.session: str | None = None
        self.session_start = 0.0
        self.chunks_base = 0
        self.next_beat = 0.0
        self.seq = 0
        self.pending: list[tuple[float, hb.Heartbeat]] = []  # (arrival on the PC, version)
        self.visible: hb.Heartbeat | None = None
        self.deaths = sorted(faults.deaths)
        self.log: dict = {"deaths": [], "run_all_dead": [], "run_all_live": [], "computing": []}
        self._start_session(0.0)
        self.attached = True

    # --- the runtime -------------------------------------------------------------------------------

    def _start_session(self, now: float) -> None:
        self.vm, self.session_count = "job", self.session_count + 1
        self.session, self.session_start, self.seq, self.next_beat = f"s{self.session_count}", now, 0, now
        self.log["computing"].append(now + self.install_seconds)

    def _chunks(self, at: float) -> int:
        return self.chunks_base + max(0, int((at - self.session_start - self.install_seconds) // self.chunk_seconds))

    def _write_beat(self, at: float) -> None:
        self.seq += 1
        phase = hb.Phase.COMPUTING if at >= self.session_start + self.install_seconds else hb.Phase.INSTALLING
        stamp = datetime.datetime.fromtimestamp(EPOCH + at + self.colab_clock_ahead, datetime.timezone.utc)
        beat = hb.Heartbeat(job="day", session=self.session, seq=self.seq, time=stamp.isoformat(), phase=phase,
                            chunks_done=self._chunks(at))
        self.pending.append((self.sync.arrival(at), beat))

    def advance(self, now: float) -> None:
        while self.vm == "job":
            death = self.deaths[0] if self.deaths else float("inf")
            if self.next_beat <= min(now, death):
                self._write_beat(self.next_beat)
                self.next_beat += self.beat_seconds
            elif death <= now:
                self.deaths.pop(0)
                self.chunks_base = self._chunks(death)
                self.vm, self.died_at = None, death
                self.log["deaths"].append(death)
            else:
                break
        while self.deaths and self.deaths[0] <= now:  # a death while no job runs changes nothing
            self.deaths.pop(0)
        arrived = [(t, b) for t, b in self.pending if t <= now]
        self.pending = [(t, b) for t, b in self.pending if t > now]
        for _t, beat in sorted(arrived, key=lambda item: item[0]):
            if self._newer(beat):
                self.visible = beat

    def _newer(self, beat: hb.Heartbeat) -> bool:
        """Drive keeps the latest write: an older version arriving late does not replace it."""
        if self.visible is None:
            return True
        if beat.session != self.visible.session:
            return int(beat.session[1:]) > int(self.visible.session[1:])
        return beat.seq > self.visible.seq

    # --- the page and the hands --------------------------------------------------------------------

    def offline(self, now: float) -> bool:
        return _inside(now, self.faults.offline) is not None

    def page(self, now: float) -> PageState:
        if self.offline(now):
            self.attached = False  # the page lost its connection; the VM may well live on
            return PageState.UNKNOWN if self.reload_waiting else PageState.DISCONNECTED
        if self.reload_waiting:  # back online: the reload tried offline loads now
            self.reload_waiting = False
            self._reload(now)
        if now < self.reloading_until:
            return PageState.UNKNOWN
        if now < self.connecting_until:
            return PageState.CONNECTING
        if self.vm is None and self.attached and now >= self.died_at + self.notice_seconds:
            self.attached = False
        if not self.attached:
            return PageState.DISCONNECTED
        if self.vm is None:
            return PageState.RUNNING  # it died a moment ago; the page has not noticed yet
        return PageState.RUNNING if self.vm == "job" else PageState.IDLE

    def _reload(self, now: float) -> None:
        self.reloading_until = now + self.reload_seconds
        self.attached = self.vm is not None  # a reloaded page re-attaches to a VM that lives

    def act(self, action: Action, now: float) -> None:
        if self.offline(now):
            self.reload_waiting = self.reload_waiting or action is Action.RELOAD
            return
        if action is Action.RECONNECT and not self.attached:
            if self.vm is None:
                self.vm, self.connecting_until = "fresh", now + self.connect_seconds
            self.attached = True
        elif action is Action.RELOAD:
            self._reload(now)
        elif action is Action.RUN_ALL:
            if self.vm == "job":
                self.log["run_all_live"].append(now)
            elif self.attached and self.vm == "fresh":
                self.log["run_all_dead"].append(now)
                self._start_session(now)

    def heartbeat(self) -> hb.Heartbeat | None:
        return self.visible


def run_trace(world: World, cfg: SupervisorConfig, hours: float, poll: float, reopen_minutes: float = 60.0,
              blind: bool = False) -> dict:
    """Drive the supervisor through ``hours`` of the world; what happened, counted."""
    tracker = BeatTracker(cfg.grace_seconds)
    mem, now, end, next_reopen = Memory(), 0.0, hours * 3600.0, reopen_minutes * 60.0
    notices: list[Notice] = []
    stopped = None
    while now < end:
        world.advance(now)
        beat = world.heartbeat()
        if _inside(now, world.faults.unreadable):
            view = tracker.unreadable("heartbeat is not valid JSON; it may be half-synced", now)
        else:
            view = tracker.seen(beat, now, EPOCH + now) if beat else tracker.missing(now)
        page = PageState.UNKNOWN if blind else world.page(now)
        decision = decide(page, view, mem, now, cfg)
        mem = decision.memory
        if decision.notify:
            notices.append(decision.notify)
        if decision.action is Action.STOP:
            stopped = decision
            break
        if decision.action not in (Action.WAIT, Action.NOTIFY_HUMAN):
            world.act(decision.action, now)
        if now >= next_reopen:
            next_reopen += reopen_minutes * 60.0
            if mem.recovering_since is None:
                world.act(Action.RELOAD, now)
        now += cfg.fast_poll_seconds if decision.hurry else poll
    log = world.log
    to_run_all = [min((t for t in log["run_all_dead"] if t >= d), default=None) for d in log["deaths"]]
    to_computing = [min((t for t in log["computing"] if t > d), default=None) for d in log["deaths"]]
    return {
        "deaths": len(log["deaths"]),
        "run_all_to_live_jobs": len(log["run_all_live"]),
        "restarts": len(log["run_all_dead"]),
        "death_to_run_all": [t - d for t, d in zip(to_run_all, log["deaths"]) if t is not None],
        "death_to_computing": [t - d for t, d in zip(to_computing, log["deaths"]) if t is not None],
        "unrecovered": sum(1 for t in to_run_all if t is None),
        "notices": notices,
        "stopped": stopped.reason if stopped else None,
    }
