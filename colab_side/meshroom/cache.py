"""Meshroom's cache folder: status files, interrupted chunks, and what a chunk wrote.

Meshroom writes each status file to ``<name>.writing.<uuid4>`` and renames it over the real name.
A process killed in between leaves that temp file behind: garbage, ignored everywhere here.
"""

from __future__ import annotations

import datetime
import glob
import json
import os
import socket
import uuid
from pathlib import Path

from colab_side.meshroom.graph import Graph, Node

DONE = "SUCCESS"
ERROR = "ERROR"
INTERRUPTED = ("RUNNING", "SUBMITTED", "STOPPED", "KILLED")
META_FILES = ("status", "log", "statistics")
_DATE = "%Y-%m-%d %H:%M:%S.%f"


def is_garbage(path) -> bool:
    return ".writing." in Path(path).name


def is_meta(name: str) -> bool:
    """True for ``status``/``log``/``statistics`` and their per-chunk ``N.status`` forms."""
    head, _, tail = name.partition(".")
    return name in META_FILES or (head.isdigit() and tail in META_FILES)


def read_status(path) -> str | None:
    """The ``status`` field of a status file, or None if missing, half-written or not a status."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    value = data.get("status") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def chunk_statuses(node: Node, cache) -> list[str]:
    return [read_status(node.status_file(cache, c)) or "NONE" for c in range(node.chunk_count)]


def node_done(node: Node, cache) -> bool:
    return all(status == DONE for status in chunk_statuses(node, cache))


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f"{path.name}.writing.{uuid.uuid4()}")
    temp.write_text(json.dumps(data, indent=4), encoding="utf-8")
    os.replace(temp, path)


def reset_interrupted(node: Node, cache) -> list[Path]:
    """Rewrite chunks left RUNNING/SUBMITTED/STOPPED/KILLED by a dead session as NONE.

    ``--forceStatus`` alone did not unblock SUBMITTED on Colab (meshroom issue #1847), so the
    runner resets them itself. ERROR is kept: counting errors is the runner's business.
    """
    reset = []
    for chunk in range(node.chunk_count):
        path = node.status_file(cache, chunk)
        if read_status(path) in INTERRUPTED:
            data = json.loads(path.read_text(encoding="utf-8"))
            data["status"] = "NONE"
            _write_json(path, data)
            reset.append(path)
    return reset


def write_success_status(node: Node, chunk: int, cache) -> Path:
    """A status file as Meshroom 2019.2 writes it, saying SUCCESS (for restored or pruned chunks)."""
    now = datetime.datetime.now().strftime(_DATE)
    path = node.status_file(cache, chunk)
    _write_json(path, {
        "status": DONE, "execMode": "LOCAL", "nodeName": node.name, "nodeType": node.node_type,
        "packageName": "AliceVision", "packageVersion": "", "graph": "", "commandLine": "",
        "env": {}, "startDateTime": now, "endDateTime": now, "elapsedTime": 0.0,
        "elapsedTimeStr": "0:00:00", "hostname": socket.gethostname(), "sessionUid": "colab_side-restore",
    })
    return path


def snapshot(folder) -> dict[str, tuple[int, int]]:
    """relative path → (size, mtime_ns) of every file below ``folder``, garbage excluded."""
    folder = Path(folder)
    found = {}
    for root, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(root) / name
            if is_garbage(path):
                continue
            try:
                stat = path.stat()
            except OSError:
                continue
            found[path.relative_to(folder).as_posix()] = (stat.st_size, stat.st_mtime_ns)
    return found


def publish_files(graph: Graph, cache) -> dict[str, Path]:
    """result name → file in ``cache``: what the graph's Publish node copies to its output folder.

    As ``Publish.processChunk``: each published output is a glob pattern; a file lands under its own
    name, a folder's files under their paths inside it (status, log and statistics excluded).
    """
    found: dict[str, Path] = {}
    for name, attr in graph.published_outputs():
        if attr not in graph.nodes[name].outputs:
            continue  # a dynamic output (2025.1 does not save its value): no path to look at
        for match in sorted(glob.glob(graph.nodes[name].output_path(attr, cache))):
            path = Path(match)
            if path.is_file() and not is_garbage(path):
                found[path.name] = path
            elif path.is_dir():
                found.update({rel: path / rel for rel in sorted(snapshot(path)) if not is_meta(Path(rel).name)})
    return found
