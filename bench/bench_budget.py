"""Figures for the Drive budget (printed, not asserted).

    python bench/bench_budget.py [--images 150 2700] [--meshroom 2019.2 2021.1]

For each job size and release: the store's peak on Drive keeping every archive, with pruning
only, and under budgets (50 % of keep-everything, the target; the default for a free 15 GB Drive;
a sweep), and what a kill costs under each: finished nodes and chunks the next session computes
again, beyond the chunk that was running (worst kill, mean over kills uniform in compute time,
share of kills that redo at most one node).

It replays the job with the decisions the runner makes (``colab_side.plan.forecast_store`` over
``colab_side.budget.decide``), on the estimates of ``colab_side.meshroom.estimates``: bytes from
the stand-in's size model, seconds per image from Meshroom users' logs (see that module).

``--end-to-end`` also runs the real runner on the stand-in (sizes scaled, every chunk the same
time), killed at random moments, without and with a budget of half the keep-everything store:
the store's peak on Drive (sampled), chunks computed again per kill, and whether the result equals
an uninterrupted run's.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from colab_side import budget, plan  # noqa: E402
from colab_side.meshroom import advice, estimates  # noqa: E402
from colab_side.events import read_events  # noqa: E402
from colab_side.settings import GB  # noqa: E402
from keepalive_sim.sample_job import SampleJob  # noqa: E402

FREE_DRIVE_BUDGET = budget.default_budget(0, 15 * GB, 2 * GB)  # a free Drive, the default margin


def row(label: str, forecast: plan.StoreForecast, everything: int) -> str:
    kills = forecast.kills
    total = sum(k.seconds for k in kills) or 1.0
    mean_chunks = sum(k.extra_chunks * k.seconds for k in kills) / total
    mean_hours = sum(k.extra_seconds * k.seconds for k in kills) / total / 3600
    worst = forecast.worst
    return (f"  {label:<30} peak {forecast.peak_bytes / GB:7.1f} GB ({forecast.peak_bytes / everything:5.1%})  "
            f"per kill: worst {worst.extra_nodes} node(s) {worst.extra_chunks:4d} chunks {worst.extra_seconds / 3600:5.1f} h "
            f"(during {worst.node}); mean {mean_chunks:6.1f} chunks {mean_hours:4.2f} h; "
            f"<= 1 node: {forecast.share_within(1):6.1%}")


def bench(release: str, images: int) -> None:
    started = time.monotonic()
    job = plan.estimate(estimates.load(), release, images)
    everything = plan.forecast_store(job, None, prune=False)
    total = everything.peak_bytes
    print(f"Meshroom {release}, {images} images, {job.graph.chunks_total} chunks:")
    print(row("keep every archive", everything, total))
    print(row("pruning, no budget", plan.forecast_store(job, None), total))
    budgets = [("budget 50 % (target)", total // 2), ("budget 11 GB (free Drive)", FREE_DRIVE_BUDGET)]
    budgets += [(f"budget {share:.0%}", int(share * total)) for share in (0.25, 0.35, 0.65, 0.8)]
    for label, drive_budget in budgets:
        if drive_budget < total:
            print(row(label, plan.forecast_store(job, drive_budget), total))
    print(f"  ({time.monotonic() - started:.1f} s to replay)")


class StorePeak(threading.Thread):
    """Samples the bytes under the job's store folder every few milliseconds; keeps the largest."""

    def __init__(self, folder: Path):
        super().__init__(daemon=True)
        self.folder, self.peak, self.done = folder, 0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.005):
            total = 0
            for root, _dirs, files in os.walk(self.folder):  # a folder removed meanwhile is skipped
                for name in files:
                    try:
                        total += os.stat(os.path.join(root, name)).st_size
                    except OSError:
                        pass  # replaced or removed while sampled
            self.peak = max(self.peak, total)


