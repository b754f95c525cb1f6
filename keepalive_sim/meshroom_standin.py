"""A stand-in for Meshroom's command-line tools that writes the files real Meshroom writes.

It plays ``meshroom_photogrammetry`` (2019.2), ``meshroom_batch`` (2021.1 and later) and
``meshroom_compute`` with their real options, so that ``colab_side`` runs the same code against it as
against the real thing. Every structural fact below was read from Meshroom's source, per release; the
tag and file of each are listed in ``docs/meshroom.md``, and ``tests/data/meshroom_<release>.json``
holds the same facts written down separately, so a test catches any drift:

- the photogrammetry graph: node types, links (including links to other nodes' *inputs*), block sizes
  and node sizes, and a ``Publish_1`` node whenever ``--output`` is given. Publish has no output
  attributes: it copies Texturing's ``outputMesh``/``outputMaterial``/``outputTextures`` into its
  ``output`` folder, outside the cache; its own cache folder holds only status, log and statistics;
- the ``.mg`` file: header keys, node fields (``uids: {"0": ...}`` before 2025.1, ``uid`` from 2025.1,
  ``internalInputs`` from 2023.3), the saved output templates;
- the cache: ``{cache}/{nodeType}/{uid0}/`` (``{cache}/{nodeType}/{uid}`` in 2025.1) with
  ``status``/``log``/``statistics`` for nodes without blocks and ``N.status``/``N.log``/``N.statistics``
  per chunk otherwise; status JSON with the release's fields, written to ``<name>.writing.<uuid4>`` and
  renamed (a kill in between leaves garbage);
- a chunk's life: RUNNING, then SUCCESS, ERROR (exit code 1), STOPPED (SIGINT) or KILLED (atexit);
  ``meshroom_compute --node`` only *warns* about a chunk that is RUNNING or SUBMITTED, and computes it.

Outputs are deterministic bytes derived from the input images and the upstream outputs a node reads,
so two runs can be compared byte for byte, and a node whose upstream files are missing fails as
Meshroom would. This file is standard library only: the release archive built by ``meshroom_release``
carries a copy of it, so the executables run without ``keepalive``.

Knobs (environment): ``MESHROOM_STANDIN_CHUNK_SECONDS`` (time per chunk, default 0.05),
``MESHROOM_STANDIN_SIZE_SCALE`` (multiplies the size model, default 1e-4),
``MESHROOM_STANDIN_FAIL`` (a node name whose chunks end in ERROR),
``MESHROOM_STANDIN_PAUSE_IN_WRITE`` (seconds between writing a status temp file and renaming it).
"""

from __future__ import annotations

import argparse
import atexit
import datetime
import glob
import hashlib
import json
import math
import os
import re
import shutil
import socket
import sys
import time
import uuid
from pathlib import Path

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".exr", ".heic", ".dng", ".cr2", ".nef")
STATUS_DATE = "%Y-%m-%d %H:%M:%S.%f"

# Output bytes per image (or per node where "fixed"), unscaled: ``size_model.json`` beside this file,
# which the release archive carries (``meshroom_release`` writes colab_side's byte estimates into it,
# so the stand-in writes what the Drive budget plans for).
SIZE_MODEL_FILE = "size_model.json"


# --- what each release's source says ---------------------------------------------------------------

PUBLISH_FILES = ["{Texturing_1.outputMesh}", "{Texturing_1.outputMaterial}", "{Texturing_1.outputTextures}"]

