"""Which COLMAP steps give identical bytes run to run (pycolmap, synthesized images, no download).

Runs feature extraction, exhaustive matching and global mapping twice at num_threads=1 and twice at all
cores (seed 0 each time) and prints, per step, whether the two runs are byte-identical, with times.
Usage: python bench/bench_colmap_determinism.py [IMAGES]   (default 20; needs pycolmap)
"""
import hashlib
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import pycolmap

from keepalive_sim import synthetic_images

TABLES = [("images", "image_id"), ("keypoints", "image_id"), ("descriptors", "image_id"),
          ("matches", "pair_id"), ("two_view_geometries", "pair_id")]


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def table_digests(db: Path) -> dict:
    con = sqlite3.connect(db)
    try:
        return {t: digest(repr(list(con.execute(f"select * from {t} order by {k}"))).encode()) for t, k in TABLES}
    finally:
        con.close()


def synthesize(folder: Path, images: int) -> None:
    synthetic_images.synthesize(folder, images, width=1024, height=768)


def run(work: Path, images: Path, threads: int) -> dict:
    work.mkdir()
    db = work / "database.db"
    pycolmap.set_random_seed(0)
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.num_threads = threads
    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads = threads
    mapping = pycolmap.GlobalPipelineOptions()
    mapping.num_threads, mapping.random_seed = threads, 0
    t0 = time.perf_counter()
    pycolmap.extract_features(db, images, extraction_options=extraction)
    t1 = time.perf_counter()
    pycolmap.match_exhaustive(db, matching_options=matching)
    t2 = time.perf_counter()
    (work / "sparse").mkdir()
    models = pycolmap.global_mapping(db, images, work / "sparse", options=mapping)
    t3 = time.perf_counter()
    out = {"tables": table_digests(db), "seconds": (t1 - t0, t2 - t1, t3 - t2), "model": None}
    if models:
        model = models[min(models)]
        (work / "bin").mkdir()
        model.write_binary(str(work / "bin"))
        out["model"] = ({p.name: digest(p.read_bytes()) for p in sorted((work / "bin").iterdir())},
                        model.num_reg_images(), model.num_points3D(),
                        round(model.compute_mean_reprojection_error(), 6))
    return out


def main() -> None:
    images = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        synthesize(root / "images", images)
        for threads in (1, -1):
            a, b = (run(root / f"{threads}-{i}", root / "images", threads) for i in (1, 2))
            print(f"num_threads={threads} ({images} images)")
            for table, _ in TABLES:
                print(f"  table {table:20} identical: {a['tables'][table] == b['tables'][table]}")
            same_model = a["model"] is not None and a["model"][0] == b["model"][0]
            print(f"  global model bytes   identical: {same_model}")
            for name, r in (("run 1", a), ("run 2", b)):
                stats = r["model"][1:] if r["model"] else "mapping failed"
                secs = ", ".join(f"{s:.1f}" for s in r["seconds"])
                print(f"  {name}: (registered, points, reprojection px) {stats}; extract/match/map s: {secs}")


if __name__ == "__main__":
    main()
