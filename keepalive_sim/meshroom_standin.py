"""A stand-in for Meshroom's command-line tools that writes the files real Meshroom writes.

It plays ``meshroom_photogrammetry`` (2019.2), ``meshroom_batch`` (2021+) and ``meshroom_compute``
with their real options, so that ``colab_side`` runs the same code against it as against the real
thing. What it reproduces (see ``shared/facts/meshroom.md``):

- the 2019.2 photogrammetry graph: its nodes, its links (including links to other nodes' *inputs*),
  its chunking (``parallelization.blockSize``), saved as a ``.mg`` project;
- the cache: ``{cache}/{nodeType}/{uid0}/`` with ``status``/``log``/``statistics`` for nodes without
  blocks and ``N.status``/``N.log``/``N.statistics`` per chunk otherwise; status JSON with the 2019.2
  fields, written to ``<name>.writing.<uuid4>`` and renamed (a kill in between leaves garbage);
- a chunk's life: RUNNING, then SUCCESS, ERROR (exit code 1), STOPPED (SIGINT) or KILLED (atexit).

Outputs are deterministic bytes derived from the input images and the upstream outputs a node
reads, so two runs can be compared byte for byte, and a node whose upstream files are missing
fails as Meshroom would. This file is standard library only: the release archive built by
``meshroom_release`` carries a copy of it, so the executables run without ``keepalive``.

Knobs (environment): ``MESHROOM_STANDIN_CHUNK_SECONDS`` (time per chunk, default 0.05),
``MESHROOM_STANDIN_SIZE_SCALE`` (multiplies ``SIZE_MODEL``, default 1e-4),
``MESHROOM_STANDIN_FAIL`` (a node name whose chunks end in ERROR),
``MESHROOM_STANDIN_PAUSE_IN_WRITE`` (seconds between writing a status temp file and renaming it).
"""

from __future__ import annotations

import argparse
import atexit
import datetime
import hashlib
import json
import math
import os
import shutil
import socket
import sys
import time
import uuid
from pathlib import Path

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".exr", ".heic", ".dng", ".cr2", ".nef")
STATUS_DATE = "%Y-%m-%d %H:%M:%S.%f"

# Output bytes per image (or per node where "fixed"), unscaled: about 7 GB of cache for 150 images,
# DepthMap and DepthMapFilter dominating, as the seed workflow reports.
SIZE_MODEL = {
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
}

# The 2019.2 photogrammetry pipeline: (name, nodeType, blockSize, inputs, outputs, files).
# ``files`` names what the node writes: "{view}" makes one file per image of the chunk,
# "{chunk}" one file per chunk; others are written once.
PIPELINE = [
    ("CameraInit_1", "CameraInit", 0, {}, {"output": "cameraInit.sfm"}, ["cameraInit.sfm"]),
    ("FeatureExtraction_1", "FeatureExtraction", 40,
     {"input": "{CameraInit_1.output}", "describerTypes": ["sift"]},
     {"output": ""}, ["{view}.sift.feat", "{view}.sift.desc"]),
    ("ImageMatching_1", "ImageMatching", 0,
     {"input": "{FeatureExtraction_1.input}", "featuresFolders": ["{FeatureExtraction_1.output}"]},
     {"output": "imageMatches.txt"}, ["imageMatches.txt"]),
    ("FeatureMatching_1", "FeatureMatching", 20,
     {"input": "{ImageMatching_1.input}", "featuresFolders": "{ImageMatching_1.featuresFolders}",
      "imagePairsList": "{ImageMatching_1.output}"},
     {"output": ""}, ["{chunk}.matches.txt"]),
    ("StructureFromMotion_1", "StructureFromMotion", 0,
     {"input": "{FeatureMatching_1.input}", "featuresFolders": "{FeatureMatching_1.featuresFolders}",
      "matchesFolders": ["{FeatureMatching_1.output}"]},
     {"output": "sfm.abc", "outputViewsAndPoses": "cameras.sfm"}, ["sfm.abc", "cameras.sfm"]),
    ("PrepareDenseScene_1", "PrepareDenseScene", 40,
     {"input": "{StructureFromMotion_1.output}"}, {"output": ""}, ["{view}.exr"]),
    ("DepthMap_1", "DepthMap", 3,
     {"input": "{PrepareDenseScene_1.input}", "imagesFolder": "{PrepareDenseScene_1.output}"},
     {"output": ""}, ["{view}_depthMap.exr", "{view}_simMap.exr"]),
    ("DepthMapFilter_1", "DepthMapFilter", 10,
     {"input": "{DepthMap_1.input}", "depthMapsFolder": "{DepthMap_1.output}"},
     {"output": ""}, ["{view}_depthMap.exr", "{view}_simMap.exr"]),
    ("Meshing_1", "Meshing", 0,
     {"input": "{DepthMapFilter_1.input}", "depthMapsFolder": "{DepthMapFilter_1.depthMapsFolder}",
      "depthMapsFilterFolder": "{DepthMapFilter_1.output}"},
     {"output": "densePointCloud.abc", "outputMesh": "mesh.obj"}, ["densePointCloud.abc", "mesh.obj"]),
    ("MeshFiltering_1", "MeshFiltering", 0,
     {"inputMesh": "{Meshing_1.outputMesh}"}, {"outputMesh": "mesh.obj"}, ["mesh.obj"]),
    ("Texturing_1", "Texturing", 0,
     {"input": "{Meshing_1.output}", "imagesFolder": "{DepthMap_1.imagesFolder}",
      "inputMesh": "{MeshFiltering_1.outputMesh}"},
     {"output": "", "outputMesh": "texturedMesh.obj", "outputMaterial": "texturedMesh.mtl",
      "outputTextures": "texture_*.png"},
     ["texturedMesh.obj", "texturedMesh.mtl", "texture_1001.png"]),
]

