"""``plan``'s verdict: the first line says whether the job fits a free account, then the settings to use."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from colab_side.meshroom import advice, estimates
from colab_side.settings import GB
from test_plan import colab_plan, images

RELEASES = ("2019.2", "2021.1", "2023.3", "2025.1")


@pytest.mark.parametrize("release", RELEASES)
def test_the_seeds_2700_photos_fit_a_free_account_with_the_settings_printed(release):
    chosen = advice.advise(estimates.load(), release, 2700, 11 * GB, 2 * GB)
    assert chosen.fits and not chosen.chosen.problems()
    option = chosen.chosen
    assert option.local_need <= 34 * GB and option.store.peak_bytes <= 11 * GB
    assert option.mean_redo <= 3600 and option.worst.extra_seconds + option.worst.seconds <= 12 * 3600
    assert [o.downscale for o in chosen.tried][0] == 2  # the default quality is tried first


def test_the_first_line_is_the_verdict_and_its_settings_are_what_the_notebook_accepts(tmp_path):
    proc = colab_plan("--images", images(tmp_path / "photos", 2700), "--meshroom", "2023.3")
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first == "fits a free account with --param DepthMap_1.downscale=8 --drive-budget 11.0"
    settings = first.removeprefix("fits a free account with ")
    notebook = subprocess.run([sys.executable, "-m", "keepalive", "notebook", "--out", str(tmp_path / "nb.ipynb"),
                               "--meshroom", "2023.3", *shlex.split(settings)], capture_output=True, text=True,
                              timeout=120, cwd=Path(__file__).resolve().parent.parent)
    assert notebook.returncode == 0, notebook.stderr
    form = "".join(json.loads((tmp_path / "nb.ipynb").read_text())["cells"][-1]["source"])  # the form the user sees
    assert 'params = "DepthMap_1.downscale=8"  #@param' in form and 'drive_budget_gb = "11.0"  #@param' in form
    assert "downscale 2, budget 11.0 GB: redo per kill mean" in proc.stdout  # the price of each option tried


def test_a_job_that_cannot_fit_says_what_it_needs_and_exits_nonzero(tmp_path):
    model = tmp_path / "model.json"
    model.write_text(json.dumps({"colab": {"local_free_bytes": 20 * GB}}))
    proc = colab_plan("--images", images(tmp_path / "photos", 2700), "--meshroom", "2021.1", "--model", model)
    assert proc.returncode == 1, proc.stdout
    first = proc.stdout.splitlines()[0]
    assert first.startswith("needs fewer photos per job: at most ") and "--drive-budget" in first


@pytest.mark.parametrize("figure, says", [
    ('{"bytes": {"DepthMap": {"per_image": -5}}}', "must be numbers from 0"),
    ('{"seconds": {"Meshing": {"fixed": 1e999}}}', "must be numbers from 0"),
    ('{"bytes": {"DepthMap": [1, 2]}}', "must be numbers from 0"),
    ('{"colab": {"drive_bytes": 0}}', "colab.drive_bytes must be a positive number"),
    ('{"install_bytes": "big"}', "install_bytes must be a number"),
    ('{"pipelines": {"2019.2": [["A", "B"]]}}', "pipelines.2019.2 must be a list of"),
])
def test_a_bad_model_is_one_line_never_a_traceback_or_nan(tmp_path, figure, says):
    model = tmp_path / "model.json"
    model.write_text(figure)
    proc = colab_plan("--images", images(tmp_path / "photos", 20), "--model", model)
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and says in proc.stderr and "Traceback" not in proc.stderr


def test_a_downscale_meshroom_does_not_offer_is_refused(tmp_path):
    proc = colab_plan("--images", images(tmp_path / "photos", 20), "--param", "DepthMap_1.downscale=3")
    assert proc.returncode == 2 and "takes one of (1, 2, 4, 8, 16)" in proc.stderr