# 2019.2: multiview.py sfmPipeline + mvsPipeline + photogrammetry(output=...) (which adds Publish).
LINKS_2019 = {
    "CameraInit_1": {},
    "FeatureExtraction_1": {"input": "{CameraInit_1.output}"},
    "ImageMatching_1": {"input": "{FeatureExtraction_1.input}", "featuresFolders": ["{FeatureExtraction_1.output}"]},
    "FeatureMatching_1": {"input": "{ImageMatching_1.input}", "featuresFolders": "{ImageMatching_1.featuresFolders}",
                          "imagePairsList": "{ImageMatching_1.output}"},
    "StructureFromMotion_1": {"input": "{FeatureMatching_1.input}",
                              "featuresFolders": "{FeatureMatching_1.featuresFolders}",
                              "matchesFolders": ["{FeatureMatching_1.output}"]},
    "PrepareDenseScene_1": {"input": "{StructureFromMotion_1.output}"},
    "DepthMap_1": {"input": "{PrepareDenseScene_1.input}", "imagesFolder": "{PrepareDenseScene_1.output}"},
    "DepthMapFilter_1": {"input": "{DepthMap_1.input}", "depthMapsFolder": "{DepthMap_1.output}"},
    "Meshing_1": {"input": "{DepthMapFilter_1.input}", "depthMapsFolder": "{DepthMapFilter_1.depthMapsFolder}",
                  "depthMapsFilterFolder": "{DepthMapFilter_1.output}"},
    "MeshFiltering_1": {"inputMesh": "{Meshing_1.outputMesh}"},
    "Texturing_1": {"input": "{Meshing_1.output}", "imagesFolder": "{DepthMap_1.imagesFolder}",
                    "inputMesh": "{MeshFiltering_1.outputMesh}"},
    "Publish_1": {"inputFiles": PUBLISH_FILES},
}
# 2021.1 multiview.py: describerTypes links, Meshing reads DepthMapFilter's output only. The 2023.3
# template (pipelines/photogrammetry.mg) and the 2025.1 one (AliceVision plugin) have the same links.
LINKS_2021 = {
    **LINKS_2019,
    "FeatureMatching_1": {**LINKS_2019["FeatureMatching_1"], "describerTypes": "{FeatureExtraction_1.describerTypes}"},
    "StructureFromMotion_1": {**LINKS_2019["StructureFromMotion_1"],
                              "describerTypes": "{FeatureMatching_1.describerTypes}"},
    "Meshing_1": {"input": "{DepthMapFilter_1.input}", "depthMapsFolder": "{DepthMapFilter_1.output}"},
}

# Output attributes, as paths inside the node's folder ("" is the folder itself), from nodes/aliceVision/*.py.
OUTPUTS_2019 = {
    "CameraInit": {"output": "cameraInit.sfm"},
    "FeatureExtraction": {"output": ""},
    "ImageMatching": {"output": "imageMatches.txt"},
    "FeatureMatching": {"output": ""},
    "StructureFromMotion": {"output": "sfm.abc", "outputViewsAndPoses": "cameras.sfm", "extraInfoFolder": ""},
    "PrepareDenseScene": {"output": "", "outputUndistorted": "*.{outputFileTypeValue}"},
    "DepthMap": {"output": ""},
    "DepthMapFilter": {"output": ""},
    "Meshing": {"outputMesh": "mesh.obj", "output": "densePointCloud.abc"},
    "MeshFiltering": {"outputMesh": "mesh.obj"},
    "Texturing": {"output": "", "outputMesh": "texturedMesh.obj", "outputMaterial": "texturedMesh.mtl",
                  "outputTextures": "texture_*.{outputTextureFileTypeValue}"},
    "Publish": {},
}
OUTPUTS_2023 = {
    **OUTPUTS_2019,
    "PrepareDenseScene": {"output": "", "undistorted": "<VIEW_ID>.{outputFileTypeValue}"},
    "DepthMap": {"output": "", "depth": "<VIEW_ID>_depthMap.exr", "sim": "<VIEW_ID>_simMap.exr",
                 "tilePattern": "<VIEW_ID>_tilePattern.obj", "depthSgm": "<VIEW_ID>_depthMap_sgm.exr",
                 "depthSgmUpscaled": "<VIEW_ID>_depthMap_sgmUpscaled.exr",
                 "depthRefined": "<VIEW_ID>_depthMap_refinedFused.exr"},
    "DepthMapFilter": {"output": "", "depth": "<VIEW_ID>_depthMap.exr", "sim": "<VIEW_ID>_simMap.exr"},
    "Meshing": {"outputMesh": "mesh.{outputMeshFileTypeValue}", "output": "densePointCloud.abc"},
    "MeshFiltering": {"outputMesh": "mesh.{outputMeshFileTypeValue}"},
    "Texturing": {"output": "", "outputMesh": "texturedMesh.{outputMeshFileTypeValue}",
                  "outputMaterial": "texturedMesh.mtl", "outputTextures": "texture_*.exr"},
}
OUTPUTS_2025 = {**OUTPUTS_2023, "DepthMapFilter": {**OUTPUTS_2023["DepthMapFilter"], "normal": "<VIEW_ID>_normalMap.exr"}}

