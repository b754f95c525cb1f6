"""Read a Meshroom project (``.mg``) and answer: which nodes, which chunks, who needs whom, what is published.

A ``.mg`` is JSON: ``header`` and ``graph``, a map from node name to ``{nodeType, parallelization,
uids | uid, internalFolder, inputs, outputs}`` (``Node.toDict``; docs/meshroom.md has each release's
fields: ``uids: {"0": ...}`` and ``{cache}/{nodeType}/{uid0}/`` up to 2023.3, ``uid`` and
``{cache}/{nodeType}/{uid}`` from 2025.1). An input that is a link is a string ``"{Node_1.attr}"``
(lists may hold links). A link may name another node's *input*, itself a link: it is followed until
it reaches the node that owns an output, because that node is the one whose files are read.

Chunks come from each node's ``parallelization`` as saved, never from a table of block sizes.
A node without output attributes (``Publish``: it copies files to a folder outside the cache) is
seen through: the outputs it links to are what the job publishes, and their nodes are final.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path


class GraphError(ValueError):
    """The project file cannot be used (missing, half-written, not a Meshroom graph)."""


DEFAULT_FOLDER = "{cache}/{nodeType}/{uid}"


@dataclass
class Node:
    name: str
    node_type: str
    uid0: str  # the node's uid: ``uids["0"]`` up to 2023.3, ``uid`` from 2025.1
    block_size: int
    size: int
    split: int
    inputs: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    folder: str = DEFAULT_FOLDER  # ``internalFolder`` as saved

    @property
    def chunk_count(self) -> int:
        if not self.block_size:
            return 1
        if self.split > 0:
            return self.split
        return max(1, math.ceil(self.size / self.block_size))

    def internal_folder(self, cache) -> Path:
        return Path(self._expand(self.folder, cache, {}))

    def output_path(self, attr: str, cache) -> str:
        """The path (or glob pattern, e.g. ``texture_*.png``) an output attribute names in ``cache``."""
        node_folder = str(self.internal_folder(cache))
        values = {f"{key}Value": str(value) for key, value in self.inputs.items() if not isinstance(value, (dict, list))}
        return self._expand(self.outputs[attr], cache, {"nodeCacheFolder": node_folder, **values})

    def _expand(self, template: str, cache, extra: dict) -> str:
        """Meshroom's command variables ({cache}, {nodeType}, {uid0}/{uid}, {xValue}); others stay as they are."""
        names = {"cache": str(cache), "nodeType": self.node_type, "uid0": self.uid0, "uid": self.uid0, **extra}
        return re.sub(r"\{(\w+)\}", lambda m: names.get(m.group(1), m.group(0)), str(template)).rstrip("/")

    @property
    def archive_prefix(self) -> str:
        """The folder the store's archives name their members under: ``{nodeType}/{uid}``."""
        return f"{self.node_type}/{self.uid0}"

    def status_file(self, cache, chunk: int = 0) -> Path:
        """``status`` for nodes without blocks, ``N.status`` per chunk otherwise (even with one chunk)."""
        name = f"{chunk}.status" if self.block_size else "status"
        return self.internal_folder(cache) / name


def links(value):
    """Yield ``(node, attribute)`` for every link inside an attribute value."""
    if isinstance(value, str):
        if len(value) > 2 and value[0] == "{" and value[-1] == "}" and "." in value:
            node, attr = value[1:-1].split(".", 1)
            yield node, attr
    elif isinstance(value, list):
        for item in value:
            yield from links(item)


class Graph:
    def __init__(self, nodes: dict[str, Node], header: dict):
        self.nodes = nodes
        self.header = header
        self._producers = {name: self._resolve_producers(node) for name, node in nodes.items()}

    def _resolve_producers(self, node: Node) -> set[str]:
        found: set[str] = set()
        seen: set[tuple[str, str]] = set()

        def follow(value):
            for owner, attr in links(value):
                if (owner, attr) in seen:
                    continue
                seen.add((owner, attr))
                if owner not in self.nodes:
                    raise GraphError(f"node {node.name} links to unknown node {owner}")
                target = self.nodes[owner]
                if attr in target.inputs:
                    follow(target.inputs[attr])
                else:  # an output; 2025.1 does not save outputs whose value is only known once computed
                    found.add(owner)

        for value in node.inputs.values():
            follow(value)
        return found

    def dependencies(self, name: str) -> set[str]:
        """Nodes whose output files ``name`` reads."""
        return set(self._producers[name])

    def consumers(self, name: str) -> set[str]:
        """Nodes that read ``name``'s output files."""
        return {other for other, producers in self._producers.items() if name in producers}

    def final_nodes(self) -> list[str]:
        return [name for name in self.nodes if not self.consumers(name)]

    def published_outputs(self) -> list[tuple[str, str]]:
        """``(node, output attribute)`` pairs whose files are the job's result.

        A final node without outputs (Publish) is seen through: the outputs its inputs link to, links
        followed through other nodes' inputs. A final node with outputs publishes all of them.
        """
        found: list[tuple[str, str]] = []
        for name in self.final_nodes():
            node = self.nodes[name]
            if node.outputs:
                found += [(name, attr) for attr in node.outputs]
                continue
            for value in node.inputs.values():
                found += [pair for pair in self._output_links(value) if pair not in found]
        return found

    def _output_links(self, value) -> list[tuple[str, str]]:
        found = []
        for owner, attr in links(value):
            target = self.nodes[owner]
            found += self._output_links(target.inputs[attr]) if attr in target.inputs else [(owner, attr)]
        return found

    def publish_nodes(self) -> set[str]:
        """Nodes whose files are published: final for pruning until the result is verified on Drive."""
        return {name for name, _attr in self.published_outputs()}

    def order(self) -> list[str]:
        """Dependencies first; file order breaks ties."""
        done: list[str] = []
        pending = list(self.nodes)
        while pending:
            ready = [n for n in pending if self._producers[n] <= set(done)]
            if not ready:
                raise GraphError(f"the graph has a cycle among {', '.join(pending)}")
            done.append(ready[0])
            pending.remove(ready[0])
        return done

    @property
    def chunks_total(self) -> int:
        return sum(node.chunk_count for node in self.nodes.values())


