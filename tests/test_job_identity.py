"""A job is what the user asked for: the image set, the release, and the pipeline, parameters and overrides.
A change on an existing job is refused, naming it, unless --replan; nothing of the job is touched."""

from __future__ import annotations

import json
import subprocess

import pytest

from colab_side import heartbeat as hb
from colab_side import identity
from jobkit import Job

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
    for key in ("params", "overrides"):
        del old[key]
    assert identity.difference(old, identity.identity("castle", "2021.1", "/x", [])) is None
    assert "parameters none" in identity.difference(old, identity.identity("castle", "2021.1", "/x", [], params=[PARAM]))