# Default values of the inputs that other nodes link to or that name output files ("{...Value}").
DEFAULT_INPUTS_2019 = {"FeatureExtraction": {"describerTypes": ["sift"]}, "PrepareDenseScene": {"outputFileType": "exr"},
                       "Texturing": {"outputTextureFileType": "png"}}
DEFAULT_INPUTS_2023 = {
    "FeatureExtraction": {"describerTypes": ["dspsift"]},
    "PrepareDenseScene": {"outputFileType": "exr"}, "Meshing": {"outputMeshFileType": "obj"},
    "MeshFiltering": {"outputMeshFileType": "obj"},
    "Texturing": {"outputMeshFileType": "obj", "colorMapping": {"enable": True, "colorMappingFileType": "exr"}},
}

BLOCKS_2019 = {"FeatureExtraction": 40, "FeatureMatching": 20, "PrepareDenseScene": 40, "DepthMap": 3, "DepthMapFilter": 10}
BLOCKS_2023 = {**BLOCKS_2019, "DepthMap": 12, "DepthMapFilter": 24}
# desc.DynamicNodeSize(...) of each node type; others are StaticNodeSize(1).
SIZE_FROM = {"CameraInit": "viewpoints", "FeatureExtraction": "input", "ImageMatching": "input",
             "FeatureMatching": "input", "StructureFromMotion": "input", "PrepareDenseScene": "input",
             "DepthMap": "input", "DepthMapFilter": "input", "Publish": "inputFiles"}

STATUS_FIELDS = ("status", "execMode", "nodeName", "nodeType", "packageName", "packageVersion", "graph",
                 "commandLine", "env", "startDateTime", "endDateTime", "elapsedTime", "hostname", "sessionUid")
INTERNAL_INPUTS = {"invalidation": "", "comment": "", "label": "", "color": ""}


def _release(version, links, outputs, defaults, blocks, node_versions, *, uid_field="uids",
             folder="{cache}/{nodeType}/{uid0}/", output_prefix="{cache}/{nodeType}/{uid0}/",
             header=("pipelineVersion", "releaseVersion", "fileVersion", "nodesVersions"), file_version="1.1",
             internal_inputs=False, status_extra=(), busy="Warning") -> dict:
    return {"version": version, "links": links, "outputs": outputs, "defaults": defaults, "blocks": blocks,
            "node_versions": node_versions, "uid_field": uid_field, "folder": folder, "output_prefix": output_prefix,
            "header": header, "file_version": file_version, "internal_inputs": internal_inputs,
            "status_extra": status_extra, "busy": busy}


RELEASES = {
    "2019.2": _release("2019.2.0", LINKS_2019, OUTPUTS_2019, DEFAULT_INPUTS_2019, BLOCKS_2019, {
        "CameraInit": "2.0", "FeatureExtraction": "1.1", "ImageMatching": "1.0", "FeatureMatching": "2.0",
        "StructureFromMotion": "2.0", "PrepareDenseScene": "3.0", "DepthMap": "2.0", "DepthMapFilter": "3.0",
        "Meshing": "3.0", "MeshFiltering": "2.0", "Texturing": "5.0", "Publish": "1.1"}, busy="Error"),
    "2021.1": _release("2021.1.0", LINKS_2021, OUTPUTS_2019, DEFAULT_INPUTS_2019, BLOCKS_2019, {
        "CameraInit": "4.0", "FeatureExtraction": "1.1", "ImageMatching": "2.0", "FeatureMatching": "2.0",
        "StructureFromMotion": "2.0", "PrepareDenseScene": "3.0", "DepthMap": "2.0", "DepthMapFilter": "3.0",
        "Meshing": "7.0", "MeshFiltering": "3.0", "Texturing": "5.0", "Publish": "1.2"}, status_extra=("_parent",)),
    "2023.3": _release("2023.3.0", LINKS_2021, OUTPUTS_2023, DEFAULT_INPUTS_2023, BLOCKS_2023, {
        "CameraInit": "9.0", "FeatureExtraction": "1.3", "ImageMatching": "2.0", "FeatureMatching": "2.0",
        "StructureFromMotion": "3.3", "PrepareDenseScene": "3.1", "DepthMap": "5.0", "DepthMapFilter": "4.0",
        "Meshing": "7.0", "MeshFiltering": "3.0", "Texturing": "6.0", "Publish": "1.3"},
        header=("pipelineVersion", "releaseVersion", "fileVersion", "template", "nodesVersions"),
        internal_inputs=True, status_extra=("_parent",)),
    "2025.1": _release("2025.1.0", LINKS_2021, OUTPUTS_2025, DEFAULT_INPUTS_2023, BLOCKS_2023, {
        "CameraInit": "12.0", "FeatureExtraction": "1.3", "ImageMatching": "2.0", "FeatureMatching": "2.0",
        "StructureFromMotion": "3.3", "PrepareDenseScene": "3.1", "DepthMap": "5.0", "DepthMapFilter": "4.0",
        "Meshing": "7.0", "MeshFiltering": "3.0", "Texturing": "6.0", "Publish": "1.3"},
        uid_field="uid", folder="{cache}/{nodeType}/{uid}", output_prefix="{nodeCacheFolder}/",
        header=("releaseVersion", "fileVersion", "nodesVersions"), file_version="2.0", internal_inputs=True,
        status_extra=("mrNodeType", "submitterSessionUid")),
}

