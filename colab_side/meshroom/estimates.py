"""Figures used before anything is measured: the pipeline's shape, bytes and seconds per image, Colab's limits.

These are ESTIMATES, each with where it came from. ``python -m colab_side plan`` prints what they
predict; a user who knows better passes ``--model FILE.json`` holding any of the top-level keys
of ``DEFAULTS`` (``bytes``, ``seconds``, ``colab``, ``install_bytes``, ``pipelines``) with their own
figures. Once a job runs, measured chunk times replace ``seconds`` and stored archive sizes
replace ``bytes``.
"""

from __future__ import annotations

import copy
import math

from colab_side.engine import Estimate
from colab_side.plan import ModelError, load_model
from colab_side.meshroom.graph import Graph, GraphError, Node
from colab_side.settings import GB

SOURCES = {
    "bytes": "set so that 150 images give about 7 GB of cache, DepthMap and DepthMapFilter dominating, as the "
             "seed workflow reported; the Meshroom stand-in (keepalive_sim) writes exactly these sizes",
    "seconds.FeatureMatching": "alicevision/Meshroom issues #859 and #815: 1:30 and 1:48 per 20-image chunk",
    "seconds.PrepareDenseScene": "alicevision/Meshroom issue #1603: 37 s and 46 s per 40-image chunk",
    "seconds.DepthMap": "alicevision/Meshroom issue #806: about 24 h for 1,021 images on a GTX 960M",
    "seconds.DepthMapFilter": "alicevision/Meshroom issue #806: half done after about 2 h for 1,021 images",
    "seconds.other": "a guess, no source found: only their ratio to the others matters to the budget",
    "colab.local_free_bytes": "googlecolab/colabtools #919 (2019) and #1377 (2020): df -h on a GPU runtime, "
                              "69G size, 32G used, 34G avail (GiB); #1099: '35 GB storage'; CPU runtimes show 108G "
                              "(#919, #5448); the runtime measures its own at start (heartbeat local_free_bytes)",
    "colab.drive_bytes": "Google Drive's free plan: 15 GB",
    "colab.session_seconds": "Colab's FAQ: free runtimes end after at most 12 hours (24 h on paid plans), "
                             "not guaranteed",
    "install_bytes": "alicevision/meshroom releases: about 1.3 GB packed for 2019.2; unpacked size a guess (x2.5)",
    "pipelines": "Meshroom's photogrammetry graph (alicevision/meshroom, tags v2019.2.0 to v2025.1.0: multiview.py, "
                 "pipelines/photogrammetry.mg, nodes/aliceVision/*.py): nodes, links, blockSize; 2021.1+ Meshing "
                 "reads DepthMapFilter only; 2023.3+ DepthMap 12 and DepthMapFilter 24",
}

_PIPELINE_2019 = [
    # name, nodeType, blockSize, nodes whose output files it reads
    ("CameraInit_1", "CameraInit", 0, []),
    ("FeatureExtraction_1", "FeatureExtraction", 40, ["CameraInit_1"]),
    ("ImageMatching_1", "ImageMatching", 0, ["CameraInit_1", "FeatureExtraction_1"]),
    ("FeatureMatching_1", "FeatureMatching", 20, ["CameraInit_1", "FeatureExtraction_1", "ImageMatching_1"]),
    ("StructureFromMotion_1", "StructureFromMotion", 0, ["CameraInit_1", "FeatureExtraction_1", "FeatureMatching_1"]),
    ("PrepareDenseScene_1", "PrepareDenseScene", 40, ["StructureFromMotion_1"]),
    ("DepthMap_1", "DepthMap", 3, ["PrepareDenseScene_1", "StructureFromMotion_1"]),
    ("DepthMapFilter_1", "DepthMapFilter", 10, ["DepthMap_1", "StructureFromMotion_1"]),
    ("Meshing_1", "Meshing", 0, ["DepthMapFilter_1", "DepthMap_1", "StructureFromMotion_1"]),
    ("MeshFiltering_1", "MeshFiltering", 0, ["Meshing_1"]),
    ("Texturing_1", "Texturing", 0, ["MeshFiltering_1", "Meshing_1", "PrepareDenseScene_1"]),
    ("Publish_1", "Publish", 0, ["Texturing_1"]),
]
# 2021.1 and later: Meshing reads DepthMapFilter's output only; 2023.3 and later: larger depth-map blocks.
_PIPELINE_2021 = [(name, kind, block, ["DepthMapFilter_1", "StructureFromMotion_1"] if kind == "Meshing" else reads)
                  for name, kind, block, reads in _PIPELINE_2019]
