"""The runtime's local disk under a Drive budget: only what the work still to come reads, measured end to end."""

from __future__ import annotations

import subprocess

from test_budget_run import killed_then_whole  # the same kills and sampler, on the local cache here
from colab_side import heartbeat as hb
from colab_side import plan
from colab_side.meshroom import estimates
from colab_side.settings import GB
from keepalive_sim.sample_job import SampleJob

SCALE = 1e-2  # the stand-in writes the size model's bytes times this
IMAGES = 30


def test_a_small_budget_and_the_lazy_local_cache_end_done_identical_within_the_planned_local_peak(tmp_path):
    reference = SampleJob(tmp_path / "reference", images=IMAGES)
    reference.env["MESHROOM_STANDIN_SIZE_SCALE"] = str(SCALE)
    subprocess.run(reference.command(), env=reference.env, capture_output=True, check=True)
    estimate = plan.estimate(estimates.load(), "2019.2", IMAGES)
    everything = plan.forecast_store(estimate, None, prune=False).peak_bytes
    drive_budget = everything // 3
    planned = plan.forecast_store(estimate, drive_budget)

    job = SampleJob(tmp_path / "budget", images=IMAGES)
    job.env["MESHROOM_STANDIN_SIZE_SCALE"] = str(SCALE)
    command = job.command("--drive-budget", f"{drive_budget * SCALE / GB:.9f}")
    cache = job.local / "colab_side" / "cache"
    final, peak = killed_then_whole(job, command, (10, 22), cache)  # kills in DepthMap, then in DepthMapFilter

    assert final.returncode == 0, final.stdout[-2000:]
    assert hb.read(job.job_dir / hb.FILENAME).phase == hb.DONE
    assert job.result_files() == reference.result_files()
    assert "local disk: PrepareDenseScene_1's files removed" in final.stdout  # it left before Texturing read it
    meta = 3 * 2048 * estimate.graph.chunks_total  # status, log and statistics of every chunk
    assert 0 < peak <= planned.local_peak * SCALE + meta, (peak, planned.local_peak * SCALE)
    assert peak < 0.75 * sum(estimate.chunk_bytes.values()) * SCALE  # well below keeping every output
