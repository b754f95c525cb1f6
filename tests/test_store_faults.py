"""The store against what Drive does: outages, single faults, unreadable manifests, damaged archives, a full
disk, the Trash. Sessions run in this process on a Drive with a fault plan and a fake clock (no real waits);
every test ends with the job done and the result identical to an uninterrupted run."""

from __future__ import annotations

import errno
import json
import os
import random
import subprocess
import threading

import pytest

from colab_side import heartbeat as hb
from colab_side.drive import HANG, Drive, DriveError, Fault, FaultPlan
from colab_side.events import read_events
from colab_side.meshroom import cache as meshroom_cache
from jobkit import FakeClock, Job, faulty_drive, final_beat, job, reference, run_session  # noqa: F401 (fixtures)



def events(job: Job) -> list[dict]:
    return read_events(job.job_dir / "events.jsonl")


def chunks_done(job: Job) -> list[str]:
    return [f"{e['node']}:{e['chunk']}" for e in events(job) if e.get("event") == "chunk_done"]


def never_failed(job: Job) -> bool:
    return not [e for e in events(job) if e.get("event") in ("failed", "blocked")
                or (e.get("event") == "error" and e.get("node"))]


def run_until_done(job: Job, drive: Drive, sessions: int = 6) -> list[int]:
    codes = []
    for _ in range(sessions):
        code, out = run_session(job, drive=drive)
        codes.append(code)
        if code == 0:
            return codes
        assert final_beat(job).phase == hb.RESTARTABLE, out[-2000:]
    raise AssertionError(f"not done after {sessions} sessions: {codes}")


def test_an_outage_shorter_than_the_retries_is_ridden_out(job, reference):
    remounts = []
    plan = FaultPlan([Fault(150, errno.ENOTCONN, seconds=10)])
    drive = faulty_drive(job, plan, remount=lambda: remounts.append(1))
    code, out = run_session(job, drive=drive)
    assert code == 0, out[-2000:]
    assert remounts and "remounting and retrying" in out
    assert job.result_files() == reference


@pytest.mark.parametrize("kind", ["read", "write"])
def test_a_long_outage_ends_the_session_restartable_and_the_next_resumes(job, reference, kind):
    clock = FakeClock()
    plan = FaultPlan([Fault(60 if kind == "read" else 100, errno.ENOTCONN, kind, seconds=40)])
    drive = faulty_drive(job, plan, clock)
    code, out = run_session(job, drive=drive)
    beat = final_beat(job)
    assert code == 75 and beat.phase == hb.RESTARTABLE and beat.cause == hb.DRIVE_ERROR, out[-2000:]
    assert "failed 6 times" in beat.reason
    durable = set(json.loads((job.job_dir / "store" / "manifest.json").read_text())["chunks"])
    before = len(chunks_done(job))
    assert run_until_done(job, drive) == [0]
    assert job.result_files() == reference and never_failed(job)
    assert not durable & set(chunks_done(job)[before:]), "a durable chunk was computed again"


def test_an_unreadable_manifest_is_never_overwritten(job, reference):
    drive = faulty_drive(job, FaultPlan([Fault(3, errno.ENOTCONN, "write", seconds=40, name="manifest")]))
    assert run_session(job, drive=drive)[0] == 75  # a first session made some chunks durable
    store = job.job_dir / "store"
    saved = {name: (store / name).read_bytes() for name in ("manifest.json", "manifest.bak.json")}
    assert json.loads(saved["manifest.json"])["chunks"]
    reads_fail = faulty_drive(job, FaultPlan([Fault(1, errno.EIO, "read", seconds=1000, name="manifest")]))
    code, out = run_session(job, drive=reads_fail)
    beat = final_beat(job)
    assert code == 75 and beat.phase == hb.RESTARTABLE and "manifest" in beat.reason, out[-2000:]
    assert {name: (store / name).read_bytes() for name in saved} == saved
    before = len(chunks_done(job))
    assert run_until_done(job, faulty_drive(job)) == [0]
    durable = set(json.loads(saved["manifest.json"])["chunks"])
    assert not durable & set(chunks_done(job)[before:])
    assert job.result_files() == reference


