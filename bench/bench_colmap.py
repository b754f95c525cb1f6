"""Per-step time of a COLMAP job, and what durability costs: the engine with the store against pycolmap alone.

For each image count (default 30 and 200) it renders a synthetic scene (pycolmap, nothing downloaded), runs
the job through the runner (``--engine colmap``, a plain folder as Drive, every chunk archived there), then
the same steps with pycolmap alone in one process (one thread, seed 0, the same options: ``match_exhaustive``
instead of blocks of pairs), and prints both per step, the registered images and points, and the overhead.
Usage: python bench/bench_colmap.py [IMAGES ...] [--features N] [--batch N] [--block N]   (needs pycolmap).
Up to 100 images: 800x600, 2,000 points, the engine's default chunks (10 images, 300 pairs). Above: 640x480 and
1,500 points (about 1,300 SIFT features an image, so that 200 images' 19,900 pairs match in minutes on 2 cores)
and chunks of 20 images and 2,000 pairs. The overhead is about fixed per chunk (a process, pycolmap's import,
copies of the database), so it is its share of a chunk's time. (Capping SIFT at 500 features left no pair
verified on these images.)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
import time
from pathlib import Path

import pycolmap

from colab_side import heartbeat as hb
from colab_side.colmap import units
from colab_side.runner import Session
from colab_side.settings import make as make_settings
from keepalive_sim.synthetic_images import synthesize


def with_engine(images: Path, root: Path, params: list[str]) -> tuple[dict, float, tuple]:
    """Seconds per step (chunks, as the runner's events measure them, plus archiving) and in all; the model."""
    settings = make_settings(images=images, job="bench", drive_root=root / "drive", local_dir=root / "local",
                             engine="colmap", params=params, heartbeat_seconds=30.0)
    started = time.monotonic()
    with contextlib.redirect_stdout(io.StringIO()):
        code = Session(settings).run()
    total = time.monotonic() - started
    if code != 0:
        beat = hb.read(root / "drive" / "keepalive" / "bench" / hb.FILENAME)
        raise SystemExit(f"the job ended {beat.phase} ({beat.cause}): {beat.reason}")
    steps: dict[str, float] = {}
    for line in (root / "drive" / "keepalive" / "bench" / "events.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event.get("event") == "node_done":
            steps[event["node"]] = event["seconds"]
    model = pycolmap.Reconstruction(root / "drive" / "keepalive" / "bench" / "result" / units.MODEL)
    return steps, total, (model.num_reg_images(), model.num_points3D())


def alone(images: Path, work: Path, features: int | None) -> tuple[dict, float, tuple]:
    """The same steps with pycolmap in this process, nothing made durable."""
    work.mkdir()
    names = sorted(p.name for p in images.iterdir())
    db = work / "database.db"
    extraction, matching = pycolmap.FeatureExtractionOptions(), pycolmap.FeatureMatchingOptions()
    extraction.num_threads = matching.num_threads = 1
    if features:
        extraction.sift.max_num_features = features
    mapping = pycolmap.GlobalPipelineOptions()
    mapping.num_threads, mapping.random_seed = 1, 0
    steps, started = {}, time.monotonic()

    def step(name, action):
        begun = time.monotonic()
        pycolmap.set_random_seed(0)
        result = action()
        steps[name] = time.monotonic() - begun
        return result

    step("import", lambda: (pycolmap.Database.open(db).close(),
                            pycolmap.import_images(db, images, pycolmap.CameraMode.SINGLE, names)))
    step("features", lambda: pycolmap.extract_features(db, images, names, pycolmap.CameraMode.SINGLE,
                                                       extraction_options=extraction))
    step("matches", lambda: pycolmap.match_exhaustive(db, matching))
    (work / "sparse").mkdir()
    models = step("mapping", lambda: pycolmap.global_mapping(db, images, work / "sparse", mapping))
    best = max(models.values(), key=lambda m: m.num_reg_images())
    return steps, time.monotonic() - started, (best.num_reg_images(), best.num_points3D())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("images", nargs="*", type=int, default=[30, 200])
    parser.add_argument("--features", type=int, default=None)
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--block", type=int, default=None)
    args = parser.parse_args()
    for count in args.images:
        features = args.features
        large = count > 100
        batch, block = args.batch or (20 if large else 10), args.block or (2000 if large else 300)
        params = [f"batch={batch}", f"block={block}"]
        params += [f"feature_extraction.sift.max_num_features={features}"] if features else []
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            began = time.monotonic()
            size = dict(width=640, height=480, points=1500) if large else dict(width=800, height=600, points=2000)
            synthesize(root / "images", count, **size)
            rendered = time.monotonic() - began
            engine_steps, engine_total, engine_model = with_engine(root / "images", root / "engine", params)
            alone_steps, alone_total, alone_model = alone(root / "images", root / "alone", features)
        print(f"{count} images {size['width']}x{size['height']} (rendered in {rendered:.1f} s), SIFT features "
              f"{features or 'default'}, "
              f"chunks of {batch} images and {block} pairs, one thread, seed 0")
        print(f"  {'step':<10} {'engine s':>9} {'alone s':>8}")
        for name in engine_steps:
            print(f"  {name:<10} {engine_steps[name]:>9.1f} {alone_steps.get(name, 0.0):>8.1f}"
                  + ("" if name in alone_steps else "  (merging: pycolmap alone writes one database)"))
        print(f"  {'in all':<10} {engine_total:>9.1f} {alone_total:>8.1f}   durability overhead "
              f"{(engine_total / alone_total - 1) * 100:+.0f} %")
        print(f"  model: engine {engine_model[0]}/{count} images, {engine_model[1]} points; "
              f"alone {alone_model[0]}/{count}, {alone_model[1]} points")


if __name__ == "__main__":
    main()