NODE_VERSIONS = {
    "CameraInit": "2.0", "FeatureExtraction": "1.1", "ImageMatching": "1.0", "FeatureMatching": "2.0",
    "StructureFromMotion": "2.0", "PrepareDenseScene": "2.0", "DepthMap": "2.0", "DepthMapFilter": "2.0",
    "Meshing": "3.0", "MeshFiltering": "2.0", "Texturing": "4.0",
}
RELEASES = {"2019.2": "2019.2.0", "2021.1": "2021.1.0", "2023.3": "2023.3.0", "2025.1": "2025.1.0"}
INTERRUPTED = ("RUNNING", "SUBMITTED")


class StandinError(Exception):
    """A node cannot run (missing input, unknown node): the message is Meshroom-like."""


# --- the graph -----------------------------------------------------------------------------------

def list_images(paths) -> list[Path]:
    images = []
    for path in map(Path, paths):
        if path.is_dir():
            images += [p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS]
        elif path.suffix.lower() in IMAGE_EXTENSIONS:
            images.append(path)
    return sorted(images, key=lambda p: str(p))


def view_id(image: Path) -> int:
    return int.from_bytes(hashlib.sha1(image.name.encode()).digest()[:4], "big")


def _uid(payload) -> str:
    return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def build_graph(images: list[Path], release: str) -> dict:
    """The ``.mg`` document for these images, as ``meshroom_photogrammetry --save`` writes it."""
    uids: dict[str, str] = {}
    graph = {}
    for index, (name, node_type, block_size, inputs, outputs, _files) in enumerate(PIPELINE):
        inputs = dict(inputs)
        if node_type == "CameraInit":
            inputs["viewpoints"] = [
                {"viewId": view_id(img), "poseId": view_id(img), "path": str(img), "intrinsicId": 1}
                for img in images
            ]
        upstream = sorted({ref.split(".")[0] for ref in _links(inputs)})
        uid0 = _uid({"type": node_type, "inputs": inputs, "upstream": [uids[n] for n in upstream]})
        uids[name] = uid0
        size = len(images) if block_size else 0
        graph[name] = {
            "nodeType": node_type,
            "position": [index * 200, 0],
            "parallelization": {
                "blockSize": block_size,
                "size": size,
                "split": math.ceil(size / block_size) if block_size else 1,
            },
            "uids": {"0": uid0},
            "internalFolder": "{cache}/{nodeType}/{uid0}/",
            "inputs": inputs,
            "outputs": {key: "{cache}/{nodeType}/{uid0}/" + value for key, value in outputs.items()},
        }
    return {
        "header": {
            "pipelineVersion": "2.2",
            "releaseVersion": release,
            "fileVersion": "1.1",
            "nodesVersions": {t: NODE_VERSIONS[t] for _, t, *_ in PIPELINE},
        },
        "graph": graph,
    }


