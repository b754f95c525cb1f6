"""The chunks this PC sees durable in the store's manifest through Drive, beside what the runtime says."""

from __future__ import annotations

import json

from colab_side import heartbeat as hb
from colab_side.layout import job_layout
from keepalive import config, status
from keepalive.drive_store import DurableOnPC


def entry(node: str, chunk: int) -> dict:
    return {"archive": f"{node}/0/{chunk}.tar", "size": 1000 + chunk, "sha256": f"{chunk:064x}"}


def manifest(*chunks, bad: int = 0) -> str:
    entries = {f"{node}:{chunk}": entry(node, chunk) for node, chunk in chunks}
    entries.update({f"Broken:{i}": {"archive": "../../etc/passwd", "size": -1} for i in range(bad)})
    return json.dumps({"version": 1, "job": "castle", "chunks": entries, "pruned": {}, "errors": {}})


def test_only_valid_entries_of_the_manifest_count_and_a_cut_manifest_falls_back_to_its_twin(tmp_path):
    store = job_layout(tmp_path, "castle").store
    durable = DurableOnPC(tmp_path, "castle")
    count = lambda: durable.facts()["chunks_durable_on_pc"]  # noqa: E731
    assert count() is None  # nothing synced yet
    store.mkdir(parents=True)
    (store / "manifest.json").write_text(manifest(("DepthMap_1", 0), ("DepthMap_1", 1), bad=2))
    assert count() == 2
    (store / "manifest.bak.json").write_text(manifest(("DepthMap_1", 0), ("DepthMap_1", 1), ("DepthMap_1", 2)))
    (store / "manifest.json").write_text(manifest(("DepthMap_1", 0))[:40])  # Drive is still syncing it
    assert count() == 3
    (store / "manifest.json").write_text(manifest(*[("Meshing_1", c) for c in range(5)]))
    assert count() == 5
    assert DurableOnPC(None, "castle").facts()["chunks_durable_on_pc"] is None


def test_status_shows_the_durable_chunks_beside_the_runtimes_count(tmp_path):
    drive = tmp_path / "drive"
    cfg = config.load(env={"KEEPALIVE_HOME": str(tmp_path / "home")}, job="castle", drive_folder=str(drive))
    path = hb.heartbeat_path(drive, "castle")
    path.parent.mkdir(parents=True)
    path.write_text(hb.Heartbeat(job="castle", session="s", seq=1, time="2026-01-01T00:00:00+00:00",
                                 phase="computing", chunks_done=7, chunks_total=20).to_json())
    store = job_layout(drive, "castle").store
    store.mkdir()
    (store / "manifest.json").write_text(manifest(*[("FeatureExtraction_1", c) for c in range(4)]))
    info = status.collect(cfg)
    assert (info["chunks_done"], info["chunks_durable_on_pc"]) == (7, 4)
    assert "7/20 chunks, 4 saved on Drive" in status.render_text(info)


def test_pruned_chunks_count_as_saved_and_the_published_result_and_the_jobs_start_are_read(tmp_path):
    store = job_layout(tmp_path, "castle").store
    store.mkdir(parents=True)
    doc = json.loads(manifest(("Texturing_1", 0), ("Texturing_1", 1)))
    doc["pruned"] = {"DepthMap_1": {"bytes": 10, "chunks": 12}, "Meshing_1": {"bytes": 5, "chunks": 1},
                     "Odd_1": {"chunks": "many"}}
    (store / "manifest.json").write_text(json.dumps(doc))
    durable = DurableOnPC(tmp_path, "castle")
    assert durable.facts() == {"chunks_durable_on_pc": 15, "result_files_on_pc": None, "job_started": None}
    doc["published"] = {"texturedMesh.obj": "a" * 64, "texturedMesh.mtl": "b" * 64}
    (store / "manifest.json").write_text(json.dumps(doc) + " ")
    job_layout(tmp_path, "castle").events.write_text(
        '{"event": "session_start", "time": "2026-01-01T10:00:00+00:00"}\n{"event": "install"}\n')
    assert durable.facts() == {"chunks_durable_on_pc": 15, "result_files_on_pc": 2,
                               "job_started": "2026-01-01T10:00:00+00:00"}
