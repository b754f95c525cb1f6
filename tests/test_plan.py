"""``python -m colab_side plan``: the figures before anything runs, and one line for bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from colab_side import plan
from colab_side.meshroom import estimates
from colab_side.meshroom.graph import parse
from colab_side.settings import GB
from keepalive_sim import meshroom_standin

RELEASES = ("2019.2", "2021.1", "2023.3", "2025.1")


def images(folder: Path, count: int) -> Path:
    folder.mkdir()
    for index in range(count):
        (folder / f"IMG_{index:04d}.jpg").write_bytes(b"\xff\xd8 not really a photo")
    return folder


def colab_plan(*args):
    return subprocess.run([sys.executable, "-m", "colab_side", "plan", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def gb(text: str, label: str) -> float:
    match = re.search(re.escape(label) + r"[^:]*:\s+([\d.]+) GB", text)
    assert match, f"no {label!r} figure in:\n{text}"
    return float(match.group(1))


def test_the_plan_prints_chunks_disk_and_drive_with_and_without_the_budget(tmp_path):
    proc = colab_plan("--images", images(tmp_path / "photos", 150), "--meshroom", "2019.2")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    expected = plan.forecast(estimates.load(), "2019.2", 150, 11 * GB)
    assert f"chunks: {expected.chunks} in {expected.nodes} nodes" in out
    assert gb(out, "peak local disk") == pytest.approx(expected.local_peak / GB, abs=0.05)
    assert gb(out, "keeping every archive") == pytest.approx(expected.keep_everything.peak_bytes / GB, abs=0.05)
    assert gb(out, "pruning (no budget)") == pytest.approx(expected.pruned.peak_bytes / GB, abs=0.05)
    assert "budget 11.0 GB" in out  # the default: a free 15 GB Drive less twice the 2 GB margin
    assert "ESTIMATES" in out and "--model" in out


def test_a_small_budget_caps_the_peak_and_says_what_a_kill_then_costs(tmp_path):
    proc = colab_plan("--images", images(tmp_path / "photos", 150), "--drive-budget", "2")
    assert proc.returncode == 0, proc.stderr
    assert gb(proc.stdout, "peak Drive, budget") <= 2.0
    assert "a kill redoes at most" in proc.stdout and "of kills redo at most one node" in proc.stdout


def test_a_big_job_is_told_it_does_not_fit_a_free_runtime_or_drive(tmp_path):
    proc = colab_plan("--images", images(tmp_path / "photos", 1300), "--meshroom", "2023.3")  # too big even lazily
    assert proc.returncode == 0, proc.stderr
    lines = {line.split(":")[0].strip(): line for line in proc.stdout.splitlines()}
    assert "does NOT fit" in lines["peak local disk"] and "does NOT fit" in lines["peak Drive, pruning (no budget)"]


@pytest.mark.parametrize("args, says", [
    (["--images", "{missing}"], "does not exist"),
    (["--images", "{empty}"], "holds no images"),
    (["--images", "{photos}", "--meshroom", "2077.1"], "no pipeline for Meshroom '2077.1'"),
    (["--images", "{photos}", "--drive-budget", "-1"], "drive_budget_gb must be between"),
    (["--images", "{photos}", "--model", "{bad_model}"], "is not valid JSON"),
    (["--images", "{photos}", "--model", "{wrong_keys}"], "must be a JSON object with keys among"),
    (["--images", "{photos}", "--model", "{bad_figure}"], "must be numbers"),
    (["--images", "{photos}", "--model", "{bad_limit}"], "colab.session_seconds must be a positive number"),
])
def test_bad_input_gets_one_line_and_no_traceback(tmp_path, args, says):
    paths = {"missing": tmp_path / "nowhere", "empty": tmp_path / "empty", "photos": images(tmp_path / "photos", 3),
             "bad_model": tmp_path / "bad.json", "wrong_keys": tmp_path / "keys.json",
             "bad_figure": tmp_path / "figure.json", "bad_limit": tmp_path / "limit.json"}
    paths["empty"].mkdir()
    paths["bad_model"].write_text("{not json")
    paths["wrong_keys"].write_text('{"sizes": {}}')
    paths["bad_figure"].write_text('{"bytes": {"DepthMap": {"per_image": "big"}}}')
    paths["bad_limit"].write_text('{"colab": {"session_seconds": "12 h"}}')
    proc = colab_plan(*[arg.format(**paths) for arg in args])
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and says in proc.stderr and "Traceback" not in proc.stderr


def test_a_budget_whose_kill_cannot_be_recovered_within_one_session_is_warned_of():
    forecast = plan.forecast(estimates.load(), "2019.2", 2700, 57 * GB)  # half of keeping every archive
    stuck = forecast.budgeted.unrecoverable(12 * 3600)
    assert stuck.node == "Meshing_1" and stuck.extra_seconds + stuck.seconds > 12 * 3600
    assert forecast.budgeted.unrecoverable(24 * 3600) is None  # a paid plan's session is long enough
    assert "WARNING: after a kill during Meshing_1" in plan.render(forecast)
    assert "WARNING" not in plan.render(plan.forecast(estimates.load(), "2019.2", 150, 11 * GB))


def test_a_users_model_file_corrects_the_estimates(tmp_path):
    model = tmp_path / "model.json"
    model.write_text(json.dumps({"bytes": {"DepthMap": {"per_image": 0}}, "colab": {"local_free_bytes": 1}}))
    default = plan.forecast(estimates.load(), "2019.2", 150, None)
    corrected = plan.forecast(estimates.load(model), "2019.2", 150, None)
    assert corrected.keep_everything.peak_bytes == default.keep_everything.peak_bytes - 150 * 20_000_000
    assert corrected.colab["local_free_bytes"] == 1 and corrected.colab["drive_bytes"] == 15 * GB


@pytest.mark.parametrize("release", RELEASES)
def test_the_estimated_pipelines_are_the_graphs_meshroom_saves(release):
    saved = parse(json.dumps(meshroom_standin.build_graph([Path(f"IMG_{i}.jpg") for i in range(90)], release,
                                                          output="/content/result")))
    estimated = plan.estimate(estimates.load(), release, 90).graph
    assert estimated.order() == saved.order()
    for name, node in saved.nodes.items():
        assert estimated.dependencies(name) == saved.dependencies(name), name
        assert estimated.nodes[name].chunk_count == node.chunk_count, name


@pytest.mark.parametrize("release", ["2019.2", "2021.1"])
def test_the_forecast_never_exceeds_the_budget_and_pruning_never_raises_the_peak(release):
    job = plan.estimate(estimates.load(), release, 300)
    everything = plan.forecast_store(job, None, prune=False)
    pruned = plan.forecast_store(job, None)
    assert pruned.peak_bytes <= everything.peak_bytes and not any(k.extra_chunks for k in pruned.kills)
    for share in (0.3, 0.5, 0.8):
        budgeted = plan.forecast_store(job, int(share * everything.peak_bytes))
        assert budgeted.peak_bytes <= share * everything.peak_bytes
    roomy = plan.forecast_store(job, pruned.peak_bytes)
    assert roomy.peak_bytes == pruned.peak_bytes and not any(k.extra_chunks for k in roomy.kills)
