"""The COLMAP job's steps and what each chunk of them covers: pure functions of the image names and choices.

    import        1 chunk                 the database of cameras and images, no features (``import/import.db``)
    features      one per batch of images keypoints and descriptors of the batch (``features/batch-0000.db``)
    database      1 chunk                 the batches merged into a fresh database (``database/database.db``)
  with vocabulary-tree matching:
    retrieval     1 chunk                 the pairs to match, retrieved by the tree (``retrieval/pairs.json``)
    matches       one per block of pairs  matches and two-view geometries of the block (``matches/block-0000.db``)
    mapping       1 chunk                 the sparse model, binary and text (``mapping/sparse/0/``); incremental
                  one per ``snapshot``    mapping: each chunk registers ``snapshot`` images more, from the model
                  images                  the chunk before left (``mapping/snapshots/0000/``), the last one to the
                                          end
  with dense:
    undistortion  1 chunk                 undistorted images and model (``undistortion/``)
    stereo        one per batch of images photometric depth and normal maps
    geometric     one per batch of images geometric depth and normal maps (they read every photometric map)
    fusion        1 chunk                 ``fusion/fused.ply``
    meshing       1 chunk                 ``meshing/meshed-poisson.ply``

Matching pairs the images in name order, ``block`` pairs a chunk: every pair (``matcher=exhaustive``), or each
image with the next ``overlap`` ones and those 2, 4, 8, ... ahead (``matcher=sequential``, for photos taken in
order such as video frames: COLMAP's sequential pairing with ``quadratic_overlap``, both windows as COLMAP 3.9 made
them), or each image with the ``vocab_tree.num_images`` most similar ones by a vocabulary tree
(``matcher=vocabtree``, for large unordered sets). ``matcher=auto`` (the default) is exhaustive up to
``EXHAUSTIVE_UP_TO`` images and the vocabulary tree above. Exhaustive and sequential pairs are a function of the
image count and the choices; the tree's are known only once features exist, so a vocabulary-tree job plans as many
blocks as its most pairs (each image with its neighbours, none twice) and the blocks past the pairs found are empty:
the chunks are known when the job is planned either way.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from itertools import combinations, islice

from colab_side.engine import Unit, Units

SPARSE = ("import", "features", "database", "matches", "mapping")
DENSE = ("undistortion", "stereo", "geometric", "fusion", "meshing")
READS = {"features": {"import"}, "database": {"import", "features"}, "retrieval": {"database"},
         "matches": {"database"},
         "mapping": {"database", "matches"}, "undistortion": {"mapping"}, "stereo": {"undistortion"},
         "geometric": {"undistortion", "stereo"}, "fusion": {"undistortion", "geometric"}, "meshing": {"fusion"}}
MODEL = "sparse/0"  # the model's folder in the mapping step's folder, as COLMAP lays it out
MODEL_FILES = tuple(f"{MODEL}/{part}.{kind}" for kind in ("bin", "txt")
                    for part in ("cameras", "images", "points3D", "frames", "rigs"))
FUSED, MESH = "fused.ply", "meshed-poisson.ply"
PAIRS = "pairs.json"  # the retrieval step's file: a list of pairs of image names
EXHAUSTIVE_UP_TO = 300  # matcher=auto: exhaustive up to this many images (COLMAP's advice: exhaustive "up to several
# hundreds", the vocabulary tree for "several thousands"; 300 images are 44,850 pairs), the vocabulary tree above
NEIGHBOURS = 100  # VocabTreePairingOptions.num_images, COLMAP's default: similar images retrieved for each image


def chunks(count: int, size: int) -> int:
    return -(-count // size)


@lru_cache(maxsize=4)
def sequential_pairs(images: int, overlap: int) -> tuple[tuple[int, int], ...]:
    """The pairs of sequential matching, as indices in name order: the next ``overlap`` images and 2**k ahead."""
    ahead = sorted({*range(1, overlap + 1), *(1 << k for k in range(overlap))})
    return tuple((first, first + step) for first in range(images) for step in ahead if first + step < images)


def resolve(choices, images: int):
    """The choices with ``matcher=auto`` made exhaustive or vocabtree by the image count."""
    if choices.matcher != "auto":
        return choices
    return replace(choices, matcher="exhaustive" if images <= EXHAUSTIVE_UP_TO else "vocabtree")


def planned_matcher(saved: dict, choices) -> str:
    """The matcher of a job whose first session saved ``saved`` (engine-plan.json); a job planned before
    ``matcher=auto`` existed was planned exhaustive unless its parameters chose another."""
    if saved.get("matcher") in ("exhaustive", "sequential", "vocabtree"):
        return saved["matcher"]
    return "exhaustive" if choices.matcher == "auto" else choices.matcher


def neighbours(choices) -> int:
    """Images the vocabulary tree retrieves for each image (``vocab_tree.num_images``)."""
    value = dict(choices.options.get("vocab_tree", ())).get("num_images", "")
    return int(value) if value.isdigit() and int(value) > 0 else NEIGHBOURS


def pair_count(images: int, choices) -> int:
    """The pairs to match (``matcher`` resolved); with the vocabulary tree, the most there can be."""
    every = images * (images - 1) // 2
    if choices.matcher == "sequential":
        return len(sequential_pairs(images, choices.overlap))
    if choices.matcher == "vocabtree":
        return min(every, images * neighbours(choices))
    return every


def match_blocks(images: int, choices) -> int:
    """Chunks of matching: ``block`` pairs each (at least one)."""
    return max(1, chunks(pair_count(images, choices), choices.block))


def mapping_chunks(images: int, choices) -> int:
    """Global mapping: 1. Incremental: one per ``snapshot`` images (the last maps to the end)."""
    return chunks(images, choices.snapshot) if choices.mapper == "incremental" else 1


def snapshot(chunk: int) -> str:
    """The folder, in the mapping step's, of the model an incremental chunk before the last leaves."""
    return f"snapshots/{chunk:04d}"