# What the stand-in's AliceVision programs write: "{view}" one file per image of the chunk, "{chunk}" one
# file per chunk, "{texture}" the release's texture file type; others once.
FILES = {
    "CameraInit": ["cameraInit.sfm"],
    "FeatureExtraction": ["{view}.sift.feat", "{view}.sift.desc"],
    "ImageMatching": ["imageMatches.txt"],
    "FeatureMatching": ["{chunk}.matches.txt"],
    "StructureFromMotion": ["sfm.abc", "cameras.sfm"],
    "PrepareDenseScene": ["{view}.exr"],
    "DepthMap": ["{view}_depthMap.exr", "{view}_simMap.exr"],
    "DepthMapFilter": ["{view}_depthMap.exr", "{view}_simMap.exr"],
    "Meshing": ["densePointCloud.abc", "mesh.obj"],
    "MeshFiltering": ["mesh.obj"],
    "Texturing": ["texturedMesh.obj", "texturedMesh.mtl", "texture_1001.{texture}"],
    "Publish": [],
}


class StandinError(Exception):
    """A node cannot run (missing input, unknown node): the message is Meshroom-like."""


def release_model(release: str) -> dict:
    """The model of ``release`` ("2019.2" or "2019.2.0")."""
    key = release[:-2] if release.endswith(".0") else release
    if key not in RELEASES:
        raise StandinError(f"no stand-in for Meshroom {release}; known: {', '.join(RELEASES)}")
    return RELEASES[key]


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


def _saved_output(model: dict, relative: str) -> str:
    """An output as Node.toDict writes it: the descriptor's template inside the node's folder."""
    value = model["output_prefix"] + relative
    return value.rstrip("/") if model["output_prefix"] == "{nodeCacheFolder}/" and not relative else value


def node_size(node_type: str, inputs: dict, images: int) -> int:
    """desc.DynamicNodeSize: a link takes the linked node's size (the views here), a list its length."""
    param = SIZE_FROM.get(node_type)
    if param is None:
        return 1
    value = inputs.get(param)
    return len(value) if isinstance(value, list) and param != "input" else images


