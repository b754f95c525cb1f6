"""How far a plain Meshroom cache is, from its status files alone."""

from __future__ import annotations

from colab_side.meshroom import cache as meshroom_cache
from colab_side.meshroom.graph import Graph


def summary(graph: Graph, chunk_done) -> dict:
    """Progress counts given ``chunk_done(node, chunk) -> bool``; shared by every progress view."""
    nodes_done = chunks_done = 0
    current = None
    for name in graph.order():
        node = graph.nodes[name]
        done = [chunk_done(node, c) for c in range(node.chunk_count)]
        chunks_done += sum(done)
        if all(done):
            nodes_done += 1
        elif current is None:
            current = name
    return {
        "nodes_total": len(graph.nodes),
        "nodes_done": nodes_done,
        "chunks_total": graph.chunks_total,
        "chunks_done": chunks_done,
        "current_node": current,
    }


def cache_progress(graph: Graph, cache) -> dict:
    return summary(graph, lambda node, c: meshroom_cache.read_status(node.status_file(cache, c)) == meshroom_cache.DONE)
