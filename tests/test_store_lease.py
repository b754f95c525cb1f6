"""One writer at a time: two runtimes of the same job (a second tab, a copy of the notebook, a restart while the
old runtime lives) never corrupt the store and never end the job failed; the newest session wins."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import signal
import subprocess
import time

import pytest

from colab_side import heartbeat as hb
from colab_side.drive import Drive, Fault, FaultPlan
from colab_side.events import read_events
from colab_side.lease import Lease, Superseded, Taken
from colab_side.store import Store
from conftest import wait_for
from jobkit import Job

IMAGES = 4


def test_the_newest_session_wins_and_an_older_renewal_is_undone(tmp_path):
    drive = Drive(tmp_path)
    now = [100.0]
    old = Lease(drive, tmp_path / "lease.json", "old", ttl=60, clock=lambda: now[0])
    old.take()
    now[0] = 150.0
    new = Lease(drive, tmp_path / "lease.json", "new", ttl=60, clock=lambda: now[0])
    assert new.take() == Taken("old", live=True)  # its lease had 10 s to run: that session still lives
    with pytest.raises(Superseded, match="superseded by session new"):
        old.check(renew=True)
    with pytest.raises(Superseded):
        old.check()  # once lost, always lost: no read needed
    drive.rewrite_json(tmp_path / "lease.json", {"session": "old", "taken": 100.0, "expires": 160.0})  # a racing renewal
    new.check()
    assert json.loads((tmp_path / "lease.json").read_text())["session"] == "new"
    (tmp_path / "lease.json").write_text('{"sess')  # cut by a kill mid-rewrite
    new.check(renew=True)
    assert json.loads((tmp_path / "lease.json").read_text())["expires"] == 210.0


def test_a_take_tells_a_live_owner_from_a_dead_one(tmp_path):
    drive = Drive(tmp_path)
    now = [100.0]
    Lease(drive, tmp_path / "lease.json", "dead", ttl=60, clock=lambda: now[0]).take()
    now[0] = 161.0
    assert Lease(drive, tmp_path / "lease.json", "next", ttl=60, clock=lambda: now[0]).take() == Taken("dead", False)
    assert Lease(drive, tmp_path / "lease.json", "next", ttl=60, clock=lambda: now[0]).take() is None  # its own
    (tmp_path / "lease.json").write_text('{"session": "cut", "tak')
    assert Lease(drive, tmp_path / "lease.json", "other", ttl=60, clock=lambda: now[0]).take() is None


class Recorded(FaultPlan):
    """A fault plan that also keeps the order of the Drive's attempts, each as ``kind name``."""

    def __init__(self, order, faults=()):
        super().__init__(faults)
        self.order = order

    def check(self, kind, what=""):
        self.order.append(f"{kind} {what}")
        return super().check(kind, what)


def test_the_lease_is_checked_after_the_manifest_is_read_and_right_before_each_write_attempt(tmp_path):
    order = []
    guard = lambda: order.append("lease check")  # noqa: E731
    drive = Drive(tmp_path, sleep=lambda _s: None, faults=Recorded(order, [Fault(1, errno.EIO, "write", name="manifest")]))
    store = Store(tmp_path / "store", drive, "job", log=lambda _line: None, guard=guard)
    order.clear()
    store.record_error("Node_1", "s1")
    assert order == ["read manifest.json", "read manifest.bak.json",  # the merge read finds none (new store)
                     "lease check", "write manifest.json",  # this attempt fails (EIO): it is retried
                     "lease check", "write manifest.json", "lease check", "write manifest.bak.json"]

    def taken_over():
        raise Superseded("newer")

    store.guard = taken_over
    with pytest.raises(Superseded):
        store.record_error("Node_2", "s1")
    assert json.loads((tmp_path / "store" / "manifest.json").read_text())["errors"] == {"Node_1": ["s1"]}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, bytes]:
    job = Job(tmp_path_factory.mktemp("reference"), images=IMAGES)
    done = subprocess.run(job.command(), env=job.env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:]
    return job.result_files()


