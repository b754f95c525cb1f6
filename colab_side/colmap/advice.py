"""``python -m colab_side plan --engine colmap``: what a COLMAP job will need, from the size model (``estimates``).

``--images`` is the photo folder or just a number of photos. The dense steps are planned (a GPU runtime,
pycolmap with CUDA) unless ``--param dense=off``; on a runtime without CUDA the job makes the sparse model only.
"""

from __future__ import annotations

from pathlib import Path

from colab_side import budget, plan
from colab_side.colmap import estimates, install, units
from colab_side.colmap.options import Choices


def main(args, extensions) -> int:
    """Print the plan; exit 0 when it fits a free account (local disk and Drive), 1 when not."""
    text = str(args.images)
    images = int(text) if text.isdigit() else plan.count_images(Path(text), extensions)
    if images < 2:
        raise ValueError(f"COLMAP needs at least 2 photos, not {images}")
    model = estimates.for_params(estimates.load(args.model), args.params)
    release = "sparse" if model["choices"].dense == "off" else "dense"
    drive_budget = None if args.drive_budget_gb is None else int(args.drive_budget_gb * (1 << 30))
    if drive_budget is None:
        drive_budget = budget.default_budget(0, int(model["colab"]["drive_bytes"]), int(args.drive_margin_gb * (1 << 30)))
    found = plan.forecast(model, install.VERSION, images, drive_budget, engine="colmap",
                          program=f"COLMAP (pycolmap {install.VERSION}), {release}")
    job = estimates.estimate(model, install.VERSION, images)
    print(plan.render(found))
    print(f"  compute: about {sum(job.chunk_seconds.values()) / 3600:.1f} h in all "
          + ("(dense stereo on a GPU runtime; without CUDA the job stops at the sparse model)" if release == "dense"
             else "(the sparse model only)"))
    print(matching(model["choices"], images))
    store = found.budgeted or found.pruned
    fits = found.local_peak <= model["colab"]["local_free_bytes"] and store.peak_bytes <= model["colab"]["drive_bytes"]
    return 0 if fits else 1


def matching(asked: Choices, images: int) -> str:
    """The plan's line on how the photos are paired for matching."""
    choices = units.resolve(asked, images)
    pairs = units.pair_count(images, choices)
    how = {"exhaustive": f"exhaustive, every pair: {pairs:,} pairs",
           "sequential": f"sequential, each photo with the next {choices.overlap} and those 2, 4, 8, ... ahead: "
                         f"{pairs:,} pairs",
           "vocabtree": f"vocabulary tree, each photo with up to {units.neighbours(choices)} similar ones: at most "
                        f"{pairs:,} pairs (COLMAP's tree, 72 MB, downloaded once per Drive)"}[choices.matcher]
    why = (f" (matcher=auto: {'up to' if choices.matcher == 'exhaustive' else 'more than'} "
           f"{units.EXHAUSTIVE_UP_TO} photos; --param matcher=... chooses)" if asked.matcher == "auto" else "")
    return f"  matching: {how}{why}"