def _uid0(name: str, raw: dict) -> str:
    uid = raw.get("uid") or (raw.get("uids") or {}).get("0")
    if uid:
        return str(uid)
    folder = str(raw.get("internalFolder", "")).rstrip("/").split("/")
    if folder and folder[-1] and "{" not in folder[-1]:
        return folder[-1]
    raise GraphError(f"node {name} has no uid")


MAX_COUNT = 1_000_000  # sizes, block sizes and chunk counts above this are not a real graph
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def _safe_name(value, what: str, node, source: str) -> str:
    """A name that becomes a folder or file name: letters, digits, ``_ . -``, never ``..``."""
    if not isinstance(value, str) or not _SAFE_NAME.fullmatch(value) or ".." in value:
        raise GraphError(f"{source}: node {str(node)[:60]!r} has a {what} that cannot be a folder name: {str(value)[:60]!r}")
    return value


def _count(value, what: str, node: str, source: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise GraphError(f"{source}: node {node} has a {what} that is not a whole number up to {MAX_COUNT}: {str(value)[:40]}")
    return value


def _mapping(value, what: str, node: str, source: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise GraphError(f"{source}: node {node} has {what} that are not an object")
    return value


def _climbs(value) -> bool:
    """True for a path template with a ``..`` segment (it would lead out of the cache)."""
    return isinstance(value, str) and ".." in re.split(r"[\\/]", value)


def _folder(raw: dict) -> str:
    """The saved ``internalFolder`` template; a concrete path (no ``{cache}``) cannot follow the cache."""
    folder = str(raw.get("internalFolder") or "")
    return folder if "{cache}" in folder else DEFAULT_FOLDER


def parse(text: str, source: str = "project") -> Graph:
    try:
        doc = json.loads(text)
    except ValueError:
        raise GraphError(f"{source} is not valid JSON (half-written?): delete it to save the graph again") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("graph"), dict) or not doc["graph"]:
        raise GraphError(f"{source} is not a Meshroom graph (no 'graph' section)")
    nodes = {}
    for name, raw in doc["graph"].items():
        if not isinstance(raw, dict) or not raw.get("nodeType"):
            raise GraphError(f"{source}: node {name} has no nodeType")
        par = raw.get("parallelization") or {}
        if not isinstance(par, dict):
            raise GraphError(f"{source}: node {name} has a parallelization that is not an object")
        nodes[name] = Node(
            name=_safe_name(name, "name", name, source),
            node_type=_safe_name(raw["nodeType"], "nodeType", name, source),
            uid0=_safe_name(_uid0(name, raw), "uid", name, source),
            block_size=_count(par.get("blockSize"), "blockSize", name, source),
            size=_count(par.get("size"), "size", name, source),
            split=_count(par.get("split"), "split", name, source),
            inputs=_mapping(raw.get("inputs"), "inputs", name, source),
            outputs=_mapping(raw.get("outputs"), "outputs", name, source),
            folder=_folder(raw),
        )
        if nodes[name].chunk_count > MAX_COUNT or _climbs(nodes[name].folder) or any(
                _climbs(value) for value in nodes[name].outputs.values()):
            raise GraphError(f"{source}: node {name} has too many chunks or a path that leads out of its folder")
        if nodes[name].block_size and "split" in par and nodes[name].split == 0:
            raise GraphError(f"{source}: node {name} was saved without its chunks (split 0), as Meshroom 2021.1 "
                             "saves without --cache; its uids are stale too")
    graph = Graph(nodes, doc.get("header") or {})
    graph.order()  # a cycle is an error now, not later
    return graph


def load(path) -> Graph:
    """Read a ``.mg`` file; GraphError with one line on anything unusable."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GraphError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GraphError(f"{path} cannot be read: {exc}") from None
    return parse(text, str(path))