def test_single_random_faults_of_every_transient_kind(job, reference):
    seed = int(os.environ.get("FAULT_SEED", random.randrange(1 << 30)))
    print(f"fault seed {seed}")
    rng = random.Random(seed)
    codes = (errno.ENOTCONN, errno.EIO, errno.ETIMEDOUT, errno.ESTALE, errno.ENOENT)
    plan = FaultPlan([Fault(n, rng.choice(codes)) for n in sorted(rng.sample(range(1, 330), 25))])
    run_until_done(job, faulty_drive(job, plan))
    assert job.result_files() == reference and never_failed(job)


def unpublish(job: Job) -> None:
    """As if the session had been killed just before publishing: the result is not recorded."""
    for name in ("manifest.json", "manifest.bak.json"):
        path = job.job_dir / "store" / name
        doc = json.loads(path.read_text())
        doc.pop("published", None)
        path.write_text(json.dumps(doc))


def test_a_flipped_bit_in_an_archive_whose_inputs_were_pruned(job, reference):
    assert run_session(job)[0] == 0
    manifest = json.loads((job.job_dir / "store" / "manifest.json").read_text())
    assert "MeshFiltering_1" in manifest["pruned"] and "Texturing_1:0" in manifest["chunks"]
    archive = job.job_dir / "store" / manifest["chunks"]["Texturing_1:0"]["archive"]
    data = bytearray(archive.read_bytes())
    data[700] ^= 0x01
    archive.write_bytes(bytes(data))
    unpublish(job)
    for path in (job.job_dir / "result").iterdir():
        path.unlink()
    code, out = run_session(job)
    assert code == 0, out[-3000:]
    assert "is damaged" in out
    restored = [e for e in events(job) if e.get("event") == "restored"][-1]
    assert "MeshFiltering_1" in restored["recompute_pruned"]
    assert job.result_files() == reference and never_failed(job)


def test_drive_full_mid_archive_then_local_disk_full_block_and_the_store_stays_sound(job, reference, monkeypatch):
    drive = faulty_drive(job, FaultPlan([Fault(4, errno.ENOSPC, "write", name=".tar")]))
    code, out = run_session(job, drive=drive)
    beat = final_beat(job)
    assert code == 1 and beat.phase == hb.BLOCKED and beat.cause == hb.DRIVE_FULL, out[-2000:]
    assert "Trash" in beat.action

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(meshroom_cache, "reset_interrupted", full)  # the local disk fills while restoring
        code, out = run_session(job)
    beat = final_beat(job)
    assert code == 1 and beat.phase == hb.BLOCKED and beat.cause == hb.DISK_FULL, out[-2000:]
    assert "Traceback" not in out and "[session_end] end=blocked" in out
    assert run_session(job)[0] == 0
    assert job.result_files() == reference


def test_a_remount_that_never_returns_has_a_time_limit(job, reference):
    never = threading.Event()
    drive = faulty_drive(job, FaultPlan([Fault(3, errno.ENOTCONN, "write", name="manifest")]), remount=never.wait,
                         remount_limit=0.2)  # mid-job
    code, out = run_session(job, drive=drive)
    beat = final_beat(job)
    never.set()
    assert code == 75 and beat.phase == hb.RESTARTABLE and beat.cause == hb.DRIVE_TIMEOUT, out[-2000:]
    assert run_session(job)[0] == 0
    assert job.result_files() == reference


def hung_calls() -> list[str]:
    """Drive calls abandoned in their threads, still hanging."""
    return [t.name for t in threading.enumerate() if t.name.startswith("drive-call") and t.is_alive()]


def manifest_chunks(job: Job) -> dict:
    return json.loads((job.job_dir / "store" / "manifest.json").read_text())["chunks"]


