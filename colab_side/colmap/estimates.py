"""Figures for a COLMAP job before anything is measured: bytes and seconds per image (per pair for matches).

ESTIMATES, measured with pycolmap 4.2.1 on images pycolmap synthesizes (docs/colmap.md, "Size model", and
``bench/bench_colmap.py``); photos with more features per image take longer and write more. ``python -m
colab_side plan --engine colmap`` prints what they predict; ``--model FILE.json`` puts a user's own figures
(any of the top-level keys of ``DEFAULTS``) over them. Once a job runs, measured chunk times replace these.

The job's ``--param`` values that change its steps (``batch``, ``block``, ``matcher``, ``mapper``, ``snapshot``,
``dense``) go into the model
(``for_params``); ``estimate``'s ``release`` is not used (pycolmap's version is fixed: ``install.VERSION``).
"""

from __future__ import annotations

import copy

from colab_side.colmap import units
from colab_side.colmap.options import Choices
from colab_side.engine import Estimate
from colab_side.plan import load_model
from colab_side.settings import GB

DEFAULTS = {
    # per image (per pair for matches)
    "seconds": {"import": 0.04, "features": 0.76, "database": 0.03, "retrieval": 0.05, "matches": 0.048,
                "mapping": 0.067,
                "undistortion": 0.05, "stereo": 5.0, "geometric": 5.0, "fusion": 0.5, "meshing": 0.2},
    "bytes": {"import": 8_000, "features": 360_000, "database": 350_000, "retrieval": 6_000, "matches": 2_500,
              "mapping": 150_000,
              "undistortion": 5_000_000, "stereo": 123_000_000, "geometric": 123_000_000, "fusion": 1_000_000,
              "meshing": 500_000},
    "colab": {"local_free_bytes": 34 * GB, "drive_bytes": 15 * GB, "session_seconds": 12 * 3600},
    "install_bytes": 122 << 20,
}
SOURCES = {
    "seconds.sparse": "bench/bench_colmap.py, 30 synthesized 800x600 images (about 2,200 SIFT features each), one "
                      "thread, 2 busy CPU cores, the engine's chunk times (docs/colmap.md); photos of 3,200 px with "
                      "8,000 features take several times longer per image and per pair on a CPU",
    "bytes.sparse": "the archives of a 12-image synthesized job (800x600, about 1,300 features): SQLite files with "
                    "keypoints (24 B) and descriptors (128 B) per feature, the model's .bin and .txt",
    "seconds.dense": "facts/colmap.md: patch_match_stereo about 5 s per image per pass at 1024x768 on an H200; "
                     "undistortion, fusion and meshing a guess",
    "bytes.dense": "a guess from the formats: a depth map (4 B) and a normal map (12 B) per pixel of a 3,200x2,400 "
                   "undistorted image, per pass; undistorted images about 5 MB; fused.ply and the mesh about 1 MB "
                   "and 0.5 MB per image",
    "install_bytes": "pycolmap 4.2.1 (CPU wheel) installed: 122 MB (facts/colmap.md)",
    "colab": "as colab_side/meshroom/estimates.py",
}


def validate(model: dict) -> str | None:
    """What is wrong with a model, in one phrase, or None."""
    for key in ("seconds", "bytes"):
        if not isinstance(model[key], dict) or set(model[key]) != set(DEFAULTS[key]):
            return f"{key} must hold a figure for each of {', '.join(DEFAULTS[key])}"
    for key in ("seconds", "bytes", "colab"):
        for name, value in model[key].items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                return f"{key}.{name} must be a number from 0, not {value!r}"
    return None


def load(path=None) -> dict:
    """The defaults, with the top-level keys of a user's JSON file (``path``) put over them."""
    return load_model(DEFAULTS, path, validate)


def _count(step: str, images: int, chunk: int, choices: Choices) -> int:
    """Images (pairs for matches) that one chunk of ``step`` works on."""
    if step == "matches":
        return max(0, min(choices.block, units.pair_count(images, choices) - chunk * choices.block))
    if step in ("features", "stereo", "geometric"):
        return max(0, min(choices.batch, images - chunk * choices.batch))
    if step == "mapping" and choices.mapper == "incremental":
        return max(0, min(choices.snapshot, images - chunk * choices.snapshot))
    return images


def chunk_seconds(model: dict, work, images: int, choices: Choices) -> dict:
    """step → estimated seconds per chunk (the mean over its chunks)."""
    return {name: sum(model["seconds"][name] * _count(name, images, chunk, choices) for chunk in range(step.chunk_count))
            / step.chunk_count for name, step in work.nodes.items()}


DEPTH_SIZE = 3200  # the undistorted images' longer side the dense figures are for (pixels)


def for_params(model: dict, params) -> dict:
    """The model for a job run with ``params``: the chunk sizes, whether the dense steps are planned (``dense=off``
    plans the sparse model only; otherwise dense, as on a runtime with CUDA), and depth maps of
    ``patch_match.max_image_size`` (their bytes and seconds scale with the pixels). ``ValueError`` of one line."""
    choices = Choices.read(params)
    scaled = copy.deepcopy(model)
    size = dict(choices.options.get("patch_match", ())).get("max_image_size", "")
    if size.isdigit() and 0 < int(size) < DEPTH_SIZE:  # (a value pycolmap refuses is said when the job starts)
        for table in ("bytes", "seconds"):
            for step in ("stereo", "geometric"):
                scaled[table][step] *= (int(size) / DEPTH_SIZE) ** 2
    scaled["choices"] = choices  # what shapes the job's steps: chunk sizes, matcher, mapper, dense
    return scaled


def estimate(model: dict, release: str, images: int) -> Estimate:
    """The job's steps for ``images`` images with estimated bytes and seconds per chunk."""
    choices = units.resolve(model.get("choices") or Choices.read(()), images)
    work = units.steps(max(images, 2), choices, choices.dense != "off")
    sizes, times = {}, {}
    for name, step in work.nodes.items():
        for chunk in range(step.chunk_count):
            count = _count(name, images, chunk, choices)
            sizes[name, chunk] = int(model["bytes"][name] * count)
            times[name, chunk] = model["seconds"][name] * count
    return Estimate(work, sizes, times)
