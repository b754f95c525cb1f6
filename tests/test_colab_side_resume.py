"""The notebook module survives kills and Drive faults without redoing durable work."""

from __future__ import annotations

import glob
import json
import os
import random
import signal
import subprocess
import time

import pytest

from colab_side.events import read_events
from jobkit import Job


def run_to_end(job: Job, *extra: str, env=None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(job.command(*extra), env=env or job.env, capture_output=True, text=True, timeout=timeout)


def writing_files(job: Job) -> list[str]:
    """Status files caught mid-write (glob.glob, unlike Path.glob, does not trip on folders being wiped)."""
    return glob.glob(str(job.local / "colab_side" / "cache" / "*" / "*" / "*.writing.*"))


def kill_after(job: Job, delay: float, env=None, until_writing: bool = False, extra=()) -> int | None:
    """Start a session, SIGKILL its whole process group after ``delay`` (or mid status write)."""
    proc = subprocess.Popen(job.command(*extra), env=env or job.env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline and proc.poll() is None:
        if until_writing and writing_files(job):
            break
        time.sleep(0.005)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return proc.returncode


def chunk_done_keys(events: list[dict]) -> list[str]:
    return [f"{e['node']}:{e['chunk']}" for e in events if e.get("event") == "chunk_done"]


def manifest_keys(job: Job) -> set[str]:
    try:
        return set(json.loads((job.job_dir / "store" / "manifest.json").read_text())["chunks"])
    except (OSError, ValueError):
        return set()


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, bytes]:
    job = Job(tmp_path_factory.mktemp("reference"), images=20)
    done = run_to_end(job)
    assert done.returncode == 0, done.stdout[-2000:]
    return job.result_files()


def test_twenty_kills_lose_no_durable_chunk(tmp_path, reference):
    seed = int(os.environ.get("KILL_SEED", random.randrange(1 << 30)))
    print(f"kill seed {seed}")
    rng = random.Random(seed)
    job = Job(tmp_path, images=20, chunk_seconds=0.3)
    write_pause = dict(job.env, MESHROOM_STANDIN_PAUSE_IN_WRITE="0.2")
    durable_at_kill: list[tuple[int, set[str]]] = []
    kills = mid_write_kills = 0
    for attempt in range(60):
        mid_write = attempt % 4 == 3
        delay = 3.0 if mid_write else rng.uniform(0.1, 1.0)  # mid-write kills wait for a status write to begin
        code = kill_after(job, delay, env=write_pause if mid_write else None, until_writing=mid_write)
        if code == 0 or kills >= 20:
            break
        kills += 1
        mid_write_kills += mid_write and bool(writing_files(job))
        durable_at_kill.append((len(read_events(job.job_dir / "events.jsonl")), manifest_keys(job)))
    assert kills >= 20 and mid_write_kills >= 1
    done = run_to_end(job)
    assert done.returncode == 0, done.stdout[-2000:]
    assert job.result_files() == reference
    events = read_events(job.job_dir / "events.jsonl")
    assert not [e for e in events if e.get("event") == "error"], "a node failed: something it needed was pruned"
    done_keys = chunk_done_keys(events)
    assert len(done_keys) == len(set(done_keys)), "a chunk was computed twice"
    for position, durable in durable_at_kill:
        redone = set(chunk_done_keys(events[position:])) & durable
        assert not redone, f"chunks durable before a kill were computed again: {sorted(redone)}"


def test_drive_faults_are_retried_and_damage_is_recomputed(tmp_path, reference):
    """The first session ends at a known point, not at a timed kill: an outage from the manifest's third write
    (the second commit) outlasts the retries, so exactly one chunk is durable whatever the machine's load."""
    job = Job(tmp_path, images=20)
    fast_retry = ("--drive-backoff-seconds", "0.05")
    first = run_to_end(job, *fast_retry, env=dict(job.env, COLAB_SIDE_FAULTS="4:107,11:5,w3+5:107@manifest"))
    assert first.returncode == 75, first.stdout[-3000:]
    assert "remounting and retrying" in first.stdout
    store = job.job_dir / "store"
    manifest = store / "manifest.json"
    entries = json.loads(manifest.read_text())["chunks"]
    assert len(entries) == 1
    archive = store / next(iter(entries.values()))["archive"]  # an archive the store relies on
    archive.write_bytes(archive.read_bytes()[:100])  # truncated
    manifest.write_text(manifest.read_text()[: len(manifest.read_text()) // 2])  # cut mid-write
    done = run_to_end(job, *fast_retry, env=dict(job.env, COLAB_SIDE_FAULTS="4:107,11:5,25:107,40:5"))
    assert done.returncode == 0, done.stdout[-3000:]
    assert "remounting and retrying" in done.stdout
    assert "manifest.json is cut" in done.stdout and "is damaged" in done.stdout
    assert job.result_files() == reference