def test_a_hung_archive_write_then_a_hung_manifest_read_end_restartable_and_lose_nothing(job, reference):
    """A call that moves nothing for ``call_limit`` ends the session restartable DRIVE_TIMEOUT while its thread
    still hangs; the store keeps what it had and the next sessions resume to the same result."""
    # writes 1 and 2 on ".tar" install Meshroom (its .tar.gz and .sha256): the 5th is the third chunk's archive
    plans = [FaultPlan([Fault(5, HANG, "write", name=".tar")]), FaultPlan([Fault(2, HANG, "read", name="manifest")])]
    try:
        code, out = run_session(job, drive=faulty_drive(job, plans[0], call_limit=2.0))
        beat = final_beat(job)
        assert code == 75 and beat.phase == hb.RESTARTABLE and beat.cause == hb.DRIVE_TIMEOUT, out[-2000:]
        assert "Drive write of" in beat.reason and "did not come back within 2 s" in beat.reason
        assert [name for name in hung_calls() if name.endswith(".tar")], "the hung write is not hanging"
        durable = manifest_chunks(job)
        assert len(durable) == 2  # the third archive hung mid-stream: no entry for it
        named = {job.job_dir / "store" / entry["archive"] for entry in durable.values()}
        assert len(set((job.job_dir / "store").rglob("*.tar")) - named) == 1  # begun, never committed

        code, out = run_session(job, drive=faulty_drive(job, plans[1], call_limit=2.0))
        beat = final_beat(job)
        assert code == 75 and beat.cause == hb.DRIVE_TIMEOUT and "manifest" in beat.reason, out[-2000:]
        assert manifest_chunks(job) == durable, "a hung read changed the manifest"

        before = len(chunks_done(job))
        assert run_until_done(job, faulty_drive(job)) == [0]
    finally:
        for plan in plans:
            plan.released.set()
    assert job.result_files() == reference and never_failed(job)
    assert not set(durable) & set(chunks_done(job)[before:]), "a durable chunk was computed again"


def test_a_hung_read_of_meshroom_from_drive_ends_restartable_and_the_next_session_installs_it(job, reference):
    plan = FaultPlan([Fault(2, HANG, "read", name="Meshroom-")])  # 1: its missing .sha256; 2: the extraction
    try:
        code, out = run_session(job, drive=faulty_drive(job, plan, call_limit=1.0))
        beat = final_beat(job)
        assert code == 75 and beat.phase == hb.RESTARTABLE and beat.cause == hb.DRIVE_TIMEOUT, out[-2000:]
        assert "Meshroom-" in beat.reason and "did not come back" in beat.reason
    finally:
        plan.released.set()
    assert run_session(job)[0] == 0
    assert job.result_files() == reference


def test_after_one_hung_call_the_next_ones_wait_the_short_limit(tmp_path):
    plan = FaultPlan([Fault(1, HANG, "write", name="a"), Fault(1, HANG, "write", name="b")])
    drive = Drive(tmp_path, faults=plan, call_limit=2.0, after_hang_limit=0.1)
    try:
        with pytest.raises(DriveError, match="within 2 s"):
            drive.write_bytes(tmp_path / "a", b"x")
        with pytest.raises(DriveError, match="within 0.1 s"):  # the closing writes on a mount that hangs
            drive.write_bytes(tmp_path / "b", b"x")
        drive.write_bytes(tmp_path / "c", b"x")  # a call that does not hang still goes through
    finally:
        plan.released.set()
    assert (tmp_path / "c").read_bytes() == b"x"