def batch(names: list[str], size: int, chunk: int) -> list[str]:
    """The images of one chunk of features or stereo."""
    return names[chunk * size:(chunk + 1) * size]


def block(names: list[str], choices, chunk: int, retrieved=None) -> list[tuple[str, str]]:
    """The image pairs of one chunk of matching, ``choices.block`` a chunk; ``retrieved``: the retrieval step's
    pairs (vocabulary tree)."""
    if choices.matcher == "vocabtree":
        pairs = iter(retrieved)
    elif choices.matcher == "sequential":
        pairs = ((names[a], names[b]) for a, b in sequential_pairs(len(names), choices.overlap))
    else:
        pairs = combinations(names, 2)
    return list(islice(pairs, chunk * choices.block, (chunk + 1) * choices.block))


def retrieved_pairs(names: list[str], found) -> list[tuple[str, str]]:
    """The tree's pairs of image names (``found``: pairs in any order, self pairs and repeats included) as each
    pair once, the names of a pair and the pairs in name order."""
    where = {name: index for index, name in enumerate(names)}
    unique = {tuple(sorted((a, b), key=where.__getitem__)) for a, b in found if a != b}
    return sorted(unique, key=lambda pair: (where[pair[0]], where[pair[1]]))


def steps(images: int, choices, dense: bool) -> Units:
    """The job's steps for ``images`` images (at least 2) with these choices (batch, block, matcher resolved,
    overlap)."""
    batches = chunks(images, choices.batch)
    counts = {"features": batches, "matches": match_blocks(images, choices),
              "mapping": mapping_chunks(images, choices), "stereo": batches, "geometric": batches}
    tree = choices.matcher == "vocabtree"
    reads = {**READS, "matches": READS["matches"] | ({"retrieval"} if tree else set())}
    names = (SPARSE[:3] + (("retrieval",) if tree else ()) + SPARSE[3:]) + (DENSE if dense else ())
    return Units(tuple(Unit(name, counts.get(name, 1), name, frozenset(reads.get(name, ()))) for name in names),
                 results=frozenset({"mapping", "fusion", "meshing"} & set(names)))


def chunk_file(step: str, chunk: int) -> str:
    """The file a chunk of features or matches leaves in its step's folder."""
    return f"{'batch' if step == 'features' else 'block'}-{chunk:04d}.db"