_PIPELINE_2023 = [(name, kind, {"DepthMap": 12, "DepthMapFilter": 24}.get(kind, block), reads)
                  for name, kind, block, reads in _PIPELINE_2021]

DEFAULTS = {
    "bytes": {  # output bytes per image, and per node ("fixed")
        "CameraInit": {"per_image": 1_000, "fixed": 2_000},
        "FeatureExtraction": {"per_image": 2_000_000},
        "ImageMatching": {"per_image": 2_000},
        "FeatureMatching": {"per_image": 500_000},
        "StructureFromMotion": {"per_image": 300_000},
        "PrepareDenseScene": {"per_image": 10_000_000},
        "DepthMap": {"per_image": 20_000_000},
        "DepthMapFilter": {"per_image": 12_000_000},
        "Meshing": {"per_image": 500_000, "fixed": 200_000_000},
        "MeshFiltering": {"fixed": 100_000_000},
        "Texturing": {"fixed": 150_000_000},
        "Publish": {},
    },
    "seconds": {  # compute seconds per image, and per node ("fixed")
        "CameraInit": {"per_image": 0.01, "fixed": 5},
        "FeatureExtraction": {"per_image": 2.0},
        "ImageMatching": {"per_image": 0.1},
        "FeatureMatching": {"per_image": 5.0},
        "StructureFromMotion": {"per_image": 2.0},
        "PrepareDenseScene": {"per_image": 1.0},
        "DepthMap": {"per_image": 85.0},
        "DepthMapFilter": {"per_image": 14.0},
        "Meshing": {"per_image": 5.0, "fixed": 600},
        "MeshFiltering": {"fixed": 300},
        "Texturing": {"per_image": 3.0, "fixed": 300},
        "Publish": {"fixed": 10},
    },
    "colab": {"local_free_bytes": 34 * GB, "drive_bytes": 15 * GB, "session_seconds": 12 * 3600},
    "install_bytes": int(1.3 * 2.5 * GB),
    "pipelines": {"2019.2": _PIPELINE_2019, "2021.1": _PIPELINE_2021, "2023.3": _PIPELINE_2023,
                  "2025.1": _PIPELINE_2023},
}


def load(path=None) -> dict:
    """The defaults, with the top-level keys of a user's JSON file (``path``) put over them."""
    return load_model(DEFAULTS, path, validate)


MAX_FIGURE = 1e18  # bytes or seconds beyond this are no figure of a real job


def _number(value, low: float, positive: bool = False) -> bool:
    return (not isinstance(value, bool) and isinstance(value, (int, float)) and low <= value <= MAX_FIGURE
            and (value > 0 or not positive))


def validate(model: dict) -> str | None:
    """What is wrong with a model, in one phrase, or None: every figure typed and in range."""
    for table in ("bytes", "seconds"):
        if not isinstance(model.get(table), dict):
            return f"{table} must map node types to figures"
        for node_type, row in model[table].items():
            if not isinstance(row, dict) or set(row) - {"per_image", "fixed"} or not all(
                    _number(value, 0) for value in row.values()):
                return (f"the figures of {table}.{node_type} must be numbers from 0 to {MAX_FIGURE:g} under "
                        f"per_image and fixed, not {str(row)[:60]}")
    colab = model.get("colab")
    if not isinstance(colab, dict) or set(colab) != set(DEFAULTS["colab"]):
        return f"colab must hold exactly {', '.join(DEFAULTS['colab'])}"
    for name, value in colab.items():
        if not _number(value, 0, positive=True):
            return f"colab.{name} must be a positive number up to {MAX_FIGURE:g}, not {value!r}"
    if not _number(model.get("install_bytes"), 0):
        return f"install_bytes must be a number from 0 to {MAX_FIGURE:g}"
    pipelines = model.get("pipelines")
    if not isinstance(pipelines, dict) or not pipelines:
        return "pipelines must map releases to lists of [name, nodeType, blockSize, [names it reads]]"
    for release, rows in pipelines.items():
        if not isinstance(rows, list) or not rows or not all(
                isinstance(row, (list, tuple)) and len(row) == 4 and isinstance(row[0], str) and isinstance(row[1], str)
                and _number(row[2], 0) and row[2] == int(row[2]) and isinstance(row[3], list)
                and all(isinstance(name, str) for name in row[3]) for row in rows):
            return f"pipelines.{release} must be a list of [name, nodeType, blockSize, [names it reads]]"
    return None


