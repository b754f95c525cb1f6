"""The COLMAP job's steps and what each chunk of them covers: pure functions of the image names and choices.

    import        1 chunk                 the database of cameras and images, no features (``import/import.db``)
    features      one per batch of images keypoints and descriptors of the batch (``features/batch-0000.db``)
    database      1 chunk                 the batches merged into a fresh database (``database/database.db``)
    matches       one per block of pairs  matches and two-view geometries of the block (``matches/block-0000.db``)
    mapping       1 chunk                 the sparse model, binary and text (``mapping/sparse/0/``)
  with dense:
    undistortion  1 chunk                 undistorted images and model (``undistortion/``)
    stereo        one per batch of images photometric depth and normal maps
    geometric     one per batch of images geometric depth and normal maps (they read every photometric map)
    fusion        1 chunk                 ``fusion/fused.ply``
    meshing       1 chunk                 ``meshing/meshed-poisson.ply``

Exhaustive matching: every pair of images in name order, ``block`` pairs a chunk.
"""

from __future__ import annotations

from itertools import combinations, islice

from colab_side.engine import Unit, Units

SPARSE = ("import", "features", "database", "matches", "mapping")
DENSE = ("undistortion", "stereo", "geometric", "fusion", "meshing")
READS = {"features": {"import"}, "database": {"import", "features"}, "matches": {"database"},
         "mapping": {"database", "matches"}, "undistortion": {"mapping"}, "stereo": {"undistortion"},
         "geometric": {"undistortion", "stereo"}, "fusion": {"undistortion", "geometric"}, "meshing": {"fusion"}}
MODEL = "sparse/0"  # the model's folder in the mapping step's folder, as COLMAP lays it out
MODEL_FILES = tuple(f"{MODEL}/{part}.{kind}" for kind in ("bin", "txt")
                    for part in ("cameras", "images", "points3D", "frames", "rigs"))
FUSED, MESH = "fused.ply", "meshed-poisson.ply"


def chunks(count: int, size: int) -> int:
    return -(-count // size)


def pair_count(images: int) -> int:
    return images * (images - 1) // 2


def batch(names: list[str], size: int, chunk: int) -> list[str]:
    """The images of one chunk of features or stereo."""
    return names[chunk * size:(chunk + 1) * size]


def block(names: list[str], size: int, chunk: int) -> list[tuple[str, str]]:
    """The image pairs of one chunk of exhaustive matching: every pair in name order, ``size`` a chunk."""
    return list(islice(combinations(names, 2), chunk * size, (chunk + 1) * size))


def steps(images: int, batch_size: int, block_size: int, dense: bool) -> Units:
    """The job's steps for ``images`` images (at least 2)."""
    counts = {"features": chunks(images, batch_size), "matches": max(1, chunks(pair_count(images), block_size)),
              "stereo": chunks(images, batch_size), "geometric": chunks(images, batch_size)}
    names = SPARSE + (DENSE if dense else ())
    return Units(tuple(Unit(name, counts.get(name, 1), name, frozenset(READS.get(name, ()))) for name in names),
                 results=frozenset({"mapping", "fusion", "meshing"} & set(names)))


def chunk_files(step: str, chunk: int) -> tuple[str, ...]:
    """The files a chunk leaves in its step's folder, for the steps whose files are known before they run."""
    return {"import": ("import.db",), "features": (f"batch-{chunk:04d}.db",), "database": ("database.db",),
            "matches": (f"block-{chunk:04d}.db",), "mapping": MODEL_FILES, "fusion": (FUSED,),
            "meshing": (MESH,)}.get(step, ())
