"""Incremental mapping in units: each chunk registers ``snapshot`` images more from the model the chunk before
left on Drive, so a kill loses one chunk of mapping, and a job killed at random moments ends done with the model
files of an uninterrupted one."""

from __future__ import annotations

import os
import random
import re

import pytest

from colab_side import heartbeat as hb
from colab_side.colmap import units
from colab_side.colmap.options import Choices
from colab_side.layout import job_layout

VIEWS = 9  # of a textured sphere: incremental mapping registers all of them
PARAMS = ("--param", "mapper=incremental", "--param", "snapshot=3", "--param", "batch=6", "--param", "block=40")


def test_incremental_mapping_is_planned_in_chunks_of_snapshot_images_and_global_mapping_in_one():
    incremental = Choices.read(["mapper=incremental", "snapshot=3"])
    assert units.steps(VIEWS, incremental, dense=False).nodes["mapping"].chunk_count == 3
    assert units.steps(10, incremental, dense=False).nodes["mapping"].chunk_count == 4
    assert units.steps(2700, units.resolve(Choices.read(["mapper=incremental"]), 2700),
                       dense=False).nodes["mapping"].chunk_count == 27  # 100 images a chunk by default
    assert units.steps(2700, units.resolve(Choices.read([]), 2700), dense=False).nodes["mapping"].chunk_count == 1


@pytest.fixture(scope="module")
def views(tmp_path_factory):
    pytest.importorskip("pycolmap")
    from keepalive_sim.sphere_scene import render

    return render(tmp_path_factory.mktemp("sphere") / "images", VIEWS)


@pytest.mark.timeout(300)
def test_an_incremental_job_killed_at_random_moments_ends_done_with_the_model_of_an_uninterrupted_one(views, tmp_path):
    import pycolmap
    from test_colmap_engine import beat, count, kill_at_random_moments, result, run_in_process

    assert run_in_process(views, tmp_path / "whole", *PARAMS) == 0, beat(tmp_path / "whole").reason
    said = " ".join(path.read_text() for path in job_layout(tmp_path / "whole" / "drive", "sfm").logs.glob("*.log"))
    assert re.findall(r"colmap: model: (\d+) of 9 images registered", said) == ["3", "6", "9"]
    assert said.count("kept for the next chunk") == 2
    assert beat(tmp_path / "whole").chunks_total == 1 + 2 + 1 + 1 + 3  # 36 pairs, 40 a block; 3 mapping chunks
    reference = result(tmp_path / "whole")
    assert sorted(reference) == sorted(units.MODEL_FILES)  # the snapshots are not the result
    model = pycolmap.Reconstruction(job_layout(tmp_path / "whole" / "drive", "sfm").result / units.MODEL)
    assert model.num_reg_images() == VIEWS

    seed = int(os.environ.get("KILL_SEED", random.randrange(1 << 30)))
    where = kill_at_random_moments(views, tmp_path / "killed", 2, seed, *PARAMS, after=(2, 6), within=0.3)
    assert len(where) == 2 and 6 <= where[1] < 8, (seed, where)  # the second after a snapshot, before the end
    assert beat(tmp_path / "killed").phase == hb.DONE
    assert result(tmp_path / "killed") == reference, (seed, where)
    assert count(tmp_path / "killed", "chunk_done") >= 8
    print(f"kill seed {seed}: chunks done at each kill {where}")