DEPTH_NODES = ("DepthMap", "DepthMapFilter")  # their output is one depth (and similarity) map per view
DEFAULT_DOWNSCALE = 2  # DepthMap's downscale default, every release (nodes/aliceVision/DepthMap.py)
DOWNSCALES = (1, 2, 4, 8, 16)  # the values DepthMap's downscale takes


def downscale(params) -> int:
    """The DepthMap downscale that ``--param`` values set (the default when none does)."""
    chosen = DEFAULT_DOWNSCALE
    for text in params or ():
        name, _, value = str(text).partition("=")
        if name.startswith("DepthMap_") and name.endswith(".downscale"):
            try:
                chosen = int(value)
            except ValueError:
                raise ModelError(f"{text}: DepthMap downscale takes one of {DOWNSCALES}") from None
            if chosen not in DOWNSCALES:
                raise ModelError(f"{text}: DepthMap downscale takes one of {DOWNSCALES}")
    return chosen


def for_params(model: dict, params) -> dict:
    """The model for a job run with ``params`` (``--param`` values): DepthMap's downscale is what changes sizes."""
    return with_downscale(model, downscale(params))


def with_downscale(model: dict, factor: int) -> dict:
    """The model for DepthMap ``downscale=factor``: depth maps have (default / factor)² the pixels, so their
    bytes and (an estimate) their compute seconds scale by that."""
    scaled = copy.deepcopy(model)
    share = (DEFAULT_DOWNSCALE / factor) ** 2
    for table in ("bytes", "seconds"):
        for node_type in DEPTH_NODES:
            row = scaled[table].get(node_type) or {}
            scaled[table][node_type] = {key: value * share for key, value in row.items()}
    return scaled


def figure(table: dict, node_type: str, images: int) -> float:
    """``per_image * images + fixed`` for a node type; a type missing from the table counts 0."""
    row = table.get(node_type) or {}
    try:
        return float(row.get("per_image", 0)) * images + float(row.get("fixed", 0))
    except (TypeError, ValueError, AttributeError):
        raise ModelError(f"the model's figures for {node_type} must be numbers, not {row!r}") from None


def estimate(model: dict, meshroom: str, images: int) -> Estimate:
    """The pipeline of ``meshroom`` for ``images`` images, as a graph with estimated chunk sizes and times."""
    try:
        pipeline = model["pipelines"][meshroom]
    except KeyError:
        raise ModelError(f"no pipeline for Meshroom {meshroom!r}: use one of "
                         f"{', '.join(model['pipelines'])}") from None
    nodes, sizes, times = {}, {}, {}
    for name, node_type, block, reads in pipeline:
        node = Node(name=name, node_type=node_type, uid0=name, block_size=block, size=images if block else 0,
                    split=math.ceil(images / block) if block else 1,
                    inputs={"reads": [f"{{{producer}.output}}" for producer in reads]},
                    outputs={} if node_type == "Publish" else {"output": ""})
        nodes[name] = node
        views = [min(block, images - c * block) for c in range(node.chunk_count)] if block else [images]
        total_bytes = figure(model["bytes"], node_type, images)
        total_seconds = figure(model["seconds"], node_type, images)
        for chunk, count in enumerate(views):
            share = count / images if images else 1 / len(views)
            sizes[name, chunk] = int(total_bytes * share)
            times[name, chunk] = total_seconds * share
    try:
        graph = Graph(nodes, {})
        graph.order()
    except GraphError as exc:
        raise ModelError(f"the model's pipeline for Meshroom {meshroom} is not usable: {exc}") from None
    return Estimate(graph, sizes, times)