def _links(value):
    """Every "{Node.attr}" string inside an attribute value (strings, lists)."""
    if isinstance(value, str):
        if value.startswith("{") and value.endswith("}") and "." in value:
            yield value[1:-1]
    elif isinstance(value, list):
        for item in value:
            yield from _links(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _links(item)


class Project:
    """A loaded ``.mg`` with the cache it computes into."""

    def __init__(self, path: Path, cache: Path):
        self.doc = json.loads(Path(path).read_text())
        self.graph = self.doc["graph"]
        self.cache = Path(cache)
        self.release = self.doc["header"].get("releaseVersion", "")

    def node(self, name: str) -> dict:
        if name not in self.graph:
            raise StandinError(f'Node "{name}" not found in the graph')
        return self.graph[name]

    def folder(self, name: str) -> Path:
        node = self.node(name)
        return self.cache / node["nodeType"] / node["uids"]["0"]

    def chunk_count(self, name: str) -> int:
        par = self.node(name)["parallelization"]
        return par["split"] if par["blockSize"] else 1

    def status_file(self, name: str, chunk: int) -> Path:
        prefix = f"{chunk}." if self.node(name)["parallelization"]["blockSize"] else ""
        return self.folder(name) / f"{prefix}status"

    def resolve(self, value):
        """Turn links into concrete values, following links through other nodes' inputs."""
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        refs = list(_links(value)) if isinstance(value, str) else []
        if not refs:
            return value
        owner, attr = refs[0].split(".", 1)
        node = self.node(owner)
        if attr in node["outputs"]:
            return self.expand(owner, node["outputs"][attr])
        return self.resolve(node["inputs"][attr])

    def expand(self, name: str, template: str) -> str:
        node = self.node(name)
        return template.format(cache=self.cache, nodeType=node["nodeType"], uid0=node["uids"]["0"])

    def producers(self, name: str) -> list[str]:
        """Nodes whose outputs this node reads (links followed through inputs)."""
        found = []

        def walk(value):
            for ref in _links(value):
                owner, attr = ref.split(".", 1)
                if attr in self.node(owner)["outputs"]:
                    found.append(owner)
                else:
                    walk(self.node(owner)["inputs"][attr])

        walk(self.node(name)["inputs"])
        return sorted(set(found))

    def views(self) -> list[dict]:
        return self.node("CameraInit_1")["inputs"]["viewpoints"]


# --- status files --------------------------------------------------------------------------------

def read_status(path: Path) -> str:
    try:
        return json.loads(path.read_text()).get("status", "NONE")
    except (OSError, ValueError, AttributeError):
        return "NONE"


def write_status(path: Path, data: dict) -> None:
    """Meshroom's NodeChunk.saveStatusFile: write a temp file, then move it over the real name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f"{path.name}.writing.{uuid.uuid4()}")
    temp.write_text(json.dumps(data, indent=4))
    pause = float(os.environ.get("MESHROOM_STANDIN_PAUSE_IN_WRITE", "0") or 0)
    if pause:
        time.sleep(pause)
    os.replace(temp, path)


def status_data(project: Project, name: str, status: str, started: datetime.datetime | None) -> dict:
    now = datetime.datetime.now()
    started = started or now
    elapsed = (now - started).total_seconds() if status != "RUNNING" else 0.0
    node = project.node(name)
    return {
        "status": status,
        "execMode": "LOCAL",
        "nodeName": name,
        "nodeType": node["nodeType"],
        "packageName": "AliceVision",
        "packageVersion": "2.2.0",
        "graph": "",
        "commandLine": f"aliceVision_{node['nodeType'][0].lower()}{node['nodeType'][1:]}",
        "env": {},
        "startDateTime": started.strftime(STATUS_DATE),
        "endDateTime": "" if status == "RUNNING" else now.strftime(STATUS_DATE),
        "elapsedTime": elapsed,
        "elapsedTimeStr": str(datetime.timedelta(seconds=elapsed)) if elapsed else "",
        "hostname": socket.gethostname(),
        "sessionUid": SESSION_UID,
    }


SESSION_UID = str(uuid.uuid1())
_running: list[tuple[Project, str, int, datetime.datetime]] = []


@atexit.register
def _mark_killed():
    """Chunks still running when Python exits normally end KILLED, as in Meshroom."""
    for project, name, chunk, started in _running:
        write_status(project.status_file(name, chunk), status_data(project, name, "KILLED", started))


# --- computing -----------------------------------------------------------------------------------

def _digest_inputs(project: Project, name: str) -> bytes:
    """Hash every upstream file this node reads; a missing one is Meshroom's input error."""
    digest = hashlib.sha256(name.encode())
    node = project.node(name)
    for attr in sorted(node["inputs"]):
        value = node["inputs"][attr]
        if attr == "viewpoints":
            for view in value:
                digest.update(Path(view["path"]).read_bytes())
            continue
        if not list(_links(value)):
            digest.update(json.dumps(value, sort_keys=True).encode())
            continue
        resolved = project.resolve(value)
        for path in resolved if isinstance(resolved, list) else [resolved]:
            digest.update(_read_input(Path(path), name, attr))
    return digest.digest()


def _read_input(path: Path, name: str, attr: str) -> bytes:
    if path.is_file():
        return path.read_bytes()
    files = sorted(p for p in path.glob("*") if p.is_file() and _is_output(p.name)) if path.is_dir() else []
    if not files:
        raise StandinError(f"{name}: input {attr} has no data at {path} (missing or pruned)")
    return b"".join(p.name.encode() + p.read_bytes() for p in files)


def _is_output(filename: str) -> bool:
    base = filename.split(".", 1)[-1] if filename[:1].isdigit() else filename
    return ".writing." not in filename and base not in ("status", "log", "statistics")


def _payload(seed: bytes, size: int) -> bytes:
    out = bytearray()
    block = seed
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:size])


