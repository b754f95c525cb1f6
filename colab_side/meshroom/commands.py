"""Meshroom command lines: build and save the graph once, then compute it chunk by chunk.

The user's own pipeline and parameters go through the release's own options (``bin/meshroom_photogrammetry``
at v2019.2.0 and ``bin/meshroom_batch`` at v2021.1.0/v2023.3.0 of alicevision/Meshroom):

- ``--pipeline FILE.mg``: both; the graph needs exactly one CameraInit, and a Publish node since
  ``--output`` is always given.
- ``--overrides FILE.json`` (``{"Node_1": {"attribute": value}}``): both.
- ``--paramOverrides Node_1.attribute=value ...``: ``meshroom_batch`` only. 2019.2 has no such option,
  so there the parameters are merged into an overrides file.

Meshroom finds override nodes by prefix (``graph.findNode``) and fails with a traceback on a name it
does not know, so names are checked here first, exactly, against a graph saved without them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from colab_side.meshroom.graph import Graph
from colab_side.meshroom.versions import MeshroomVersion

_PARAM = re.compile(r"^(\w+)\.(\w[\w.]*)=(.*)$", re.S)  # meshroom_batch's own pattern, instance form


class OptionsError(ValueError):
    """A pipeline, parameter or overrides setting that cannot be used: one line saying which and why."""


def parse_param(text: str) -> tuple[str, str, str]:
    """``"DepthMap_1.downscale=4"`` → ``("DepthMap_1", "downscale", "4")``."""
    match = _PARAM.match(str(text))
    if not match:
        raise OptionsError(f"parameter {text!r} is not Node_1.attribute=value (for example DepthMap_1.downscale=4)")
    return match.group(1), match.group(2), match.group(3)


def param_value(text: str):
    """A parameter's text as the JSON value Meshroom reads from an overrides file (``4``, ``false``, ``"sift"``)."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return json.loads(text)
    except ValueError:
        return text


def _read_json(path, what: str):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OptionsError(f"{what} {path} does not exist") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise OptionsError(f"{what} {path} is not readable JSON ({exc})") from None


def read_overrides(path) -> dict[str, dict]:
    """An overrides file: ``{"Node_1": {"attribute": value, ...}, ...}``."""
    data = _read_json(path, "overrides file")
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise OptionsError(f"overrides file {path} must map node names to attributes: "
                           '{"DepthMap_1": {"downscale": 4}}')
    return data


def pipeline_node_types(path) -> list[str]:
    """The node types of a pipeline file: a saved project, or a template (``"template": true``, no uids)."""
    doc = _read_json(path, "pipeline")
    nodes = doc.get("graph") if isinstance(doc, dict) else None
    if not isinstance(nodes, dict) or not all(isinstance(n, dict) and n.get("nodeType") for n in nodes.values()):
        raise OptionsError(f"pipeline {path} is not a Meshroom graph (a 'graph' of nodes with a nodeType)")
    return [node["nodeType"] for node in nodes.values()]


def check_pipeline(types: list[str], path) -> None:
    """Meshroom's own requirements of a custom pipeline (with ``--output``): one CameraInit, a Publish."""
    if types.count("CameraInit") != 1:
        raise OptionsError(f"pipeline {path} has {types.count('CameraInit')} CameraInit nodes; "
                           "Meshroom needs exactly one")
    if "Publish" not in types:
        raise OptionsError(f"pipeline {path} has no Publish node; Meshroom needs one to publish the result "
                           "(link it to Texturing's outputMesh, outputMaterial and outputTextures)")


def unknown_names(graph: Graph, requested: dict[str, dict]) -> list[str]:
    """One sentence per override whose node or input attribute is not in ``graph`` (exact names)."""
    problems = []
    for node_name, attributes in requested.items():
        node = graph.nodes.get(node_name)
        if node is None:
            problems.append(f"the graph has no node {node_name} (nodes: {', '.join(sorted(graph.nodes))})")
            continue
        for attribute in attributes:
            value, found = node.inputs, True
            for part in attribute.split("."):
                found = isinstance(value, dict) and part in value
                value = value.get(part) if found else None
                if not found:
                    break
            if not found:
                problems.append(f"node {node_name} ({node.node_type}) has no input attribute {attribute} "
                                f"(its inputs: {', '.join(sorted(node.inputs))})")
    return problems


@dataclass(frozen=True)
class PipelineOptions:
    """The user's pipeline file, ``Node.attr=value`` parameters and overrides file, and what they request."""

    pipeline: Path | None = None
    params: tuple[str, ...] = ()
    overrides: Path | None = None
    requested: dict = field(default_factory=dict)  # node → attribute → value: the file's, parameters over them

    @classmethod
    def read(cls, pipeline=None, params=(), overrides=None) -> PipelineOptions:
        """Check everything that can be checked without Meshroom; OptionsError otherwise."""
        pipeline = Path(pipeline) if pipeline else None
        if pipeline:
            check_pipeline(pipeline_node_types(pipeline), pipeline)
        overrides = Path(overrides) if overrides else None
        requested = {node: dict(attrs) for node, attrs in (read_overrides(overrides) if overrides else {}).items()}
        for text in params or ():
            node, attribute, value = parse_param(text)
            requested.setdefault(node, {})[attribute] = param_value(value)
        return cls(pipeline, tuple(params or ()), overrides, requested)

    def pipeline_only(self) -> PipelineOptions:
        return PipelineOptions(pipeline=self.pipeline)


def save_command(version: MeshroomVersion, exe_dir, images, project, cache, output,
                 options: PipelineOptions = PipelineOptions(), scratch=None) -> list[str]:
    """Configure the graph for ``images`` and write it to ``project`` without computing.

    Early ``meshroom_photogrammetry`` requires ``--output`` even with ``--save``, so it is always given.
    On 2019.2 the parameters are written, with the overrides, to ``<scratch>/overrides.json``.
    """
    exe = str(Path(exe_dir) / version.batch_exe)
    command = [exe, "--input", str(images), "--output", str(output), "--cache", str(cache), "--save", str(project)]
    if options.pipeline:
        command += ["--pipeline", str(options.pipeline)]
    if version.style == "photogrammetry":
        if options.params:
            merged = Path(scratch) / "overrides.json"
            merged.write_text(json.dumps(options.requested, indent=1), encoding="utf-8")
            return command + ["--overrides", str(merged)]
        return command + (["--overrides", str(options.overrides)] if options.overrides else [])
    if options.overrides:
        command += ["--overrides", str(options.overrides)]
    if options.params:
        command += ["--paramOverrides", *options.params]
    return command + ["--compute", "no"]


def compute_command(version: MeshroomVersion, exe_dir, project, cache, node: str, iteration: int | None = None) -> list[str]:
    """Compute one node (or one chunk of it) of a saved project; interrupted statuses are forced."""
    command = [str(Path(exe_dir) / version.compute_exe), str(project), "--node", node]
    if iteration is not None:
        command += ["--iteration", str(iteration)]
    return command + ["--cache", str(cache), "--forceStatus"]
