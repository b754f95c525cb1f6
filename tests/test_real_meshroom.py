"""colab_side against the REAL Meshroom engine (its ``meshroom`` package and ``bin/`` scripts), AliceVision stood in.

Runs only where a Meshroom source tree of one tag is on the machine: set ``KEEPALIVE_MESHROOM_SOURCE`` to it
(for example the output of ``git archive v2019.2.0`` of alicevision/Meshroom, see docs/real-meshroom.md).
Nothing of Meshroom is in this repository; the harness is tools/real_meshroom.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import wait_for

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import real_meshroom  # noqa: E402

SOURCE = os.environ.get("KEEPALIVE_MESHROOM_SOURCE")
pytestmark = pytest.mark.skipif(not SOURCE or not (Path(SOURCE) / "meshroom" / "core").is_dir(),
                                reason="set KEEPALIVE_MESHROOM_SOURCE to a Meshroom source tree to run these")


def test_killed_runs_publish_exactly_what_meshrooms_publish_node_writes(tmp_path):
    # two kills at random moments (a fast machine may finish a session before its moment comes), then one
    # as Texturing starts, whatever the machine's speed
    report = real_meshroom.verify(SOURCE, tmp_path, kills=2, images=6, seconds=0.2, seed=7, max_delay=8.0,
                                  targets=["node_start:Texturing_1"])
    reference, killed = report["reference"], report["killed"]
    assert reference["exit"] == 0 and reference["heartbeat"]["phase"] == "done", reference["heartbeat"]
    published = reference["meshroom_published"]
    assert any(name.startswith("texturedMesh.") for name in published)
    assert any(name.startswith("texture_") for name in published)
    assert reference["result"] == published  # result/ holds what Meshroom's Publish copied, byte for byte
    assert report["killed"]["kills"] >= 2 and killed["heartbeat"]["phase"] == "done"
    assert killed["result"] == published
    assert killed["chunks_redone"] == [], "a chunk made durable before a kill was computed again"


def heartbeat(job_dir: Path) -> dict:
    try:
        return json.loads((job_dir / "heartbeat.json").read_text())
    except (OSError, ValueError):
        return {}


def test_a_silent_alicevision_call_is_seen_through_its_log_and_parameters_reach_the_saved_graph(tmp_path):
    archive = real_meshroom.build_release(SOURCE, tmp_path / "release")
    version = real_meshroom.source_version(Path(SOURCE))
    images = real_meshroom.make_images(tmp_path / "drive" / "images", 4)
    code = tmp_path / "code"
    real_meshroom.snapshot_colab_side(code)
    env = real_meshroom.job_env(4.0, code)

    def command(job, *extra):
        return real_meshroom.job_command(tmp_path / "drive", images, job, version, archive, tmp_path / f"local-{job}",
                                         extra)

    bad = subprocess.run(command("bad", "--param", "DepthMap_1.downscal=4"), env=env, capture_output=True, timeout=240,
                         cwd=tmp_path)
    beat = heartbeat(tmp_path / "drive" / "keepalive" / "bad")
    assert bad.returncode != 0 and beat["cause"] == "BAD_INPUT", beat
    assert "DepthMap_1" in beat["reason"] and "downscal " in beat["reason"] and "downscale" in beat["reason"]
    refused = subprocess.run(command("refused", "--param", "DepthMap_1.downscale=abc"), env=env, capture_output=True,
                             timeout=240, cwd=tmp_path)
    beat = heartbeat(tmp_path / "drive" / "keepalive" / "refused")
    assert refused.returncode != 0 and beat["cause"] == "BAD_INPUT" and "refused the parameter values" in beat["reason"]

    job_dir = tmp_path / "drive" / "keepalive" / "good"
    proc = subprocess.Popen(command("good", "--param", "DepthMap_1.downscale=4"), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, cwd=tmp_path)
    try:
        # while a chunk computes, meshroom_compute prints nothing: the stand-in's words are only in the chunk's log
        # file (aliceVision_cameraInit also runs when the graph is built, its output on stdout: not counted)
        def working_line_while_computing():
            line = heartbeat(job_dir).get("last_log_line") or ""
            return ": working, " in line and not line.startswith("aliceVision_cameraInit")

        assert wait_for(working_line_while_computing, timeout=200), heartbeat(job_dir)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    saved = json.loads((job_dir / "project.mg").read_text())
    assert saved["graph"]["DepthMap_1"]["inputs"]["downscale"] == 4
