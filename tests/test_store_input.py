"""The job is what the user gave, and the user's files are theirs: a changed image set is refused (or replanned
on request), a hostile project.mg is one clear line, nothing the module did not create is deleted."""

from __future__ import annotations

import json
import shutil

from colab_side import heartbeat as hb
from jobkit import SMALL, Job, final_beat, job, reference, run_session  # noqa: F401 (fixtures)


def test_a_changed_image_set_is_refused_then_replanned_on_request(job, tmp_path):
    assert run_session(job)[0] == 0
    old_result = job.result_files()
    (job.images / "IMG_0001.jpg").write_bytes(b"another photo, same name".ljust(256, b"."))  # same size
    code, out = run_session(job)
    beat = final_beat(job)
    assert code == 1 and beat.phase == hb.FAILED and beat.cause == hb.BAD_INPUT
    assert "1 images changed (IMG_0001.jpg)" in beat.reason
    assert "new job name" in beat.action and "--replan" in beat.action
    assert job.result_files() == old_result  # never answered with, nor mixed into, the old result
    code, out = run_session(job, replan=True)
    assert code == 0, out[-2000:]
    kept = next(job.job_dir.glob("replaced-*"))
    assert {p.name for p in kept.iterdir()} >= {"job.json", "project.mg", "store", "result"}
    fresh = Job(tmp_path / "fresh", images=SMALL)
    shutil.copy(job.images / "IMG_0001.jpg", fresh.images / "IMG_0001.jpg")
    assert run_session(fresh)[0] == 0
    assert job.result_files() == fresh.result_files() != old_result


def test_images_added_mid_job_are_refused_not_merged(job, reference):
    assert run_session(job, drive_margin_gb=100_000)[0] == 1  # blocked before computing: the job is planned
    extra = job.images / "IMG_0099.jpg"
    extra.write_bytes(b"late photo")
    code, _ = run_session(job)
    assert code == 1 and "1 images added (IMG_0099.jpg)" in final_beat(job).reason
    extra.unlink()
    assert run_session(job)[0] == 0
    assert job.result_files() == reference


def test_a_record_from_before_digests_is_upgraded(job, reference):
    job.job_dir.mkdir(parents=True)
    (job.job_dir / "job.json").write_text(json.dumps({"job": job.name, "images": str(job.images), "meshroom": "2019.2"}))
    assert run_session(job)[0] == 0
    record = json.loads((job.job_dir / "job.json").read_text())
    assert len(record["images"]) == SMALL and all(len(image["sha256"]) == 64 for image in record["images"])
    assert job.result_files() == reference


HOSTILE = {
    "a nodeType that climbs out of the cache": ({"nodeType": "../../outside"}, "cannot be a folder name"),
    "a size that never ends": ({"parallelization": {"blockSize": 1, "size": 1e300, "split": 0}}, "whole number"),
    "a size of the wrong type": ({"parallelization": {"blockSize": "40", "size": 4, "split": 0}}, "whole number"),
    "inputs that are a list": ({"inputs": ["x"]}, "not an object"),
    "an output outside the node's folder": ({"outputs": {"output": "{cache}/../../../etc/passwd"}}, "leads out"),
}


def test_a_hostile_project_is_one_clear_line_and_then_recomputed(job, reference):
    assert run_session(job, drive_margin_gb=100_000)[0] == 1  # the graph is saved, nothing computed
    project = job.job_dir / "project.mg"
    saved = json.loads(project.read_text())
    for change, (fields, expected) in HOSTILE.items():
        doc = json.loads(json.dumps(saved))
        doc["graph"]["CameraInit_1"].update(fields)
        project.write_text(json.dumps(doc))
        code, out = run_session(job)
        beat = final_beat(job)
        assert code == 1 and beat.cause == hb.BAD_INPUT and expected in beat.reason, change
        assert "Traceback" not in out and "\n" not in beat.reason and "delete" in beat.action, change
    assert not (job.root / "outside").exists() and not (job.local / "outside").exists()
    project.unlink()
    assert run_session(job)[0] == 0
    assert job.result_files() == reference


def test_nothing_the_module_did_not_create_is_deleted(job, reference, tmp_path):
    seed = job.local / "cache"  # a seed-style cache where the seed notebook leaves it
    (seed / "CameraInit" / "abc").mkdir(parents=True)
    (seed / "CameraInit" / "abc" / "status").write_text('{"status": "SUCCESS"}')
    (job.local / "meshroom" / "bin").mkdir(parents=True)
    (job.local / "meshroom" / "bin" / "mine").write_text("the user's")
    before = {p: p.read_bytes() for p in job.local.rglob("*") if p.is_file()}
    assert run_session(job, adopt_cache=seed)[0] == 0
    assert {p: p.read_bytes() for p in before} == before
    assert job.result_files() == reference
    theirs = tmp_path / "theirs"
    (theirs / "colab_side").mkdir(parents=True)
    (theirs / "colab_side" / "notes.txt").write_text("not the module's")
    code, out = run_session(job, local=theirs)
    assert code == 2 and "was not made by colab_side" in out and "local_dir" in out
    assert (theirs / "colab_side" / "notes.txt").read_text() == "not the module's"
