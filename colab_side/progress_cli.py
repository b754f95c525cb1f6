"""``python -m colab_side progress``: how far a job (or any Meshroom cache) is, at a glance."""

from __future__ import annotations

import json
from pathlib import Path

from colab_side.drive import Drive
from colab_side.meshroom.graph import load as load_graph
from colab_side.meshroom.progress import cache_progress, summary
from colab_side.store import Store


def job_progress(job_dir) -> dict:
    """From the job folder's ``project.mg`` and store manifest (not the heartbeat)."""
    job_dir = Path(job_dir)
    graph = load_graph(job_dir / "project.mg")
    store = Store(job_dir / "store", Drive(job_dir, retries=2, backoff=0.5), job_dir.name, log=lambda _line: None)
    result = summary(graph, lambda node, chunk: store.has(node.name, chunk))
    result["pruned_bytes"] = store.pruned_bytes
    result["stored_bytes"] = store.stored_bytes
    result["published"] = bool(store.manifest.get("published"))
    return result


def plain_cache_progress(graph_file, cache) -> dict:
    result = cache_progress(load_graph(graph_file), cache)
    result["pruned_bytes"] = 0
    result["stored_bytes"] = None  # a plain cache has no store
    return result


def render(result: dict) -> str:
    current = result["current_node"] or "none (all finished)"
    stored = "" if result["stored_bytes"] is None else f"in the store {result['stored_bytes'] / 2**20:.1f} MiB, "
    return (f"nodes {result['nodes_done']}/{result['nodes_total']}, "
            f"chunks {result['chunks_done']}/{result['chunks_total']}, "
            f"current node {current}, {stored}freed by pruning {result['pruned_bytes'] / 2**20:.1f} MiB")


def main(args) -> int:
    result = plain_cache_progress(args.graph, args.cache) if args.graph else job_progress(args.job_dir)
    print(json.dumps(result, sort_keys=True) if args.json else render(result))
    return 0
