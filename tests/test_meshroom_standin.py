"""The Meshroom stand-in writes what real Meshroom writes (shared/facts/meshroom.md)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tarfile
import time

import pytest

from keepalive_sim.meshroom_release import build_release
from keepalive_sim.sample_job import make_images

STATUS_FIELDS = {"status", "execMode", "nodeName", "nodeType", "packageName", "packageVersion", "graph",
                 "commandLine", "env", "startDateTime", "endDateTime", "elapsedTime", "elapsedTimeStr",
                 "hostname", "sessionUid"}


@pytest.fixture
def meshroom(tmp_path):
    archive = build_release(tmp_path)
    assert archive.name == "Meshroom-2019.2.0-linux.tar.gz"
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path, filter="tar")
    exe = tmp_path / "Meshroom-2019.2.0"
    images = make_images(tmp_path / "images", 5)
    project = tmp_path / "project.mg"
    subprocess.run([str(exe / "meshroom_photogrammetry"), "--input", str(images), "--output", str(tmp_path / "out"),
                    "--save", str(project)], check=True, capture_output=True)
    return exe, project, tmp_path


def compute(exe, project, cache, *args, env=None, check=True):
    return subprocess.run([str(exe / "meshroom_compute"), str(project), "--cache", str(cache), *args],
                          capture_output=True, text=True, env=env, check=check)


def test_cache_layout_and_status_files_are_meshrooms(meshroom):
    exe, project, root = meshroom
    graph = json.loads(project.read_text())["graph"]
    assert graph["ImageMatching_1"]["inputs"]["input"] == "{FeatureExtraction_1.input}"
    assert graph["DepthMap_1"]["parallelization"] == {"blockSize": 3, "size": 5, "split": 2}
    compute(exe, project, root / "cache", "--forceStatus")
    depth = root / "cache" / "DepthMap" / graph["DepthMap_1"]["uids"]["0"]
    names = {p.name for p in depth.iterdir()}
    assert {"0.status", "0.log", "0.statistics", "1.status", "1.log", "1.statistics"} <= names
    status = json.loads((depth / "0.status").read_text())
    assert set(status) == STATUS_FIELDS and status["status"] == "SUCCESS"
    meshing = root / "cache" / "Meshing" / graph["Meshing_1"]["uids"]["0"]
    assert {"status", "log", "statistics", "mesh.obj", "densePointCloud.abc"} <= {p.name for p in meshing.iterdir()}


def test_outputs_are_deterministic(meshroom):
    exe, project, root = meshroom
    for cache in ("a", "b"):
        compute(exe, project, root / cache, "--forceStatus")
    texturing = json.loads(project.read_text())["graph"]["Texturing_1"]["uids"]["0"]
    read = lambda cache: {p.name: p.read_bytes() for p in (root / cache / "Texturing" / texturing).glob("texture*")}
    assert read("a") == read("b") != {}


def test_a_kill_mid_status_write_leaves_garbage_and_the_old_status(meshroom):
    exe, project, root = meshroom
    env = dict(os.environ, MESHROOM_STANDIN_PAUSE_IN_WRITE="5")
    proc = subprocess.Popen([str(exe / "meshroom_compute"), str(project), "--cache", str(root / "cache"),
                             "--node", "CameraInit_1", "--forceStatus"], env=env, start_new_session=True)
    folder = root / "cache" / "CameraInit"
    deadline = time.monotonic() + 20
    while not list(folder.glob("*/status.writing.*")) and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list(folder.glob("*/status.writing.*"))
    assert not list(folder.glob("*/status"))  # the RUNNING status was never renamed into place


def test_running_is_refused_without_force_status_and_errors_are_errors(meshroom):
    exe, project, root = meshroom
    graph = json.loads(project.read_text())["graph"]
    folder = root / "cache" / "CameraInit" / graph["CameraInit_1"]["uids"]["0"]
    folder.mkdir(parents=True)
    (folder / "status").write_text(json.dumps({"status": "RUNNING"}))
    refused = compute(exe, project, root / "cache", "--node", "CameraInit_1", check=False)
    assert refused.returncode != 0 and "already submitted" in refused.stderr
    assert compute(exe, project, root / "cache", "--node", "CameraInit_1", "--forceStatus").returncode == 0
    missing_input = compute(exe, project, root / "cache", "--node", "DepthMap_1", "--iteration", "0", "--forceStatus",
                            check=False)
    assert missing_input.returncode == 1 and "missing or pruned" in missing_input.stderr
    depth = root / "cache" / "DepthMap" / graph["DepthMap_1"]["uids"]["0"]
    assert json.loads((depth / "0.status").read_text())["status"] == "ERROR"
    failing = compute(exe, project, root / "cache", "--node", "FeatureExtraction_1", "--forceStatus", check=False,
                      env=dict(os.environ, MESHROOM_STANDIN_FAIL="FeatureExtraction_1"))
    assert failing.returncode == 1


def test_batch_release_has_meshroom_batch(tmp_path):
    archive = build_release(tmp_path, "2023.3")
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert "Meshroom-2023.3.0/meshroom_batch" in names and "Meshroom-2023.3.0/meshroom_compute" in names