def start(job: Job, local) -> subprocess.Popen:
    command = job.command()
    command[command.index("--local-dir") + 1] = str(local)
    return subprocess.Popen(command, env=job.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def superseded_count(job: Job) -> int:
    return sum(e.get("event") == "superseded" for e in read_events(job.job_dir / "events.jsonl"))


def entries_match_their_archives(job: Job) -> list[str]:
    """Manifest entries whose archive is not there byte for byte (empty when the store is sound)."""
    store = job.job_dir / "store"
    try:
        manifest = json.loads((store / "manifest.json").read_text())
    except (OSError, ValueError):
        return []
    wrong = []
    for key, entry in manifest["chunks"].items():
        path = store / entry["archive"]
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != entry["sha256"]:
            wrong.append(key)
    return wrong


def test_two_sessions_started_together_and_killed_at_random(tmp_path, reference):
    seed = int(os.environ.get("KILL_SEED", random.randrange(1 << 30)))
    print(f"kill seed {seed}")
    rng = random.Random(seed)
    job = Job(tmp_path, images=IMAGES, chunk_seconds=0.1)
    superseded_before_kill = 0
    for trial in range(10):
        first, second = start(job, tmp_path / "runtime-a"), start(job, tmp_path / "runtime-b")
        seen = superseded_count(job)
        # the older of the two notices within a heartbeat, or one of them ends first (the job is done)
        wait_for(lambda: superseded_count(job) > seen or first.poll() is not None or second.poll() is not None, 120)
        superseded_before_kill += superseded_count(job) > seen
        survivor = [p for p in (first, second) if p.poll() is None]
        if survivor and rng.random() < 0.7:
            time.sleep(rng.uniform(0.0, 1.5))  # the random moment of the kill (not a synchronisation)
        for proc in (first, second):
            kill(proc)
        assert entries_match_their_archives(job) == [], f"trial {trial}"
        assert hb.read(job.job_dir / hb.FILENAME).phase not in (hb.FAILED, hb.BLOCKED)
        if first.returncode == 0 or second.returncode == 0:
            break
    assert superseded_before_kill >= 1
    done = subprocess.run(job.command(), env=job.env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:]
    assert job.result_files() == reference
    store = job.job_dir / "store"
    named = {store / e["archive"] for e in json.loads((store / "manifest.json").read_text())["chunks"].values()}
    assert set(store.rglob("*.tar")) == named, "archives of killed sessions were left behind"
    events = read_events(job.job_dir / "events.jsonl")
    assert not [e for e in events if e.get("event") in ("failed", "blocked")]
    superseded = [e for e in events if e.get("event") == "superseded"]
    assert all(e["by"] != e["session"] for e in superseded)
    log = next((job.job_dir / "logs").glob(f"{superseded[0]['session']}.log")).read_text()
    assert f"superseded by session {superseded[0]['by']}" in log


def test_a_superseded_session_stops_at_once_and_writes_nothing_more(tmp_path):
    job = Job(tmp_path, images=IMAGES, chunk_seconds=0.5)
    old = start(job, tmp_path / "runtime-old")
    assert wait_for(lambda: (job.job_dir / "store" / "manifest.json").exists(), 120)
    new = start(job, tmp_path / "runtime-new")
    try:
        assert wait_for(lambda: old.poll() is not None, 120)
        assert old.returncode == 3
        beat = hb.read(job.job_dir / hb.FILENAME)
        lease = json.loads((job.job_dir / "lease.json").read_text())
        assert beat.session == lease["session"]
        old_session = next(e["session"] for e in read_events(job.job_dir / "events.jsonl")
                           if e.get("event") == "superseded")
        after = [e for e in read_events(job.job_dir / "events.jsonl") if e.get("session") == old_session]
        assert after[-1]["event"] == "superseded" and after[-1]["by"] == lease["session"]
        said = [line for line in beat.history if f"session {old_session} superseded by session {beat.session}" in line]
        assert len(said) == 1, beat.history  # the loser's heartbeat is the winner's now: the winner says it
        assert not list((job.job_dir / "store").rglob(f"*.{old_session}.tar.*"))
    finally:
        kill(new)
        kill(old)
