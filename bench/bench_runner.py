"""Figures for the notebook module (printed, not asserted).

    python bench/bench_runner.py [--kills 20] [--images 20]

1. Work redone per kill: chunks computed more than once, over a job killed at random moments.
2. Time from `run` to the first chunk computing, on a warm Drive install cache (archive already there).

Peak store bytes on Drive (keeping everything, pruning, under a budget) and chunks recomputed per
kill under a budget: bench/bench_budget.py.
"""

from __future__ import annotations

import argparse
import collections
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_budget import killed_run  # noqa: E402
from colab_side.events import read_events  # noqa: E402
from keepalive_sim.sample_job import SampleJob  # noqa: E402


def redone_per_kill(kills: int, images: int, seed: int) -> None:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        job = SampleJob(Path(tmp), images=images, chunk_seconds=0.3)
        done, _peak = killed_run(job, [], kills, rng, window=(0.2, 1.5))
        events = read_events(job.job_dir / "events.jsonl")
        computed = collections.Counter(f"{e['node']}:{e['chunk']}" for e in events if e["event"] == "chunk_done")
        starts = collections.Counter((e["node"], e["session"]) for e in events if e["event"] == "node_start")
        redone_durable = sum(n - 1 for n in computed.values())
        interrupted = done  # at most the running chunk is lost per kill
        print(f"kills: {done}, chunks in job: {len(computed)}, chunks computed twice after being durable: "
              f"{redone_durable}, node starts: {sum(starts.values())}")
        print(f"work redone per kill: at most the chunk that was running (<= 1 chunk); "
              f"durable chunks redone: {redone_durable / max(1, interrupted):.2f} per kill")


def first_chunk_latency(images: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        job = SampleJob(Path(tmp), images=images, chunk_seconds=0.05)
        subprocess.run(job.command(), env=job.env, stdout=subprocess.DEVNULL, check=True)  # warms the install cache
        second = SampleJob(Path(tmp), name="warm", images=images, chunk_seconds=0.05)
        started = time.monotonic()
        proc = subprocess.Popen(second.command(), env=second.env, stdout=subprocess.PIPE, text=True)
        for line in proc.stdout:
            if "meshroom_compute" in line:
                print(f"run → first chunk computing (warm Drive install cache): {time.monotonic() - started:.2f} s")
                break
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    redone_per_kill(args.kills, args.images, args.seed)
    first_chunk_latency(args.images)


if __name__ == "__main__":
    main()
