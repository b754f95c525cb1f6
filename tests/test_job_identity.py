"""A job is what the user asked for: the image set, the release, and the pipeline, parameters and overrides.
A change on an existing job is refused, naming it, unless --replan; nothing of the job is touched."""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from colab_side import heartbeat as hb
from colab_side import identity
from colab_side.drive import FaultPlan
from colab_side.layout import JobLayout
from jobkit import SMALL, Job, faulty_drive, run_session

PARAM = "Texturing_1.outputTextureFileType=jpg"  # an input of the stand-in's graph
OTHER = "Texturing_1.outputTextureFileType=tga"


def run(job: Job, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(job.command(*extra), env=job.env, capture_output=True, text=True, timeout=120)


def final_beat(job: Job) -> hb.Heartbeat:
    return hb.read(job.job_dir / hb.FILENAME)


def kept(job: Job) -> dict:
    return {p: p.read_bytes() for p in job.job_dir.rglob("*") if p.is_file()
            and p.name not in (hb.FILENAME, "lease.json") and p.suffix not in (".log", ".jsonl")}


@pytest.fixture
def job(tmp_path):
    return Job(tmp_path, name="castle", images=4)


def overrides_file(tmp_path, value: str):
    path = tmp_path / "overrides2.json"
    path.write_text(json.dumps({"Texturing_1": {"outputTextureFileType": value}}))
    return path


@pytest.mark.parametrize("first, then, says", [
    ((), ("--param", PARAM), f"parameters none, not {PARAM}"),
    (("--param", PARAM), ("--param", OTHER), f"parameters {PARAM}, not {OTHER}"),
    ((), ("--overrides", "{overrides2}"), "overrides none, not overrides2.json sha256:"),
    (("--overrides", "{overrides2}"), ("--overrides", "{overrides2b}"), "not overrides2.json sha256:"),
], ids=["param added", "param changed", "overrides added", "overrides file edited"])
def test_a_changed_setting_on_an_existing_job_is_refused_naming_it(job, tmp_path, first, then, says):
    files = {"overrides2": str(overrides_file(tmp_path, "jpg"))}
    other = tmp_path / "other"
    other.mkdir()
    edited = overrides_file(other, "tga")
    files["overrides2b"] = str(edited)  # same name, other content
    assert run(job, *(a.format(**files) for a in first)).returncode == 0
    before = kept(job)
    proc = run(job, *(a.format(**files) for a in then))
    beat = final_beat(job)
    assert proc.returncode != 0 and beat.phase == hb.FAILED and beat.cause == hb.BAD_INPUT
    assert says in beat.reason and "--replan" in beat.action, beat.reason
    assert kept(job) == before  # nothing of the job touched


def test_the_same_settings_resume_and_replan_takes_new_ones(job):
    assert run(job, "--param", PARAM).returncode == 0
    assert run(job, "--param", PARAM).returncode == 0 and final_beat(job).phase == hb.DONE
    proc = run(job, "--param", OTHER, "--replan")
    assert proc.returncode == 0 and final_beat(job).phase == hb.DONE, proc.stdout[-2000:]
    record = json.loads((job.job_dir / "job.json").read_text())
    assert record["params"] == [OTHER]


def test_a_pipeline_file_that_does_not_exist_is_refused_before_anything_runs(job, tmp_path):
    assert run(job).returncode == 0
    before = kept(job)
    proc = run(job, "--pipeline", str(tmp_path / "missing.mg"))
    beat = final_beat(job)
    assert proc.returncode != 0 and beat.cause == hb.BAD_INPUT and "does not exist" in beat.reason
    assert kept(job) == before


def test_a_record_from_before_settings_were_kept_is_the_default_job():
    old = identity.identity("castle", "2021.1", "/x", [])
    for key in ("params", "overrides", "engine"):
        del old[key]
    assert identity.difference(old, identity.identity("castle", "2021.1", "/x", [])) is None
    assert "parameters none" in identity.difference(old, identity.identity("castle", "2021.1", "/x", [], params=[PARAM]))


# --- a --replan that is interrupted, and a job record that is cut -----------------------------------------------

def finished(tmp_path, name: str, *params: str):
    """A small job run to done in this process with ``params``."""
    job = Job(tmp_path / name, name="castle", images=SMALL)
    code, out = run_session(job, params=list(params))
    assert code == 0, out[-2000:]
    return job


def aside_folders(job: Job) -> list:
    return sorted(job.job_dir.glob("replaced-*"))


def test_a_replan_interrupted_at_any_drive_write_is_finished_by_the_next_session_never_the_old_result(tmp_path):
    template = finished(tmp_path, "template", PARAM)
    old_result = template.result_files()
    new_result = finished(tmp_path, "reference", OTHER).result_files()
    assert new_result != old_result  # (the parameter shows in the result)
    old_records = {name: (template.job_dir / name).read_bytes() for name in ("job.json", "project.mg")}
    for k in REPLAN_WRITES:
        job = Job(tmp_path / f"cut{k}", name="castle", images=SMALL)
        shutil.copytree(template.job_dir, job.job_dir)
        drive = faulty_drive(job, ReplanWritesFail(k))
        code, out = run_session(job, drive=drive, params=[OTHER], replan=True)
        assert code == 75 and final_beat(job).phase == hb.RESTARTABLE, (k, out[-2000:])
        under_way = (job.job_dir / "replan.bak.json").exists() or (job.job_dir / "replan.json").exists()
        if under_way:  # the old settings, plain: refused while the replan is under way
            assert run_session(job, params=[PARAM])[0] == 1, k
            assert final_beat(job).cause == hb.BAD_INPUT and "--replan" in final_beat(job).reason, k
        code, out = run_session(job, params=[OTHER])  # the new settings, plain: the replan is finished
        if not under_way:  # (it never began: the new settings are another job, refused, as without the fault)
            assert code == 1 and final_beat(job).cause == hb.BAD_INPUT, (k, out[-2000:])
            code, out = run_session(job, params=[OTHER], replan=True)
        assert code == 0 and job.result_files() == new_result, (k, out[-2000:])
        kept_aside = aside_folders(job)
        assert len(kept_aside) == 1, (k, kept_aside)
        assert {name: (kept_aside[0] / name).read_bytes() for name in old_records} == old_records, k
        assert not (job.job_dir / "replan.json").exists() and not (job.job_dir / "replan.bak.json").exists()
        assert json.loads((job.job_dir / "job.bak.json").read_text())["params"] == [OTHER]


REPLAN_WRITES = (1, 2, 4, 10, 13, 14, 15, 16)  # of the intent (2), folder and rename (5 × 2), record (2), removal (2)


class ReplanWritesFail(FaultPlan):
    """From the ``k``-th Drive write of the replan's own files on, every one fails (an outage that outlasts the
    session); the heartbeat, the lease and the events still get through."""

    NAMES = {"job.json", "job.bak.json", "project.mg", "store", "result"}

    def __init__(self, k: int):
        super().__init__()
        self.k, self.seen = k, 0

    def check(self, kind: str, what: str = "") -> bool:
        if kind != "read" and (what in self.NAMES or what.startswith(("replan", "replaced-"))):
            self.seen += 1
            if self.seen >= self.k:
                raise OSError(errno.ENOTCONN, "Transport endpoint is not connected (injected)")
        return False


def test_a_cut_job_record_reads_its_twin_and_one_with_no_twin_blocks_without_touching_anything(tmp_path):
    job = finished(tmp_path, "cut", PARAM)
    (job.job_dir / "job.json").write_bytes(b"")  # cut by a fault between truncate and write
    code, out = run_session(job, params=[PARAM])
    assert code == 0 and final_beat(job).phase == hb.DONE, out[-2000:]  # not "another job"

    (job.job_dir / "job.json").write_bytes(b'{"job": "cas')
    (job.job_dir / "job.bak.json").write_bytes(b"")
    before = kept(job)
    code, out = run_session(job, params=[PARAM])
    beat = final_beat(job)
    assert code == 1 and beat.phase == hb.BLOCKED and beat.cause == hb.BAD_INPUT, out[-2000:]
    assert "cannot be read" in beat.reason and "version history" in beat.action
    assert kept(job) == before


def test_a_record_cut_at_a_jobs_very_first_write_is_written_anew(tmp_path):
    job = Job(tmp_path / "first", name="castle", images=SMALL)
    job.job_dir.mkdir(parents=True)
    (job.job_dir / "job.json").write_bytes(b"")
    code, out = run_session(job)
    assert code == 0 and final_beat(job).phase == hb.DONE, out[-2000:]


def test_two_replans_in_the_same_second_set_aside_in_two_folders():
    layout = JobLayout(Path("/content/drive/MyDrive"), "castle")
    names = {layout.replaced() for _ in range(50)}
    assert len(names) == 50 and all(identity.ASIDE.fullmatch(name) for name in names)
def test_another_engine_is_another_job():
    meshroom = identity.identity("castle", "2021.1", "/x", [])
    assert identity.difference(meshroom, identity.identity("castle", "2021.1", "/x", [], engine="colmap")) == \
        "it was started with the engine meshroom, not colmap"