def test_a_session_whose_drive_call_hangs_for_ever_still_exits(job, reference):
    """In a process of its own, nothing releases the hung thread: the session ends and the process exits."""
    env = dict(job.env, COLAB_SIDE_FAULTS="w4:hang@.tar")  # the second chunk's archive
    first = subprocess.run(job.command("--drive-call-limit-seconds", "1"), env=env, capture_output=True, text=True,
                           timeout=300)
    assert first.returncode == 75, first.stdout[-2000:]
    beat = final_beat(job)
    assert beat.phase == hb.RESTARTABLE and beat.cause == hb.DRIVE_TIMEOUT and "did not come back" in beat.reason
    done = subprocess.run(job.command(), env=job.env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:]
    assert job.result_files() == reference


class TrashSpy:
    """What Drive's Trash would receive: the bytes of every file deleted or replaced under the mount."""

    def __init__(self, root, monkeypatch):
        self.root = str(root)
        self.trashed: list[tuple[str, int]] = []
        real_unlink, real_replace, real_rename = os.unlink, os.replace, os.rename

        def size(path, dir_fd=None) -> int:
            try:
                return os.stat(path, dir_fd=dir_fd, follow_symlinks=False).st_size
            except OSError:
                return -1

        def unlink(path, *, dir_fd=None):
            folder = os.readlink(f"/proc/self/fd/{dir_fd}") if dir_fd is not None else ""
            if os.path.join(folder, str(path)).startswith(self.root):
                self.trashed.append((os.path.basename(str(path)), size(path, dir_fd)))
            return real_unlink(path, dir_fd=dir_fd)

        def replacing(real):
            def replace(src, dst, **kwargs):
                if str(dst).startswith(self.root) and os.path.exists(dst):
                    self.trashed.append((os.path.basename(str(dst)), size(dst)))
                return real(src, dst, **kwargs)
            return replace

        monkeypatch.setattr(os, "unlink", unlink)
        monkeypatch.setattr(os, "remove", unlink)
        monkeypatch.setattr(os, "replace", replacing(real_replace))
        monkeypatch.setattr(os, "rename", replacing(real_rename))


def test_the_trash_holds_nothing_large_and_rewrites_do_not_pile_up(job, reference, monkeypatch):
    spy = TrashSpy(job.drive, monkeypatch)
    code, out = run_session(job, drive=faulty_drive(job), keep_store=False)
    monkeypatch.undo()
    assert code == 0, out[-2000:]
    assert job.result_files() == reference
    archives = [name for name, _ in spy.trashed if name.endswith(".tar")]
    assert archives, "pruning deleted nothing"
    assert [entry for entry in spy.trashed if entry[1] > 0] == []
    rewritten = {"heartbeat.json", "manifest.json", "manifest.bak.json", "lease.json"}
    assert not [name for name, _ in spy.trashed if name in rewritten]


def test_the_quota_guard_counts_what_drive_reports(job):
    class FullDrive(Drive):
        def free_bytes(self):
            return 10 << 20  # whatever pruning "freed": Drive says 10 MB

    code, _ = run_session(job, drive=FullDrive(job.drive), drive_margin_gb=1.0)
    beat = final_beat(job)
    assert code == 1 and beat.cause == hb.DRIVE_FULL and "0.01 GB free" in beat.reason


def test_heartbeat_writers_never_race(tmp_path):
    from colab_side.beat import HeartbeatWriter

    inside, most, written, logged = [0], [0], [], []
    lock = threading.Lock()

    class Watched(Drive):
        def rewrite_bytes(self, path, data):
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            try:
                super().rewrite_bytes(path, data)
                written.append(json.loads(data)["seq"])
            finally:
                with lock:
                    inside[0] -= 1

    writer = HeartbeatWriter(Watched(tmp_path, log=logged.append), tmp_path / "heartbeat.json", "j", every=0.001,
                             log=logged.append)
    writer.start()
    for i in range(200):
        writer.update(phase=(hb.COMPUTING, hb.PRUNING)[i % 2])
    writer.stop()
    assert most[0] == 1 and not logged
    assert written == sorted(written) and len(set(written)) == len(written) >= 200
    assert hb.read(tmp_path / "heartbeat.json").seq == written[-1]