def killed_run(job: SampleJob, extra: list[str], kills: int, rng: random.Random,
               window: tuple[float, float] = (1.0, 8.0)) -> tuple[int, int]:
    """Run the job to the end, SIGKILLed ``kills`` times, each a random ``window`` of seconds into a session;
    return (kills, peak store bytes)."""
    sampler = StorePeak(job.job_dir / "store")
    sampler.start()
    done = 0
    for _ in range(kills):
        proc = subprocess.Popen(job.command(*extra), env=job.env, stdout=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rng.uniform(*window))
        if proc.poll() is not None:
            break
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        done += 1
    subprocess.run(job.command(*extra), env=job.env, stdout=subprocess.DEVNULL, check=True)
    sampler.done.set()
    sampler.join()
    return done, sampler.peak


def end_to_end(images: int, kills: int, seed: int, scale: float) -> None:
    print(f"End to end: the runner on the stand-in, {images} images, size scale {scale:g}, "
          f"up to {kills} random kills (seed {seed}):")
    with tempfile.TemporaryDirectory() as tmp:
        reference = SampleJob(Path(tmp) / "reference", images=images, chunk_seconds=0.1)
        reference.env["MESHROOM_STANDIN_SIZE_SCALE"] = str(scale)
        _, everything = killed_run(reference, ["--no-prune"], 0, random.Random(seed))
        expected = reference.result_files()
        for label, extra in (("pruning, no budget", []),
                             ("budget 50 %", ["--drive-budget", f"{everything / 2 / GB:.6f}"])):
            job = SampleJob(Path(tmp) / ("budget" if extra else "pruning"), images=images, chunk_seconds=0.1)
            job.env["MESHROOM_STANDIN_SIZE_SCALE"] = str(scale)
            done, peak = killed_run(job, extra, kills, random.Random(seed))
            events = read_events(job.job_dir / "events.jsonl")
            computed = collections.Counter((e["node"], e["chunk"]) for e in events if e.get("event") == "chunk_done")
            redone = sum(count - 1 for count in computed.values())
            print(f"  {label:<20} peak store {peak / 2**20:7.2f} MiB ({peak / everything:5.1%} of keeping every "
                  f"archive, {everything / 2**20:.2f} MiB); kills {done}; finished chunks computed again "
                  f"{redone} ({redone / max(1, done):.2f} per kill); result identical: {job.result_files() == expected}")


def free_account(release: str, images: int) -> None:
    """What ``plan`` recommends for a free account, and its figures against the free account's limits."""
    model = estimates.load()
    found = advice.advise(model, release, images, FREE_DRIVE_BUDGET, 2 * GB)
    option = found.chosen or found.tried[-1]
    worst = option.worst
    print(f"Meshroom {release}, {images} images, free account: "
          + (f"fits with {option.settings_line()}" if found.fits else f"needs {found.way_out}"))
    print(f"  local disk {option.local_need / GB:5.1f} GB of {option.local_free / GB:.1f} GB free "
          f"(work files {option.store.local_peak / GB:.1f} GB + Meshroom; every output kept would be "
          f"{sum(plan.estimate(estimates.with_downscale(model, option.downscale), release, images).chunk_bytes.values()) / GB:.1f} GB); "
          f"Drive store {option.store.peak_bytes / GB:.1f} GB of {FREE_DRIVE_BUDGET / GB:.1f} GB; "
          f"redo per kill: mean {option.mean_redo / 3600:.2f} h, worst {worst.extra_seconds / 3600:.1f} h + its "
          f"{worst.seconds / 3600:.1f} h chunk (during {worst.node}); Drive's cache may add up to "
          f"{option.store.session_drive_bytes / GB:.1f} GB a session")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, nargs="+", default=[150, 2700])
    parser.add_argument("--meshroom", nargs="+", default=["2019.2", "2021.1"])
    parser.add_argument("--end-to-end", action="store_true", help="also run the runner on the stand-in, with kills")
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--free-account", action="store_true",
                        help="only what plan recommends for a free account (2,700 images, every release)")
    args = parser.parse_args()
    if args.free_account:
        for release in ("2019.2", "2021.1", "2023.3", "2025.1"):
            free_account(release, 2700)
        return
    for release in args.meshroom:
        for images in args.images:
            bench(release, images)
    if args.end_to_end:
        end_to_end(60, args.kills, args.seed, scale=1e-2)


if __name__ == "__main__":
    main()
