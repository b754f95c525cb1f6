"""The Meshroom stand-in writes what real Meshroom writes (docs/meshroom.md), and its release archives install."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import tarfile
import time

import pytest
from hypothesis import given, strategies as st

from colab_side.drive import Drive
from colab_side.meshroom import install, versions
from keepalive_sim.meshroom_release import build_release
from keepalive_sim.sample_job import make_images


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
    assert status["status"] == "SUCCESS"  # its fields, per release: test_meshroom_releases
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


def test_errors_are_errors(meshroom):
    exe, project, root = meshroom
    graph = json.loads(project.read_text())["graph"]
    assert compute(exe, project, root / "cache", "--node", "CameraInit_1", "--forceStatus").returncode == 0
    missing_input = compute(exe, project, root / "cache", "--node", "DepthMap_1", "--iteration", "0", "--forceStatus",
                            check=False)
    assert missing_input.returncode == 1 and "missing or pruned" in missing_input.stderr
    depth = root / "cache" / "DepthMap" / graph["DepthMap_1"]["uids"]["0"]
    assert json.loads((depth / "0.status").read_text())["status"] == "ERROR"
    failing = compute(exe, project, root / "cache", "--node", "FeatureExtraction_1", "--forceStatus", check=False,
                      env=dict(os.environ, MESHROOM_STANDIN_FAIL="FeatureExtraction_1"))
    assert failing.returncode == 1


@pytest.mark.parametrize("version, archive, top", [
    ("2021.1", "Meshroom-2021.1.0-linux-cuda10.tar.gz", "Meshroom-2021.1.0-av2.4.0-centos7-cuda10.2"),
    ("2023.3", "Meshroom-2023.3.0-linux.tar.gz", "Meshroom-2023.3.0"),
    ("2025.1", "Meshroom-2025.1.0-Linux.tar.gz", "Meshroom-2025.1.0"),
])
def test_batch_releases_have_their_archive_names_and_meshroom_batch(tmp_path, version, archive, top):
    path = build_release(tmp_path, version)
    with tarfile.open(path) as tar:
        names = tar.getnames()
    assert path.name == archive
    assert f"{top}/meshroom_batch" in names and f"{top}/meshroom_compute" in names


def test_extract_takes_the_top_level_executables_not_a_deeper_script(tmp_path):
    """A script of the same name deeper in the tree (the engine's bin/, a plugin) is never chosen."""
    version = versions.get("2023.3")
    archive = tmp_path / version.archive
    with tarfile.open(archive, "w:gz") as tar:
        for name in ("Meshroom-2023.3.0/aaa/bin/meshroom_batch", "Meshroom-2023.3.0/aaa/bin/meshroom_compute",
                     "Meshroom-2023.3.0/meshroom_batch", "Meshroom-2023.3.0/meshroom_compute"):
            info = tarfile.TarInfo(name)
            info.size = 2
            tar.addfile(info, io.BytesIO(b"#\n"))
    extracted = install.extract(archive, tmp_path / "local", version, Drive(tmp_path))
    assert extracted == tmp_path / "local" / "meshroom" / "Meshroom-2023.3.0"


folders = st.lists(st.lists(st.sampled_from(["a", "b", "bin", "lib"]), max_size=3).map("/".join), min_size=1, max_size=5)


@given(both=folders, batch_only=folders, order=st.randoms())
def test_the_chosen_folder_is_the_shallowest_holding_both_executables(both, batch_only, order):
    version = versions.get("2025.1")
    files = [f"{f}/{exe}" if f else exe for f in both for exe in (version.batch_exe, version.compute_exe)]
    files += [f"{f}/{version.batch_exe}" if f else version.batch_exe for f in batch_only]
    chosen = install.executables_dir(files, version)
    depth = lambda folder: folder.count("/") + bool(folder)  # noqa: E731
    assert chosen in both and depth(chosen) == min(map(depth, both))
    order.shuffle(files)
    assert install.executables_dir(files, version) == chosen
