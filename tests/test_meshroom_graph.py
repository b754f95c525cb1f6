"""Meshroom knowledge: the graph's links (through other nodes' inputs), chunks, and what may be pruned."""

from __future__ import annotations

import json
import subprocess
import tarfile

import pytest

from colab_side.meshroom import cache, pruning
from colab_side.meshroom.graph import load
from keepalive_sim.meshroom_release import build_release
from keepalive_sim.sample_job import make_images


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project saved by the stand-in's meshroom_photogrammetry --save, as the runner does."""
    root = tmp_path_factory.mktemp("graph")
    archive = build_release(root)
    with tarfile.open(archive) as tar:
        tar.extractall(root, filter="tar")
    images = make_images(root / "images", 10)
    project = root / "project.mg"
    subprocess.run([str(root / "Meshroom-2019.2.0" / "meshroom_photogrammetry"), "--input", str(images),
                    "--output", str(root / "out"), "--save", str(project)], check=True, capture_output=True)
    return project


def test_links_through_inputs_reach_the_node_that_owns_the_output(project):
    graph = load(project)
    assert graph.consumers("DepthMap_1") == {"DepthMapFilter_1", "Meshing_1"}  # Meshing via DepthMapFilter.depthMapsFolder
    assert graph.consumers("PrepareDenseScene_1") == {"DepthMap_1", "Texturing_1"}  # Texturing via DepthMap.imagesFolder
    assert graph.dependencies("ImageMatching_1") == {"FeatureExtraction_1", "CameraInit_1"}
    assert graph.dependencies("Meshing_1") == {"StructureFromMotion_1", "DepthMap_1", "DepthMapFilter_1"}
    assert graph.final_nodes() == ["Texturing_1"]
    assert graph.order()[0] == "CameraInit_1" and graph.order()[-1] == "Texturing_1"


def test_chunks_follow_block_size(project):
    graph = load(project)
    chunks = {name: node.chunk_count for name, node in graph.nodes.items()}
    assert chunks["FeatureExtraction_1"] == 1 and chunks["DepthMap_1"] == 4 and chunks["DepthMapFilter_1"] == 1
    assert chunks["Meshing_1"] == 1 and graph.chunks_total == 14
    depth = graph.nodes["DepthMap_1"]
    assert depth.status_file("/c", 2).as_posix() == f"/c/DepthMap/{depth.uid0}/2.status"
    assert graph.nodes["Meshing_1"].status_file("/c").name == "status"


def test_prunable_only_once_every_consumer_is_finished(project):
    graph = load(project)
    order = graph.order()
    finished = set(order[: order.index("DepthMapFilter_1") + 1])
    assert "DepthMap_1" not in pruning.prunable(graph, finished, set())  # Meshing still needs it
    assert "PrepareDenseScene_1" not in pruning.prunable(graph, finished, set())  # Texturing still needs it
    finished.add("Meshing_1")
    now = pruning.prunable(graph, finished, set())
    assert "DepthMap_1" in now and "DepthMapFilter_1" in now and "PrepareDenseScene_1" not in now
    everything = pruning.prunable(graph, set(order), set(now))
    assert "PrepareDenseScene_1" in everything and "Texturing_1" not in everything


def test_interrupted_statuses_are_reset_and_garbage_ignored(project, tmp_path):
    graph = load(project)
    node = graph.nodes["DepthMap_1"]
    for chunk, status in enumerate(["RUNNING", "SUBMITTED", "ERROR", "SUCCESS"]):
        path = node.status_file(tmp_path, chunk)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"status": status, "nodeName": "DepthMap_1"}))
    (node.internal_folder(tmp_path) / "0.status.writing.1234").write_text('{"status": "SUCC')
    reset = cache.reset_interrupted(node, tmp_path)
    assert [p.name for p in reset] == ["0.status", "1.status"]
    assert cache.chunk_statuses(node, tmp_path) == ["NONE", "NONE", "ERROR", "SUCCESS"]
    assert json.loads(node.status_file(tmp_path, 0).read_text())["nodeName"] == "DepthMap_1"
    assert not any(".writing." in name for name in cache.snapshot(node.internal_folder(tmp_path)))