def build_graph(images: list[Path], release: str, output: str = "", links: dict | None = None) -> dict:
    """The ``.mg`` document for these images, as ``--save`` writes it; Publish_1 only with ``output``.

    ``links`` replaces the release's photogrammetry links (a custom ``--pipeline``)."""
    model = release_model(release)
    links = links or model["links"]
    uids: dict[str, str] = {}
    graph = {}
    names = [name for name in links if output or _type(name) != "Publish"]
    for index, name in enumerate(_dependency_order(names, links)):
        node_type = _type(name)
        inputs = json.loads(json.dumps(links[name]))
        inputs.update(json.loads(json.dumps(model["defaults"].get(node_type, {}))))
        if node_type == "CameraInit":
            inputs["viewpoints"] = [
                {"viewId": view_id(img), "poseId": view_id(img), "path": str(img), "intrinsicId": 1}
                for img in images
            ]
        if node_type == "Publish":
            inputs["output"] = str(output)
        upstream = sorted({ref.split(".")[0] for ref in _links(inputs)})
        uid = _uid({"type": node_type, "inputs": inputs, "upstream": [uids[n] for n in upstream]})
        uids[name] = uid
        block_size = model["blocks"].get(node_type, 0)
        size = node_size(node_type, inputs, len(images))
        node = {
            "nodeType": node_type,
            "position": [index * 200, 0],
            "parallelization": {"blockSize": block_size, "size": size,
                                "split": math.ceil(size / block_size) if block_size else 1},
            model["uid_field"]: {"0": uid} if model["uid_field"] == "uids" else uid,
            "internalFolder": model["folder"],
            "inputs": inputs,
        }
        if model["internal_inputs"]:
            node["internalInputs"] = dict(INTERNAL_INPUTS)
        node["outputs"] = {key: _saved_output(model, rel) for key, rel in model["outputs"][node_type].items()}
        graph[name] = node
    header = {
        "pipelineVersion": "2.2",
        "releaseVersion": model["version"],
        "fileVersion": model["file_version"],
        "template": False,
        "nodesVersions": {t: model["node_versions"][t] for t in sorted({_type(n) for n in graph})},
    }
    if model["uid_field"] == "uid":  # GraphSerializer.serializeHeader sorts nodes by name
        graph = dict(sorted(graph.items()))
    return {"header": {key: header[key] for key in model["header"]}, "graph": graph}


def _type(name: str) -> str:
    return name.rsplit("_", 1)[0]


def _dependency_order(names: list[str], links: dict) -> list[str]:
    done: list[str] = []
    while len(done) < len(names):
        ready = [n for n in names if n not in done and {r.split(".")[0] for r in _links(links[n])} <= set(done)]
        if not ready:
            raise StandinError(f"the pipeline has a cycle or an unknown node among {names}")
        done.append(ready[0])
    return done


def _links(value):
    """Every "{Node.attr}" string inside an attribute value (strings, lists, groups)."""
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
        self.model = release_model(self.doc["header"].get("releaseVersion", ""))
        self.exec_mode = "NONE"  # as under meshroom_compute --node

    def node(self, name: str) -> dict:
        if name not in self.graph:
            raise StandinError(f'Node "{name}" not found in the graph')
        return self.graph[name]

    def uid(self, name: str) -> str:
        node = self.node(name)
        return node["uid"] if "uid" in node else node["uids"]["0"]

    def folder(self, name: str) -> Path:
        node = self.node(name)
        return Path(node["internalFolder"].format(cache=self.cache, nodeType=node["nodeType"],
                                                  uid0=self.uid(name), uid=self.uid(name)))

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

    def reads_files(self, value) -> bool:
        """True when the links of ``value`` end at another node's output (files), not at a plain value."""
        for ref in _links(value):
            owner, attr = ref.split(".", 1)
            node = self.node(owner)
            return attr in node["outputs"] or self.reads_files(node["inputs"][attr])
        return False

    def expand(self, name: str, template: str) -> str:
        """An output template with the node's variables ({cache}, {uid0}, {xValue} of its inputs...)."""
        node = self.node(name)
        names = {"cache": str(self.cache), "nodeType": node["nodeType"], "uid0": self.uid(name),
                 "uid": self.uid(name), "nodeCacheFolder": str(self.folder(name))}
        names.update({f"{key}Value": str(value) for key, value in node["inputs"].items()})
        return re.sub(r"\{(\w+)\}", lambda m: names.get(m.group(1), m.group(0)), template)

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
        init = next(name for name, node in self.graph.items() if node["nodeType"] == "CameraInit")
        return self.node(init)["inputs"]["viewpoints"]


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
    """StatusData.toDict of the project's release.

    ``returnCode`` appears once an AliceVision command has ended (CommandLineNode.processChunk sets it);
    ``execMode`` stays NONE under ``meshroom_compute --node`` (only a graph compute submits LOCAL).
    """
    now = datetime.datetime.now()
    started = started or now
    elapsed = (now - started).total_seconds() if status != "RUNNING" else 0.0
    node_type = project.node(name)["nodeType"]
    python_node = node_type == "Publish"
    values = {
        "status": status,
        "execMode": project.exec_mode,
        "nodeName": name,
        "nodeType": node_type,
        "packageName": "" if python_node else "AliceVision",
        "packageVersion": "" if python_node else "2.2.0",
        "graph": "",
        "commandLine": "" if python_node else f"aliceVision_{node_type[0].lower()}{node_type[1:]}",
        "env": {},
        "startDateTime": started.strftime(STATUS_DATE),
        "endDateTime": "" if status == "RUNNING" else now.strftime(STATUS_DATE),
        "elapsedTime": elapsed,
        "hostname": socket.gethostname(),
        "sessionUid": SESSION_UID,
        "mrNodeType": "NODE" if python_node else "COMMANDLINE",
        "submitterSessionUid": None,
        "_parent": None,
    }
    data = {key: values[key] for key in STATUS_FIELDS + project.model["status_extra"]}
    data["elapsedTimeStr"] = str(datetime.timedelta(seconds=elapsed))
    if not python_node and status in ("SUCCESS", "ERROR"):
        data["returnCode"] = 0 if status == "SUCCESS" else 1
    return data

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
        if not project.reads_files(value):
            digest.update(json.dumps(project.resolve(value), sort_keys=True).encode())
            continue
        resolved = project.resolve(value)
        for path in resolved if isinstance(resolved, list) else [resolved]:
            digest.update(_read_input(Path(path), name, attr))
    return digest.digest()


