"""Every supported Meshroom release, as its own source describes it (tests/data/meshroom_<release>.json).

The descriptions were written down from Meshroom's source at each tag (docs/meshroom.md names the
files), separately from the stand-in, so a drift of either shows here. A job on each release must
publish exactly what that release's Publish node copies to its output folder.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from colab_side.events import read_events
from colab_side.meshroom.graph import links, load
from jobkit import Job, make_images
from test_colab_side_resume import chunk_done_keys, kill_after
from keepalive_sim.sample_job import extracted_release, save_project

DATA = Path(__file__).parent / "data"
RELEASES = ("2019.2", "2021.1", "2023.3", "2025.1")
IMAGES = 7


def description(release: str) -> dict:
    return json.loads((DATA / f"meshroom_{release}.json").read_text())


def expected_size(rule: str) -> int:
    """The node size that Meshroom's desc gives for these images."""
    if "inputFiles" in rule:
        return 3  # Publish: the length of its inputFiles list
    return IMAGES if "DynamicNodeSize" in rule else 1


def signature(folder: Path) -> dict[str, tuple[int, str]]:
    return {p.name: (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module", params=RELEASES)
def meshroom(request, tmp_path_factory):
    """(release, executables, images, root) of the stand-in release."""
    root = tmp_path_factory.mktemp(f"meshroom{request.param}")
    return request.param, extracted_release(root, request.param), make_images(root / "images", IMAGES), root


@pytest.fixture(scope="module")
def saved(meshroom):
    release, exe, images, root = meshroom
    return json.loads(save_project(exe, release, images, root / "project.mg", root / "out").read_text())


def assert_matches_description(saved: dict, release: str) -> None:
    """A saved ``.mg`` (with --output, for IMAGES images) has the structure the release's source gives it."""
    want = description(release)
    assert list(saved["header"]) == want["header_keys"]
    assert saved["header"]["fileVersion"] == want["fileVersion"]
    assert saved["header"]["releaseVersion"] == want["releaseVersion"]
    assert set(saved["graph"]) == set(want["nodes"])
    assert saved["header"]["nodesVersions"] == {n["nodeType"]: n["version"] for n in want["nodes"].values()}
    for name, node in saved["graph"].items():
        spec = want["nodes"][name]
        assert list(node) == want["node_keys"], name
        assert node["nodeType"] == spec["nodeType"]
        assert node["internalFolder"] == want["internalFolder"]
        uid = node[want["uid_field"]]
        assert isinstance(uid, str) if want["uid_field"] == "uid" else set(uid) == {"0"}, name
        size = expected_size(spec["size"])
        split = math.ceil(size / spec["blockSize"]) if spec["blockSize"] else 1
        assert node["parallelization"] == {"blockSize": spec["blockSize"], "size": size, "split": split}, name
        linked = {attr: value for attr, value in node["inputs"].items() if list(links(value))}
        assert linked == spec["links"], name
        assert node["outputs"] == spec["outputs"], name


def test_saved_graph_matches_the_release_source(meshroom, saved):
    assert_matches_description(saved, meshroom[0])


REAL_SOURCE = os.environ.get("KEEPALIVE_MESHROOM_SOURCE")


@pytest.mark.skipif(not REAL_SOURCE or not (Path(REAL_SOURCE) / "meshroom" / "core").is_dir(),
                    reason="set KEEPALIVE_MESHROOM_SOURCE to a Meshroom source tree (one tag) to check it")
def test_the_real_engine_saves_the_described_graph(tmp_path):
    """Meshroom's own code (tools/real_meshroom.py builds it into a release) saves what tests/data describes."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
    import real_meshroom

    release = real_meshroom.source_version(Path(REAL_SOURCE))
    with tarfile.open(real_meshroom.build_release(REAL_SOURCE, tmp_path / "release")) as tar:
        tar.extractall(tmp_path, filter="tar")
    images = make_images(tmp_path / "images", IMAGES)
    project = save_project(tmp_path / f"Meshroom-{release}.0", release, images, tmp_path / "project.mg", tmp_path / "out")
    assert_matches_description(json.loads(project.read_text()), release)


def test_publish_node_only_with_output(meshroom):
    release, exe, images, root = meshroom
    without = json.loads(save_project(exe, release, images, root / "no-output.mg").read_text())
    assert "Publish_1" not in without["graph"] and "Texturing_1" in without["graph"]


def test_status_fields_and_busy_chunks_are_only_reported(meshroom, saved, tmp_path):
    release, exe, _images, root = meshroom
    want = description(release)
    node = saved["graph"]["CameraInit_1"]
    uid = node["uid"] if want["uid_field"] == "uid" else node["uids"]["0"]
    folder = Path(want["internalFolder"].format(cache=tmp_path, nodeType="CameraInit", uid0=uid, uid=uid))
    folder.mkdir(parents=True)
    (folder / "status").write_text(json.dumps({"status": "RUNNING"}))
    done = subprocess.run([str(exe / "meshroom_compute"), str(root / "project.mg"), "--node", "CameraInit_1",
                           "--cache", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0 and want["busy_message"] in done.stdout
    status = json.loads((folder / "status").read_text())
    assert sorted(status) == want["status_fields"] and status["status"] == "SUCCESS"


def test_publish_copies_texturing_outside_the_cache_and_keeps_only_its_status(meshroom, saved, tmp_path):
    release, exe, _images, root = meshroom
    out = Path(saved["graph"]["Publish_1"]["inputs"]["output"])
    subprocess.run([str(exe / "meshroom_compute"), str(root / "project.mg"), "--cache", str(tmp_path)],
                   check=True, capture_output=True)
    graph = load(root / "project.mg")
    assert graph.final_nodes() == ["Publish_1"] and graph.nodes["Publish_1"].outputs == {}
    assert graph.publish_nodes() == {"Texturing_1"}
    publish = graph.nodes["Publish_1"].internal_folder(tmp_path)
    assert {p.name for p in publish.iterdir()} == {"status", "log", "statistics"}
    texturing = graph.nodes["Texturing_1"].internal_folder(tmp_path)
    assert signature(out) == {name: sig for name, sig in signature(texturing).items() if name in signature(out)}
    assert {Path(n).suffix for n in signature(out)} == {".obj", ".mtl", ".png" if release < "2023" else ".exr"}


def published_by_meshroom(release: str, images: Path, root: Path) -> dict[str, tuple[int, str]]:
    """What Meshroom itself publishes for ``images``: meshroom_photogrammetry/batch --output, computed whole."""
    exe = extracted_release(root / "meshroom", release)
    batch = "meshroom_photogrammetry" if release == "2019.2" else "meshroom_batch"
    subprocess.run([str(exe / batch), "--input", str(images), "--output", str(root / "published"),
                    "--cache", str(root / "whole-cache")], check=True, capture_output=True)
    return signature(root / "published")


@pytest.fixture(scope="module")
def uninterrupted(meshroom) -> dict[str, tuple[int, str]]:
    release, _exe, images, root = meshroom
    return published_by_meshroom(release, images, root / "uninterrupted")


def test_a_job_publishes_exactly_what_the_publish_node_publishes(meshroom, uninterrupted, tmp_path):
    release = meshroom[0]
    job = Job(tmp_path, images=IMAGES, meshroom=release)
    done = subprocess.run(job.command(), env=job.env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:]
    assert len(uninterrupted) == 3
    assert signature(job.job_dir / "result") == uninterrupted
    manifest = json.loads((job.job_dir / "store" / "manifest.json").read_text())
    assert manifest["published"] == {name: sha for name, (_size, sha) in uninterrupted.items()}
    pruned = {e["node"] for e in read_events(job.job_dir / "events.jsonl") if e.get("event") == "prune"}
    assert "Texturing_1" not in pruned and "Texturing_1" not in manifest["pruned"]
    assert "Texturing_1:0" in manifest["chunks"]


def test_twenty_kills_on_the_newest_release_publish_the_uninterrupted_result(tmp_path):
    """2025.1 (single uid, blocks of 12/24): SIGKILLed 20 times at random, the result is Meshroom's own."""
    seed = int(os.environ.get("KILL_SEED", random.randrange(1 << 30)))
    print(f"kill seed {seed}")
    rng = random.Random(seed)
    # 40 images: 17 chunks of 0.5 s (DepthMap 4 of 12, DepthMapFilter 2 of 24...), more than 20 short sessions finish
    job = Job(tmp_path / "killed", images=40, chunk_seconds=0.5, meshroom="2025.1")
    kills = 0
    while kills < 20 and kill_after(job, rng.uniform(0.2, 1.2)) != 0:
        kills += 1
    assert kills == 20, f"the job finished after {kills} kills (seed {seed})"
    done = subprocess.run(job.command(), env=job.env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:]
    assert signature(job.job_dir / "result") == published_by_meshroom("2025.1", job.images, tmp_path / "alone") != {}
    events = read_events(job.job_dir / "events.jsonl")
    assert not [e for e in events if e.get("event") == "error"], "a node failed: something it needed was pruned"
    assert "Texturing_1" not in {e["node"] for e in events if e.get("event") == "prune"}
    done_keys = chunk_done_keys(events)
    assert len(done_keys) == len(set(done_keys)), "a chunk was computed twice"


def test_texturing_archives_outlive_publishing_until_the_result_is_verified(tmp_path):
    """Pruning keeps the published node: a result damaged on Drive is published again from the store, nothing recomputed."""
    job = Job(tmp_path, images=5, meshroom="2019.2")
    assert subprocess.run(job.command(), env=job.env, capture_output=True, timeout=240).returncode == 0
    result = signature(job.job_dir / "result")
    manifest = json.loads((job.job_dir / "store" / "manifest.json").read_text())
    assert "Meshing_1" in manifest["pruned"] and "Texturing_1" not in manifest["pruned"]
    assert (job.job_dir / "store" / manifest["chunks"]["Texturing_1:0"]["archive"]).is_file()
    (job.job_dir / "result" / "texturedMesh.obj").write_bytes(b"cut short by a sync")
    sessions_before = len(read_events(job.job_dir / "events.jsonl"))
    again = subprocess.run(job.command(), env=job.env, capture_output=True, text=True, timeout=240)
    assert again.returncode == 0, again.stdout[-2000:]
    assert signature(job.job_dir / "result") == result
    assert not chunk_done_keys(read_events(job.job_dir / "events.jsonl")[sessions_before:]), "a chunk was recomputed"


def test_a_result_lost_to_pruning_says_how_to_compute_it_again(tmp_path):
    """A job of an older version that pruned Texturing and published nothing: failed NOTHING_TO_PUBLISH, never done,
    and the action it names brings the result back."""
    job = Job(tmp_path, images=4, meshroom="2023.3")
    assert subprocess.run(job.command(), env=job.env, capture_output=True, timeout=240).returncode == 0
    result = signature(job.job_dir / "result")
    manifest_path = job.job_dir / "store" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["chunks"].pop("Texturing_1:0")
    manifest["pruned"]["Texturing_1"] = {"bytes": 1, "chunks": 1}
    manifest["published"] = {}
    manifest_path.write_text(json.dumps(manifest))
    for path in (job.job_dir / "result").iterdir():
        path.unlink()
    assert subprocess.run(job.command(), env=job.env, capture_output=True, timeout=240).returncode != 0
    beat = json.loads((job.job_dir / "heartbeat.json").read_text())
    assert beat["cause"] == "NOTHING_TO_PUBLISH" and "Texturing_1 was pruned" in beat["action"]
    manifest = json.loads(manifest_path.read_text())
    del manifest["pruned"]["Texturing_1"]  # what the action says
    manifest_path.write_text(json.dumps(manifest))
    again = subprocess.run(job.command(), env=job.env, capture_output=True, text=True, timeout=240)
    assert again.returncode == 0, again.stdout[-2000:]
    assert signature(job.job_dir / "result") == result
