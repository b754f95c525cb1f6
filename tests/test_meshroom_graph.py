"""Meshroom knowledge: the graph's links (through other nodes' inputs), chunks, what is published and what may be pruned."""

from __future__ import annotations

import json

import pytest

from colab_side.meshroom import cache, pruning
from colab_side.meshroom.graph import GraphError, load, parse
from keepalive_sim.sample_job import extracted_release, make_images, save_project


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """release → a project saved by the stand-in with --output, as the runner saves it (10 images)."""
    root = tmp_path_factory.mktemp("graph")
    images = make_images(root / "images", 10)
    projects = {}
    for release in ("2019.2", "2023.3", "2025.1"):
        exe = extracted_release(root / release, release)
        projects[release] = save_project(exe, release, images, root / f"{release}.mg", root / "out")
    return projects


@pytest.fixture(scope="module")
def project(saved):
    return saved["2019.2"]


def test_links_through_inputs_reach_the_node_that_owns_the_output(project):
    graph = load(project)
    assert graph.consumers("DepthMap_1") == {"DepthMapFilter_1", "Meshing_1"}  # Meshing via DepthMapFilter.depthMapsFolder
    assert graph.consumers("PrepareDenseScene_1") == {"DepthMap_1", "Texturing_1"}  # Texturing via DepthMap.imagesFolder
    assert graph.dependencies("ImageMatching_1") == {"FeatureExtraction_1", "CameraInit_1"}
    assert graph.dependencies("Meshing_1") == {"StructureFromMotion_1", "DepthMap_1", "DepthMapFilter_1"}
    assert graph.order()[0] == "CameraInit_1" and graph.order()[-1] == "Publish_1"


def test_a_node_without_outputs_is_seen_through(project):
    graph = load(project)
    assert graph.final_nodes() == ["Publish_1"]
    assert graph.published_outputs() == [("Texturing_1", "outputMesh"), ("Texturing_1", "outputMaterial"),
                                         ("Texturing_1", "outputTextures")]
    assert graph.publish_nodes() == {"Texturing_1"}


def test_a_link_to_an_output_that_is_not_saved_still_orders_and_publishes_its_node(saved, tmp_path):
    """2025.1 does not save outputs whose value is known only once computed (isDynamicValue)."""
    doc = json.loads(saved["2025.1"].read_text())
    doc["graph"]["Publish_1"]["inputs"]["inputFiles"] = ["{Texturing_1.dynamicOutput}"]
    graph = parse(json.dumps(doc))
    assert graph.dependencies("Publish_1") == {"Texturing_1"} and graph.publish_nodes() == {"Texturing_1"}
    assert cache.publish_files(graph, tmp_path) == {}  # no path to look at: the job fails NOTHING_TO_PUBLISH


def test_later_releases_have_their_own_links(saved):
    graph = load(saved["2023.3"])
    assert graph.consumers("DepthMap_1") == {"DepthMapFilter_1"}  # 2021.1+: Meshing reads DepthMapFilter only
    assert graph.dependencies("StructureFromMotion_1") == {"CameraInit_1", "FeatureExtraction_1", "FeatureMatching_1"}


def test_chunks_come_from_the_saved_graph_never_from_a_table(saved):
    chunks = {release: {n: node.chunk_count for n, node in load(path).nodes.items()} for release, path in saved.items()}
    assert chunks["2019.2"]["DepthMap_1"] == 4 and chunks["2019.2"]["DepthMapFilter_1"] == 1  # blocks of 3 and 10
    assert chunks["2023.3"]["DepthMap_1"] == 1 and chunks["2025.1"]["DepthMap_1"] == 1  # blocks of 12
    assert load(saved["2019.2"]).chunks_total == 15
    doc = json.loads(saved["2023.3"].read_text())
    doc["graph"]["DepthMap_1"]["parallelization"] = {"blockSize": 2, "size": 10, "split": 5}  # a user's own setting
    assert parse(json.dumps(doc)).nodes["DepthMap_1"].chunk_count == 5


def test_a_graph_saved_without_its_chunks_is_refused(saved):
    """Real 2021.1 saved without --cache: every split 0 (and stale uids); computing it would skip chunks."""
    doc = json.loads(saved["2019.2"].read_text())
    for node in doc["graph"].values():
        node["parallelization"].update(size=0, split=0)
    with pytest.raises(GraphError, match="DepthMap_1|FeatureExtraction_1"):
        parse(json.dumps(doc))


def test_both_uid_forms_and_their_cache_folders(saved):
    old = load(saved["2019.2"]).nodes["DepthMap_1"]
    new = load(saved["2025.1"]).nodes["DepthMap_1"]
    assert old.uid0 == json.loads(saved["2019.2"].read_text())["graph"]["DepthMap_1"]["uids"]["0"]
    assert new.uid0 == json.loads(saved["2025.1"].read_text())["graph"]["DepthMap_1"]["uid"]
    assert old.status_file("/c", 2).as_posix() == f"/c/DepthMap/{old.uid0}/2.status"
    assert new.status_file("/c", 0).as_posix() == f"/c/DepthMap/{new.uid0}/0.status"
    assert load(saved["2025.1"]).nodes["Meshing_1"].status_file("/c").name == "status"
    texturing = load(saved["2025.1"]).nodes["Texturing_1"]
    assert texturing.output_path("outputMesh", "/c") == f"/c/Texturing/{texturing.uid0}/texturedMesh.obj"


def test_publish_files_are_what_publish_would_copy(saved, tmp_path):
    graph = load(saved["2019.2"])
    folder = graph.nodes["Texturing_1"].internal_folder(tmp_path)
    folder.mkdir(parents=True)
    for name in ("texturedMesh.obj", "texturedMesh.mtl", "texture_1001.png", "texture_1002.png", "status", "log",
                 "texture_1003.jpg", "status.writing.1234"):
        (folder / name).write_text(name)
    assert sorted(cache.publish_files(graph, tmp_path)) == [
        "texture_1001.png", "texture_1002.png", "texturedMesh.mtl", "texturedMesh.obj"]
    no_publish = parse(json.dumps({"graph": {name: node for name, node in json.loads(saved["2019.2"].read_text())[
        "graph"].items() if name != "Publish_1"}}))
    assert no_publish.final_nodes() == ["Texturing_1"]  # a final node with outputs publishes its folder's files
    assert sorted(cache.publish_files(no_publish, tmp_path)) == [
        "texture_1001.png", "texture_1002.png", "texture_1003.jpg", "texturedMesh.mtl", "texturedMesh.obj"]


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
    assert "PrepareDenseScene_1" in everything and "MeshFiltering_1" in everything


def test_the_published_node_is_never_prunable_although_its_only_consumer_finished(saved):
    for path in saved.values():
        graph = load(path)
        assert graph.consumers("Texturing_1") == {"Publish_1"}
        assert "Texturing_1" not in pruning.prunable(graph, set(graph.order()), set())


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
