"""The Drive budget in a real run: the runner on the stand-in, killed twice, under half its store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading

from conftest import wait_for
from colab_side import heartbeat as hb
from colab_side import plan
from colab_side.events import read_events
from colab_side.meshroom import estimates
from colab_side.settings import GB
from keepalive_sim.sample_job import SampleJob

SCALE = {"MESHROOM_STANDIN_SIZE_SCALE": "1e-2"}  # megabytes per chunk: archive sizes matter, not time


class StorePeak(threading.Thread):
    """The most bytes ever seen under the store folder, sampled while the job runs (a measure, not a wait)."""

    def __init__(self, folder):
        super().__init__(daemon=True)
        self.folder, self.peak, self.stop = folder, 0, threading.Event()

    def run(self):
        while not self.stop.wait(0.005):
            total = 0
            for root, _dirs, files in os.walk(self.folder):
                for name in files:
                    try:
                        total += os.stat(os.path.join(root, name)).st_size
                    except OSError:
                        pass
            self.peak = max(self.peak, total)


def killed_then_whole(job: SampleJob, command: list[str], kills, folder) -> tuple[subprocess.CompletedProcess, int]:
    """Run ``command`` and kill it (its process group) once ``kills[i]`` chunks are done, each in turn, then run it to
    its end; with the most bytes ever seen under ``folder`` meanwhile."""
    sampler = StorePeak(folder)
    sampler.start()
    try:
        for kill_after in kills:
            proc = subprocess.Popen(command, env=job.env, stdout=subprocess.DEVNULL, start_new_session=True)
            assert wait_for(lambda: chunks_done(job) >= kill_after or proc.poll() is not None, timeout=240)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        final = subprocess.run(command, env=job.env, capture_output=True, text=True, timeout=280)
    finally:
        sampler.stop.set()
        sampler.join()
    return final, sampler.peak


def chunks_done(job: SampleJob) -> int:
    path = job.job_dir / "events.jsonl"
    return sum(1 for e in read_events(path) if e.get("event") == "chunk_done") if path.exists() else 0


def stored_bytes(job: SampleJob) -> int:
    manifest = json.loads((job.job_dir / "store" / "manifest.json").read_text())
    return sum(entry["size"] for entry in manifest["chunks"].values())


def assert_the_standin_wrote_the_estimated_bytes(job: SampleJob, images: int, scale: float) -> None:
    """What the budget plans with (colab_side's estimates) is what the stand-in writes, within tar overhead."""
    manifest = json.loads((job.job_dir / "store" / "manifest.json").read_text())
    stored: dict[str, int] = {}
    for key, entry in manifest["chunks"].items():
        node = key.rsplit(":", 1)[0]
        stored[node] = stored.get(node, 0) + entry["size"]
    forecast = plan.estimate(estimates.load(), "2019.2", images)
    for node in forecast.graph.nodes:
        expected = sum(size for (name, _), size in forecast.chunk_bytes.items() if name == node) * scale
        if expected > 1e6:  # the big nodes: small ones are all tar headers
            assert expected <= stored[node] <= expected * 1.05 + 64 * 1024, node  # + tar headers, 1.5 KiB a file


def test_a_job_under_half_its_store_finishes_identical_and_the_store_never_exceeds_the_budget(tmp_path):
    reference = SampleJob(tmp_path / "reference", images=30)
    reference.env.update(SCALE)
    subprocess.run(reference.command("--no-prune"), env=reference.env, capture_output=True, check=True)
    everything = stored_bytes(reference)
    drive_budget = everything // 2
    assert_the_standin_wrote_the_estimated_bytes(reference, images=30, scale=1e-2)

    job = SampleJob(tmp_path / "budget", images=30)
    job.env.update(SCALE)
    command = job.command("--drive-budget", f"{drive_budget / GB:.9f}")
    final, peak = killed_then_whole(job, command, (12, 24), job.job_dir / "store")  # in DepthMap, DepthMapFilter

    assert final.returncode == 0, final.stdout[-2000:]
    assert hb.read(job.job_dir / hb.FILENAME).phase == hb.DONE
    assert job.result_files() == reference.result_files()
    events = read_events(job.job_dir / "events.jsonl")
    budget_events = [e for e in events if e.get("event") == "budget"]
    assert any(e["dropped"] for e in budget_events)  # the budget was in force: archives were dropped
    assert all(e["kept_bytes"] <= drive_budget for e in budget_events)
    assert drive_budget // 2 < peak <= drive_budget + 64 * 1024  # + the two manifest copies
    progress = subprocess.run([*command[:3], "progress", str(job.job_dir), "--json"], env=job.env,
                              capture_output=True, text=True, check=True).stdout
    assert json.loads(progress)["stored_bytes"] == stored_bytes(job) <= drive_budget


def test_a_budget_with_which_the_job_could_never_finish_is_refused_before_anything_runs(tmp_path):
    job = SampleJob(tmp_path, name="seed", images=1, meshroom="2023.3")
    for i in range(2700):  # the seed's photo count: the size model reads only how many there are
        (job.images / f"IMG_{i:04d}.jpg").write_bytes(b"")
    for name in os.listdir(job.images):
        if not name.startswith("IMG_"):
            os.remove(job.images / name)
    proc = subprocess.run(job.command("--drive-budget", "11"), env=job.env,
                          capture_output=True, text=True, timeout=300)
    beat = hb.read(job.job_dir / hb.FILENAME)
    assert proc.returncode == 1 and beat.phase == hb.BLOCKED and beat.cause == hb.DRIVE_FULL, proc.stdout[-2000:]
    assert "could never finish" in beat.reason and "during Meshing_1" in beat.reason
    assert f"python -m colab_side plan --images {job.images} --meshroom 2023.3 --drive-budget 11.0" in beat.action
    happened = {e.get("event") for e in read_events(job.job_dir / "events.jsonl")}
    assert "session_start" in happened and not happened & {"install", "graph_saved", "restored", "node_start"}, happened
    # with what plan says fits (the runner's own check agrees with plan's figures)
    worst = plan.forecast_store(plan.estimate(estimates.for_params(estimates.load(), ["DepthMap_1.downscale=8"]),
                                              "2023.3", 2700), 11 * GB).unrecoverable(12 * 3600)
    assert worst is None
