"""Thirty simulated days of a watch, in seconds: the real daemon loop (journal, watch, supervisor, notifier, view)
driven round by round with a fake clock and a scripted page and VM. Runtimes die at random lifetimes, Drive's
sync stalls for hours, the PC goes offline, and for one day every round fails. Returns what stays on disk and
in memory, day by day (tests/test_soak.py bounds it; bench/bench_soak.py prints it)."""

from __future__ import annotations

import datetime
import gc
import io
import random
import tracemalloc
from pathlib import Path

from colab_side import heartbeat as hb
from keepalive import config
from keepalive.daemon import Daemon
from keepalive.hands.page import Observation
from keepalive.heartbeat_watch import HeartbeatWatch
from keepalive.journal import MAX_BYTES, Journal
from keepalive.notify import Notifier
from keepalive.states import Action, PageState
from keepalive.supervisor import SupervisorConfig
from keepalive.view import LiveView

EPOCH = 1_790_000_000.0
DAY = 86_400.0
POLL = 900.0  # a round every 15 min of simulated time (10 s while the failing day's rounds fail)
FAILING_DAY = 10


class World:
    """The VM, Drive's sync and the page, on the fake clock."""

    def __init__(self, folder: Path, seed: int):
        self.random = random.Random(seed)
        self.now = 0.0
        self.path = hb.heartbeat_path(folder, "castle")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.session = 0
        self.seq = 0
        self.chunks = 0
        self.dies_at = 0.0
        self.alive = False
        self.deaths = 0
        self.page = PageState.DISCONNECTED

    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return EPOCH + self.now

    def start_session(self) -> None:
        self.session += 1
        self.alive, self.page = True, PageState.RUNNING
        self.dies_at = self.now + self.random.uniform(2, 12) * 3600
        self.write()

    def day(self) -> int:
        return int(self.now // DAY)

    def offline(self) -> bool:
        return self.day() % 7 == 3 and 6 * 3600 <= self.now % DAY < 12 * 3600  # six hours, once a week

    def sync_stalled(self) -> bool:
        return self.day() % 5 == 1 and 14 * 3600 <= self.now % DAY < 16 * 3600  # two hours, every five days

    def failing(self) -> bool:
        return self.day() == FAILING_DAY

    def advance(self, seconds: float) -> None:
        self.now += seconds
        if self.alive and self.now >= self.dies_at:
            self.alive, self.page = False, PageState.DISCONNECTED
            self.deaths += 1
        if self.alive:
            self.chunks += self.random.random() < 0.3
            if not self.sync_stalled():
                self.write()

    def write(self) -> None:
        self.seq += 1
        written = datetime.datetime.fromtimestamp(self.wall(), datetime.timezone.utc).isoformat()
        self.path.write_text(hb.Heartbeat(job="castle", session=f"s{self.session}", seq=self.seq, time=written,
                                          phase=hb.COMPUTING, chunks_done=self.chunks, chunks_total=10**6).to_json())


class Discard(io.TextIOBase):
    """The view's terminal: what it shows is not kept (a StringIO would grow and be counted as the daemon's)."""

    def write(self, text: str) -> int:
        return len(text)


class SoakHands:
    def __init__(self, world: World):
        self.world = world

    def observe(self) -> Observation:
        if self.world.failing():
            raise RuntimeError("the tab went away")
        return Observation(PageState.OFFLINE if self.world.offline() else self.world.page, {}, "scripted")

    def act(self, action: Action) -> bool:
        if action is Action.RECONNECT:
            self.world.page = PageState.IDLE
        elif action is Action.RUN_ALL:
            self.world.start_session()
        return True

    def reopen(self) -> None:
        pass

    def release_runtime(self) -> bool:
        return True

    def close(self) -> None:
        pass


def soak(folder: Path, days: int = 30, seed: int = 19, max_bytes: int = MAX_BYTES) -> dict:
    """Run the watch for ``days`` simulated days (the journal rotating past ``max_bytes``); the figures at the end
    of each day and at the end."""
    folder = Path(folder)
    world = World(folder / "drive", seed)
    cfg = config.load(env={"KEEPALIVE_HOME": str(folder / "home")}, job="castle",
                      drive_folder=str(folder / "drive"), poll_seconds=POLL, url="http://127.0.0.1:9/drive/x")
    cfg.supervisor = SupervisorConfig(grace_seconds=900, dead_after=2, recovery_timeout_seconds=1800,
                                      crash_loop_restarts=10**6)
    journal = Journal(cfg.dirs.state, cfg.job, max_bytes)
    watch = HeartbeatWatch(folder / "drive", "castle", 900, clock=world.clock, wall=world.wall)
    notifier = Notifier("record", 0, journal, clock=world.clock)
    daemon = Daemon(cfg, SoakHands(world), watch, journal, notifier, LiveView(stream=Discard()),
                    clock=world.clock)
    world.start_session()
    tracemalloc.start()
    rounds, daily, failing_day = 0, [], {}
    try:
        for day in range(days):
            while world.now < (day + 1) * DAY:
                daemon.step()
                rounds += 1
                world.advance(10.0 if world.failing() else POLL)
            gc.collect()  # what is still held, not what waits for the collector
            daily.append({"day": day + 1, "memory": tracemalloc.get_traced_memory()[0],
                          **sizes(journal)})
            if day == FAILING_DAY + 1:  # the day after it (its count is written when it ends), before rotation
                failing_day = failures(journal.events())
    finally:
        tracemalloc.stop()
    sessions = journal.sessions()
    return {"rounds": rounds, "deaths": world.deaths, "sessions": len(sessions),
            "certified": sum(1 for row in sessions if row.get("cause")),
            "restarts": journal.load_state().get("restarts"), **failing_day, "daily": daily}


def failures(events: list[dict]) -> dict:
    """How the failing day's rounds are in the journal: written out, or counted."""
    return {"failures_written": sum(e["event"] == "round_failed" for e in events),
            "failures_counted": sum(e.get("times", 0) for e in events if e["event"] == "repeated")}


def sizes(journal: Journal) -> dict:
    def size(path: Path) -> int:
        return path.stat().st_size if path.exists() else 0
    return {"journal": size(journal.events_path) + size(journal.older_path),
            "state": size(journal.state_path), "sessions_file": size(journal.folder / "sessions.json")}
