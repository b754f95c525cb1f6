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
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from colab_side import plan  # noqa: E402
from colab_side.meshroom import estimates  # noqa: E402
from colab_side.settings import GB  # noqa: E402

FREE_DRIVE_BUDGET = 13 * GB  # a free 15 GB Drive less the default 2 GB margin


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
    budgets = [("budget 50 % (target)", total // 2), ("budget 13 GB (free Drive)", FREE_DRIVE_BUDGET)]
    budgets += [(f"budget {share:.0%}", int(share * total)) for share in (0.25, 0.35, 0.65, 0.8)]
    for label, drive_budget in budgets:
        if drive_budget < total:
            print(row(label, plan.forecast_store(job, drive_budget), total))
    print(f"  ({time.monotonic() - started:.1f} s to replay)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, nargs="+", default=[150, 2700])
    parser.add_argument("--meshroom", nargs="+", default=["2019.2", "2021.1"])
    args = parser.parse_args()
    for release in args.meshroom:
        for images in args.images:
            bench(release, images)


if __name__ == "__main__":
    main()