def _chunk_files(project: Project, name: str, chunk: int) -> list[tuple[str, int]]:
    """(file name, size) of what one chunk writes."""
    spec = next(p for p in PIPELINE if p[1] == project.node(name)["nodeType"])
    node_type, block_size, patterns = spec[1], spec[2], spec[5]
    views = project.views()
    if block_size:
        views = views[chunk * block_size:(chunk + 1) * block_size]
    scale = float(os.environ.get("MESHROOM_STANDIN_SIZE_SCALE", "1e-4"))
    model = SIZE_MODEL[node_type]
    total = len(project.views())
    files = []
    for pattern in patterns:
        if "{view}" in pattern:
            for view in views:
                files.append((pattern.format(view=view["viewId"]), model.get("per_image", 0)))
        else:
            nbytes = model.get("fixed", 0) + model.get("per_image", 0) * (len(views) if block_size else total)
            files.append((pattern.format(chunk=chunk), nbytes // max(1, len(patterns))))
    return [(fname, max(16, int(nbytes * scale))) for fname, nbytes in files]


def compute_chunk(project: Project, name: str, chunk: int, force_compute: bool) -> None:
    status_path = project.status_file(name, chunk)
    if read_status(status_path) == "SUCCESS" and not force_compute:
        return
    started = datetime.datetime.now()
    folder = project.folder(name)
    log_path = status_path.with_name(status_path.name.replace("status", "log"))
    write_status(status_path, status_data(project, name, "RUNNING", started))
    _running.append((project, name, chunk, started))
    try:
        with open(log_path, "w") as log:
            log.write(f"[{name}] chunk {chunk}: {status_data(project, name, 'RUNNING', started)['commandLine']}\n")
            log.flush()
            try:
                if os.environ.get("MESHROOM_STANDIN_FAIL") == name:
                    raise StandinError(f"{name}: aliceVision exited with an error (injected)")
                seed = _digest_inputs(project, name) + str(chunk).encode()
                _sleep_chunk()
                for fname, size in _chunk_files(project, name, chunk):
                    (folder / fname).write_bytes(_payload(seed + fname.encode(), size))
                log.write(f"[{name}] chunk {chunk}: done\n")
            except StandinError as exc:
                log.write(f"ERROR: {exc}\n")
                _running.pop()
                write_status(status_path, status_data(project, name, "ERROR", started))
                raise
            except KeyboardInterrupt:
                _running.pop()
                write_status(status_path, status_data(project, name, "STOPPED", started))
                raise
        statistics = status_path.with_name(status_path.name.replace("status", "statistics"))
        statistics.write_text(json.dumps({"fileVersion": "1.0", "computer": {}, "process": {}, "times": []}))
        _running.pop()
        write_status(status_path, status_data(project, name, "SUCCESS", started))
    except BaseException:
        if _running and _running[-1][1:3] == (name, chunk):
            _running.pop()
        raise


def _sleep_chunk() -> None:
    remaining = float(os.environ.get("MESHROOM_STANDIN_CHUNK_SECONDS", "0.05"))
    while remaining > 0:
        time.sleep(min(0.01, remaining))
        remaining -= 0.01


def compute_node(project: Project, name: str, iteration: int, force_status: bool, force_compute: bool) -> None:
    chunks = [iteration] if iteration >= 0 else list(range(project.chunk_count(name)))
    if iteration >= project.chunk_count(name):
        raise StandinError(f"{name}: no chunk {iteration} (it has {project.chunk_count(name)})")
    if not (force_status or force_compute):
        for chunk in chunks:
            status = read_status(project.status_file(name, chunk))
            if status in INTERRUPTED:
                raise StandinError(
                    f'Node is already submitted with status "{status}". '
                    f'See file: "{project.status_file(name, chunk)}"'
                )
    node = project.node(name)
    print(f"[{name}] {node['nodeType']}", flush=True)
    for chunk in chunks:
        compute_chunk(project, name, chunk, force_compute)
        print(f" - {name} chunk {chunk + 1}/{project.chunk_count(name)} done", flush=True)


def node_done(project: Project, name: str) -> bool:
    return all(read_status(project.status_file(name, c)) == "SUCCESS" for c in range(project.chunk_count(name)))


def nodes_to_process(project: Project, target: str | None) -> list[str]:
    """Graph.dfsToProcess: walk back from the target, stopping each branch at a finished node."""
    order = list(project.graph)
    targets = [target] if target else [n for n in order if not any(
        n in project.producers(other) for other in order)]
    needed: set[str] = set()

    def visit(name):
        if name in needed or node_done(project, name):
            return
        needed.add(name)
        for producer in project.producers(name):
            visit(producer)

    for name in targets:
        visit(name)
    return [n for n in order if n in needed]


def compute_graph(project: Project, target, force_status, force_compute, output=None) -> None:
    names = nodes_to_process(project, target)
    print(f"Nodes to execute:  {names}", flush=True)
    for name in names:
        compute_node(project, name, -1, force_status, force_compute)
    if output:
        publish(project, Path(output))


def publish(project: Project, output: Path) -> None:
    """What the Publish node does with --output: copy Texturing's results."""
    output.mkdir(parents=True, exist_ok=True)
    for path in sorted(project.folder("Texturing_1").iterdir()):
        if path.is_file() and _is_output(path.name):
            shutil.copyfile(path, output / path.name)


# --- command lines -------------------------------------------------------------------------------

def _run(action) -> int:
    try:
        action()
    except StandinError as exc:
        print(f"ERROR: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _build_and_maybe_compute(inputs, output, cache, save, compute, target, force_status, force_compute, release):
    images = list_images(inputs)
    if not images:
        raise StandinError(f"No input images found in {inputs}")
    cache = Path(cache or Path.cwd() / "MeshroomCache")
    doc = build_graph(images, release)
    if save:
        Path(save).write_text(json.dumps(doc, indent=4))
        print(f"Graph saved to {save}", flush=True)
        return
    if compute:
        project_file = cache / "project_standin.mg"
        cache.mkdir(parents=True, exist_ok=True)
        project_file.write_text(json.dumps(doc, indent=4))
        compute_graph(Project(project_file, cache), target, force_status, force_compute, output)


def photogrammetry(argv, release="2019.2.0") -> int:
    parser = argparse.ArgumentParser(prog="meshroom_photogrammetry",
                                     description="Launch the full photogrammetry pipeline.")
    parser.add_argument("--input", required=False, help="Input folder containing images or file (.sfm or .json)")
    parser.add_argument("--inputImages", nargs="*", default=[], help="Input images")
    parser.add_argument("--pipeline", default="", help="Input .mg file used as pipeline template")
    parser.add_argument("--overrides", default="", help="A JSON file containing parameter overrides")
    parser.add_argument("--output", default="", help="Output folder where results should be copied to")
    parser.add_argument("--save", default="", help="Save the configured Meshroom project to a file")
    parser.add_argument("--cache", default="", help="Custom cache folder to write computation results")
    parser.add_argument("--toNode", default=None, help="Process the node with its dependencies")
    parser.add_argument("--forceStatus", action="store_true", help="Force computation if status is RUNNING or SUBMITTED")
    parser.add_argument("--forceCompute", action="store_true", help="Compute in all cases even if already computed")
    parser.add_argument("--scale", type=int, default=-1, choices=[-1, 1, 2, 4, 8, 16])
    args = parser.parse_args(argv)
    if not args.output and not args.save:
        parser.error("--output is required")
    inputs = ([args.input] if args.input else []) + args.inputImages
    return _run(lambda: _build_and_maybe_compute(
        inputs, args.output, args.cache, args.save, True, args.toNode, args.forceStatus, args.forceCompute, release))


def batch(argv, release="2021.1.0") -> int:
    parser = argparse.ArgumentParser(prog="meshroom_batch", description="Launch the full photogrammetry pipeline.")
    parser.add_argument("-i", "--input", nargs="*", default=[], help="Input folders or image files")
    parser.add_argument("-I", "--inputRecursive", nargs="*", default=[], help="Input folders, searched recursively")
    parser.add_argument("-p", "--pipeline", default="photogrammetry", help="Template .mg or pipeline name")
    parser.add_argument("--overrides", default="", help="A JSON file containing parameter overrides")
    parser.add_argument("--paramOverrides", nargs="*", default=[], help="NODE.param=value overrides")
    parser.add_argument("-o", "--output", default="", help="Output folder where results should be copied to")
    parser.add_argument("-s", "--save", default="", help="Save the configured Meshroom project to a file")
    parser.add_argument("--cache", default="", help="Custom cache folder to write computation results")
    parser.add_argument("--compute", default="yes", choices=["yes", "no"], help="Compute the graph")
    parser.add_argument("--toNode", default=None, help="Process the node with its dependencies")
    parser.add_argument("--forceStatus", action="store_true", help="Force computation if status is RUNNING or SUBMITTED")
    parser.add_argument("--forceCompute", action="store_true", help="Compute in all cases even if already computed")
    parser.add_argument("--submit", action="store_true", help="Submit on the render farm instead of local computation")
    parser.add_argument("--submitter", default="", help="Render farm submitter")
    args = parser.parse_args(argv)
    inputs = args.input + args.inputRecursive
    return _run(lambda: _build_and_maybe_compute(
        inputs, args.output, args.cache, args.save, args.compute == "yes", args.toNode,
        args.forceStatus, args.forceCompute, release))


def compute(argv) -> int:
    parser = argparse.ArgumentParser(prog="meshroom_compute", description="Execute a Graph of processes.")
    parser.add_argument("graphFile", help="Filepath to a graph file.")
    parser.add_argument("--node", default="", help="Process the node. It will generate an error if the dependencies are not already computed.")
    parser.add_argument("--toNode", default=None, help="Process the node with its dependencies.")
    parser.add_argument("--forceStatus", action="store_true", help="Force computation if status is RUNNING or SUBMITTED.")
    parser.add_argument("--forceCompute", action="store_true", help="Compute in all cases even if already computed.")
    parser.add_argument("--extern", action="store_true", help="Use this option when you compute externally after submission to a render farm from meshroom.")
    parser.add_argument("--cache", default="", help="Override the cache folder")
    parser.add_argument("-i", "--iteration", type=int, default=-1, help="Index of a chunk to compute.")
    args = parser.parse_args(argv)

    def action():
        cache = Path(args.cache) if args.cache else Path(args.graphFile).parent / "MeshroomCache"
        project = Project(Path(args.graphFile), cache)
        if args.node:
            compute_node(project, args.node, args.iteration, args.forceStatus, args.forceCompute)
        else:
            compute_graph(project, args.toNode, args.forceStatus, args.forceCompute)

    return _run(action)


TOOLS = {"meshroom_photogrammetry": photogrammetry, "meshroom_batch": batch, "meshroom_compute": compute}


def main(tool: str, argv=None, release: str = "") -> int:
    """Entry point of the executables: ``tool`` is the executable's name."""
    argv = sys.argv[1:] if argv is None else argv
    if tool == "meshroom_compute":
        return compute(argv)
    return TOOLS[tool](argv, release) if release else TOOLS[tool](argv)
