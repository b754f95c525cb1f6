"""Bad input to the notebook module: one clear line, and nothing lost."""

from __future__ import annotations

import json
import tarfile
import subprocess

import pytest

from colab_side import heartbeat as hb
from colab_side.meshroom import cache, graph
from jobkit import Job


def run(job: Job, *extra: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(job.command(*extra), env=env or job.env, capture_output=True, text=True, timeout=120)


def run_with(job: Job, option: str, value: str) -> subprocess.CompletedProcess:
    command = job.command()
    command[command.index(option) + 1] = value
    return subprocess.run(command, env=job.env, capture_output=True, text=True, timeout=120)


def final_beat(job: Job) -> hb.Heartbeat:
    return hb.read(job.job_dir / hb.FILENAME)


@pytest.fixture
def job(tmp_path) -> Job:
    return Job(tmp_path, images=4)


def test_missing_image_folder_is_named(job, tmp_path):
    missing = tmp_path / "nowhere"
    proc = run_with(job, "--images", str(missing))
    assert proc.returncode != 0
    beat = final_beat(job)
    assert beat.phase == hb.FAILED and beat.cause == hb.BAD_INPUT and str(missing) in beat.reason
    assert f"image folder {missing} does not exist" in proc.stdout


def test_empty_and_non_image_folders_are_named(job):
    for path in job.images.iterdir():
        path.unlink()
    run(job)
    assert "is empty" in final_beat(job).reason
    (job.images / "notes.txt").write_text("not an image")
    run(job)
    beat = final_beat(job)
    assert "holds no image files" in beat.reason and beat.cause == hb.BAD_INPUT
    assert (job.images / "notes.txt").read_text() == "not an image"


def test_no_gpu_blocks_before_installing(job):
    env = dict(job.env, PATH="/usr/bin:/bin")
    proc = run(job, env=env)
    assert proc.returncode != 0
    beat = final_beat(job)
    assert beat.phase == hb.BLOCKED and beat.cause == hb.NO_GPU and "GPU runtime" in beat.action
    assert not (job.drive / "keepalive" / "_meshroom").exists()


def test_unknown_meshroom_version(job):
    proc = run(job, "--meshroom", "2077.1")
    beat = final_beat(job)
    assert beat.cause == hb.BAD_INPUT and "unknown Meshroom version '2077.1'" in beat.reason
    assert proc.returncode != 0


def test_a_job_folder_of_another_job_is_left_alone(job, tmp_path):
    assert run(job).returncode == 0
    before = {p: p.read_bytes() for p in job.job_dir.rglob("*") if p.is_file()
              and p.name not in (hb.FILENAME, "lease.json") and p.suffix not in (".log", ".jsonl")}
    other_images = tmp_path / "other"
    other_images.mkdir()
    (other_images / "a.jpg").write_bytes(b"x" * 10)
    proc = run_with(job, "--images", str(other_images))
    assert proc.returncode != 0
    beat = final_beat(job)
    assert "holds another job" in beat.reason and "4 images removed" in beat.reason and "--replan" in beat.action
    assert {p: p.read_bytes() for p in before} == before


def test_corrupt_install_archive_is_moved_aside_and_fetched_again(job, tmp_path):
    assert run(job).returncode == 0
    archive = next((job.drive / "keepalive" / "_meshroom").glob("*.tar.gz"))
    archive.write_bytes(archive.read_bytes()[:500])
    second = Job(tmp_path, name="second", images=4)  # another job on the same Drive shares the install
    proc = run(second)
    assert proc.returncode == 0
    assert "does not match its recorded SHA-256" in proc.stdout
    assert list(archive.parent.glob("*.corrupt-*"))


def test_half_written_project_is_a_clear_error_and_the_store_is_kept(job):
    assert run(job, "--no-prune").returncode == 0
    store = sorted(p.name for p in (job.job_dir / "store").rglob("*.tar"))
    project = job.job_dir / "project.mg"
    project.write_text(project.read_text()[:300])
    (job.job_dir / "store" / "manifest.json").write_text(
        json.dumps({**json.loads((job.job_dir / "store" / "manifest.json").read_text()), "published": {}}))
    proc = run(job)
    assert proc.returncode != 0
    beat = final_beat(job)
    assert beat.cause == hb.BAD_INPUT and "not valid JSON" in beat.reason and "delete" in beat.action
    assert sorted(p.name for p in (job.job_dir / "store").rglob("*.tar")) == store


def test_drive_full_blocks_with_what_is_needed(job):
    proc = run(job, "--drive-margin-gb", "100000")
    beat = final_beat(job)
    assert proc.returncode != 0 and beat.phase == hb.BLOCKED and beat.cause == hb.DRIVE_FULL
    assert "GB needed before CameraInit_1" in beat.reason


def test_corrupt_heartbeat_and_status_files_are_read_safely(tmp_path):
    for text in ("", "{", '{"job": "j"}', "[]", '{"job":"j","session":"s","seq":"1","time":"t","phase":"computing"}',
                 '{"job":"j","session":"s","seq":1,"time":"t","phase":"dancing"}'):
        with pytest.raises(hb.HeartbeatError):
            hb.parse(text)
    good = hb.parse('{"job":"j","session":"s","seq":1,"time":"t","phase":"computing","future_field":1}')
    assert good.seq == 1
    status = tmp_path / "status"
    for text in ("", "{", "[]", '{"status": 3}'):
        status.write_text(text)
        assert cache.read_status(status) is None


def test_corrupt_graph_files_raise_one_line(tmp_path):
    path = tmp_path / "p.mg"
    for text in ("", "{\"graph\": {", "{}", '{"graph": {"A_1": {"inputs": {}}}}',
                 '{"graph": {"A_1": {"nodeType": "A", "uids": {"0": "u"}, "inputs": {"x": "{B_1.out}"}}}}'):
        path.write_text(text)
        with pytest.raises(graph.GraphError) as error:
            graph.load(path)
        assert "\n" not in str(error.value)


def test_progress_command_reads_job_folder_and_plain_cache(job):
    assert run(job).returncode == 0
    out = subprocess.run([*job.command()[:3], "progress", str(job.job_dir), "--json"], capture_output=True,
                         text=True, env=job.env, check=True).stdout
    result = json.loads(out)
    assert result["nodes_done"] == result["nodes_total"] == 12 and result["current_node"] is None
    assert result["chunks_done"] == result["chunks_total"] and result["pruned_bytes"] > 0
    plain = subprocess.run([*job.command()[:3], "progress", "--graph", str(job.job_dir / "project.mg"),
                            "--cache", str(job.local / "colab_side" / "cache"), "--json"],
                           capture_output=True, text=True, env=job.env, check=True).stdout
    assert json.loads(plain)["nodes_total"] == 12


def test_meshroom_batch_releases_run_the_same_way(job, tmp_path):
    from keepalive_sim.meshroom_release import build_release

    archive = build_release(tmp_path / "release-2023", "2023.3")
    command = job.command("--meshroom", "2023.3")
    command[command.index("--meshroom-url") + 1] = str(archive)
    proc = subprocess.run(command, env=job.env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "meshroom_batch" in proc.stdout and "--compute no" in proc.stdout
    assert json.loads((job.job_dir / "project.mg").read_text())["header"]["releaseVersion"] == "2023.3.0"
    assert final_beat(job).phase == hb.DONE


def test_a_seed_style_cache_is_adopted_without_recomputing(job, tmp_path):
    seed_cache = tmp_path / "seed-cache"
    with tarfile.open(job.release) as tar:
        tar.extractall(tmp_path / "seed-meshroom", filter="tar")
    seed = subprocess.run([str(tmp_path / "seed-meshroom" / "Meshroom-2019.2.0" / "meshroom_photogrammetry"),
                           "--input", str(job.images), "--output", str(tmp_path / "seed-result"),
                           "--cache", str(seed_cache), "--forceStatus"], env=job.env, capture_output=True, text=True)
    assert seed.returncode == 0, seed.stderr
    proc = run(job, "--adopt-cache", str(seed_cache))
    assert proc.returncode == 0, proc.stdout[-2000:]
    events = [json.loads(line) for line in (job.job_dir / "events.jsonl").read_text().splitlines()]
    assert sum(e["event"] == "adopt" for e in events) == 11
    # nothing computed again but Publish, whose output folder is part of its uid (Publish.py: uid=[0]):
    # the seed's Publish copied to another folder
    assert [e["node"] for e in events if e["event"] == "chunk_done"] == ["Publish_1"]
    assert job.result_files() == {p.name: p.read_bytes() for p in sorted((tmp_path / "seed-result").iterdir())}
    assert any(seed_cache.rglob("status"))  # the seed cache itself is left as it was
