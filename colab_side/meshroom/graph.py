"""Read a Meshroom project (``.mg``) and answer: which nodes, which chunks, who needs whom.

A ``.mg`` is JSON: ``header`` and ``graph``, a map from node name to ``{nodeType, parallelization,
uids, internalFolder, inputs, outputs}``. An input that is a link is a string ``"{Node_1.attr}"``
(lists may hold links). A link may name another node's *input*, itself a link: it is followed until
it reaches the node that owns an output, because that node is the one whose files are read.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path


class GraphError(ValueError):
    """The project file cannot be used (missing, half-written, not a Meshroom graph)."""


@dataclass
class Node:
    name: str
    node_type: str
    uid0: str
    block_size: int
    size: int
    split: int
    inputs: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)

    @property
    def chunk_count(self) -> int:
        if not self.block_size:
            return 1
        if self.split > 0:
            return self.split
        return max(1, math.ceil(self.size / self.block_size))

    def internal_folder(self, cache) -> Path:
        return Path(cache) / self.node_type / self.uid0

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
                if attr in target.outputs:
                    found.add(owner)
                elif attr in target.inputs:
                    follow(target.inputs[attr])

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
    uid = (raw.get("uids") or {}).get("0")
    if uid:
        return str(uid)
    folder = str(raw.get("internalFolder", "")).rstrip("/").split("/")
    if folder and folder[-1] and "{" not in folder[-1]:
        return folder[-1]
    raise GraphError(f"node {name} has no uid")


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
        nodes[name] = Node(
            name=name,
            node_type=raw["nodeType"],
            uid0=_uid0(name, raw),
            block_size=int(par.get("blockSize") or 0),
            size=int(par.get("size") or 0),
            split=int(par.get("split") or 0),
            inputs=raw.get("inputs") or {},
            outputs=raw.get("outputs") or {},
        )
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
