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

Matching pairs the images in name order, ``block`` pairs a chunk: every pair (``matcher=exhaustive``), or each
image with the next ``overlap`` ones and those 2, 4, 8, ... ahead (``matcher=sequential``, for photos taken in
order such as video frames: COLMAP's sequential pairing with ``quadratic_overlap``, both windows as COLMAP 3.9 made
them). The pairs are a function of the image count and the choices, so the chunks are known when the job is planned.
"""

from __future__ import annotations

from functools import lru_cache
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


@lru_cache(maxsize=4)
def sequential_pairs(images: int, overlap: int) -> tuple[tuple[int, int], ...]:
    """The pairs of sequential matching, as indices in name order: the next ``overlap`` images and 2**k ahead."""
    ahead = sorted({*range(1, overlap + 1), *(1 << k for k in range(overlap))})
    return tuple((first, first + step) for first in range(images) for step in ahead if first + step < images)


def pair_count(images: int, choices) -> int:
    if choices.matcher == "sequential":
        return len(sequential_pairs(images, choices.overlap))
    return images * (images - 1) // 2


def batch(names: list[str], size: int, chunk: int) -> list[str]:
    """The images of one chunk of features or stereo."""
    return names[chunk * size:(chunk + 1) * size]


def block(names: list[str], choices, chunk: int) -> list[tuple[str, str]]:
    """The image pairs of one chunk of matching, ``choices.block`` a chunk."""
    if choices.matcher == "sequential":
        pairs = ((names[a], names[b]) for a, b in sequential_pairs(len(names), choices.overlap))
    else:
        pairs = combinations(names, 2)
    return list(islice(pairs, chunk * choices.block, (chunk + 1) * choices.block))


def steps(images: int, choices, dense: bool) -> Units:
    """The job's steps for ``images`` images (at least 2) with these choices (batch, block, matcher, overlap)."""
    batches = chunks(images, choices.batch)
    counts = {"features": batches, "matches": max(1, chunks(pair_count(images, choices), choices.block)),
              "stereo": batches, "geometric": batches}
    names = SPARSE + (DENSE if dense else ())
    return Units(tuple(Unit(name, counts.get(name, 1), name, frozenset(READS.get(name, ()))) for name in names),
                 results=frozenset({"mapping", "fusion", "meshing"} & set(names)))


def chunk_files(step: str, chunk: int) -> tuple[str, ...]:
    """The files a chunk leaves in its step's folder, for the steps whose files are known before they run."""
    return {"import": ("import.db",), "features": (f"batch-{chunk:04d}.db",), "database": ("database.db",),
            "matches": (f"block-{chunk:04d}.db",), "mapping": MODEL_FILES, "fusion": (FUSED,),
            "meshing": (MESH,)}.get(step, ())