def _read_input(path: Path, name: str, attr: str) -> bytes:
    if path.is_file():
        return path.read_bytes()
    if "*" in path.name:  # a pattern such as Texturing's outputTextures
        files = sorted(p for p in path.parent.glob(path.name) if p.is_file())
    else:
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
    node = project.node(name)
    node_type, block_size = node["nodeType"], node["parallelization"]["blockSize"]
    inputs = node["inputs"]
    texture = inputs.get("outputTextureFileType") or inputs.get("colorMapping", {}).get("colorMappingFileType", "")
    views = project.views()
    if block_size:
        views = views[chunk * block_size:(chunk + 1) * block_size]
    scale = float(os.environ.get("MESHROOM_STANDIN_SIZE_SCALE", "1e-4"))
    model = json.loads(Path(__file__).with_name(SIZE_MODEL_FILE).read_text(encoding="utf-8"))[node_type]
    total = len(project.views())
    patterns = FILES[node_type]
    per_view = [pattern for pattern in patterns if "{view}" in pattern]
    files = []
    for pattern in patterns:  # a node's bytes are shared out among its files
        if pattern in per_view:
            for view in views:
                files.append((pattern.format(view=view["viewId"]), model.get("per_image", 0) // len(per_view)))
        else:
            nbytes = model.get("fixed", 0) + model.get("per_image", 0) * (len(views) if block_size else total)
            files.append((pattern.format(chunk=chunk, texture=texture), nbytes // len(patterns)))
    return [(fname, max(16, int(nbytes * scale))) for fname, nbytes in files]


def publish(project: Project, name: str, log) -> None:
    """Publish.processChunk: copy what each input file pattern matches into the ``output`` folder."""
    inputs = project.node(name)["inputs"]
    output = inputs.get("output", "")
    if not inputs.get("inputFiles"):
        log.write("Nothing to publish\n")
        return
    if not output:
        return
    found = {}
    for pattern in project.resolve(inputs["inputFiles"]):
        for match in sorted(glob.glob(pattern)):
            found[Path(match)] = Path(output) if Path(match).is_dir() else Path(output) / Path(match).name
    if not found:
        raise StandinError("Publish: input files listed, but nothing to publish")
    if not os.path.exists(output):
        try:
            os.mkdir(output)  # not makedirs, as Publish.py: a missing parent folder is an error
        except OSError as exc:
            raise StandinError(f"Publish: {exc}") from None
    for source, target in found.items():
        log.write(f"Publish file {source} into {target}\n")
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copyfile(source, target)
    log.write("Publish end\n")


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
                if project.node(name)["nodeType"] == "Publish":
                    publish(project, name, log)
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
    """``meshroom_compute --node``: a chunk RUNNING or SUBMITTED is only reported (the exit is commented out)."""
    chunks = [iteration] if iteration >= 0 else list(range(project.chunk_count(name)))
    if iteration >= project.chunk_count(name):
        raise StandinError(f"{name}: no chunk {iteration} (it has {project.chunk_count(name)})")
    if not (force_status or force_compute):
        for chunk in chunks:
            status = read_status(project.status_file(name, chunk))
            if status in ("RUNNING", "SUBMITTED"):
                print(f'{project.model["busy"]}: Node is already submitted with status "{status}". '
                      f'See file: "{project.status_file(name, chunk)}"', flush=True)
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
    return _order(project, [n for n in order if n in needed])


def _order(project: Project, names: list[str]) -> list[str]:
    """Producers first (a 2025.1 file lists nodes by name, not in graph order)."""
    done: list[str] = []
    while len(done) < len(names):
        done.append(next(n for n in names if n not in done and set(project.producers(n)) & set(names) <= set(done)))
    return done


def compute_graph(project: Project, target, force_status, force_compute) -> None:
    project.exec_mode = "LOCAL"  # Node.beginSequence submits every node LOCAL
    names = nodes_to_process(project, target)
    print(f"Nodes to execute:  {names}", flush=True)
    for name in names:
        compute_node(project, name, -1, force_status, force_compute)


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


def _pipeline_links(pipeline: str) -> dict | None:
    """The links of a custom pipeline (a template ``.mg``), or None for the built-in photogrammetry."""
    if not pipeline or pipeline.lower() == "photogrammetry":
        return None
    try:
        doc = json.loads(Path(pipeline).read_text())
    except (OSError, ValueError):
        raise StandinError(f'pipeline "{pipeline}" is neither a known pipeline nor a readable .mg file') from None
    return {name: node.get("inputs", {}) for name, node in doc.get("graph", doc).items()}


def _apply_overrides(doc: dict, overrides: str, params: list[str]) -> None:
    """--overrides FILE.json ({node: {attr: value}}) and --paramOverrides NODE.attr=value, as meshroom_batch."""
    wanted = []
    if overrides:
        for node, values in json.loads(Path(overrides).read_text()).items():
            wanted += [(node, attr, value) for attr, value in values.items()]
    for item in params:
        match = re.match(r"(\w+)\.(\w[\w.]*)=(.*)", item)
        if not match:
            raise StandinError(f"Invalid param override: {item}")
        wanted.append(match.groups())
    for node, attr, value in wanted:
        if node not in doc["graph"]:
            raise StandinError(f"No node named '{node}'")
        if attr not in doc["graph"][node]["inputs"]:
            raise StandinError(f"No attribute named '{attr}' on node '{node}'")
        doc["graph"][node]["inputs"][attr] = value


def _build_and_maybe_compute(inputs, output, cache, save, compute, target, force_status, force_compute, release,
                             pipeline="", overrides="", params=()):
    images = list_images(inputs)
    if not images:
        raise StandinError(f"No input images found in {inputs}")
    cache = Path(cache or Path.cwd() / "MeshroomCache")
    doc = build_graph(images, release, output, _pipeline_links(pipeline))
    _apply_overrides(doc, overrides, list(params))
    if save:
        Path(save).write_text(json.dumps(doc, indent=4))
        print(f'File successfully saved: "{save}"', flush=True)
        return
    if compute:
        project_file = cache / "project_standin.mg"
        cache.mkdir(parents=True, exist_ok=True)
        project_file.write_text(json.dumps(doc, indent=4))
        compute_graph(Project(project_file, cache), target, force_status, force_compute)


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
        inputs, args.output, args.cache, args.save, True, args.toNode, args.forceStatus, args.forceCompute, release,
        args.pipeline, args.overrides))


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
    inputs = [path for item in args.input + args.inputRecursive for path in _input_paths(item)]
    return _run(lambda: _build_and_maybe_compute(
        inputs, args.output, args.cache, args.save, args.compute == "yes", args.toNode,
        args.forceStatus, args.forceCompute, release, args.pipeline, args.overrides, args.paramOverrides))


def _input_paths(item: str) -> list[str]:
    """``PATH`` or, from 2023.3, ``NODEINSTANCE:PATH;PATH``."""
    head, sep, rest = item.partition(":")
    if sep and re.fullmatch(r"[A-Za-z]\w*_\d+", head):
        item = rest
    return item.split(";")


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
