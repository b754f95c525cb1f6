"""Figures for the notebook module (printed, not asserted).

    python bench/bench_runner.py [--kills 20] [--images 20]

1. Work redone per kill: chunks computed more than once, over a job killed at random moments.
2. Time from `run` to the first chunk computing, on a warm Drive install cache (archive already there).
3. Peak store bytes on Drive with and without pruning, on the stand-in's size model.

The size model is `keepalive_sim.meshroom_standin.SIZE_MODEL` (bytes per image or per node,
unscaled): about 7 GB of cache for 150 images, DepthMap and DepthMapFilter dominating, which is the
order of magnitude the seed workflow reports (7 GB for a 3.5-4 h dataset).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from colab_side.events import read_events  # noqa: E402
from colab_side.meshroom import pruning  # noqa: E402
from colab_side.meshroom.graph import parse  # noqa: E402
from keepalive_sim import meshroom_standin  # noqa: E402
from keepalive_sim.sample_job import SampleJob  # noqa: E402


def redone_per_kill(kills: int, images: int, seed: int) -> None:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        job = SampleJob(Path(tmp), images=images, chunk_seconds=0.3)
        done = 0
        for _ in range(kills):
            proc = subprocess.Popen(job.command(), env=job.env, stdout=subprocess.DEVNULL, start_new_session=True)
            time.sleep(rng.uniform(0.2, 1.5))
            if proc.poll() is not None:
                break
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            done += 1
        subprocess.run(job.command(), env=job.env, stdout=subprocess.DEVNULL, check=True)
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


def peak_store_bytes(images: int) -> None:
    doc = meshroom_standin.build_graph([Path(f"IMG_{i:04d}.jpg") for i in range(images)], "2019.2.0")
    graph = parse(json.dumps(doc))
    size = {}
    for name, node in graph.nodes.items():
        model = meshroom_standin.SIZE_MODEL[node.node_type]
        size[name] = model.get("fixed", 0) + model.get("per_image", 0) * images
    for prune in (False, True):
        stored, peak, finished, pruned = 0, 0, set(), set()
        for name in graph.order():
            stored += size[name]
            peak = max(peak, stored)
            finished.add(name)
            if prune:
                for victim in pruning.prunable(graph, finished, pruned):
                    stored -= size[victim]
                    pruned.add(victim)
        print(f"{images} images, pruning {'on ' if prune else 'off'}: peak store {peak / 1e9:6.2f} GB, "
              f"at the end {stored / 1e9:6.2f} GB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    redone_per_kill(args.kills, args.images, args.seed)
    first_chunk_latency(args.images)
    for images in (150, 2700):
        peak_store_bytes(images)


if __name__ == "__main__":
    main()
