"""Which finished nodes' files may leave the Drive store.

Meshroom computes a graph by walking back from the target and stopping each branch at a node
whose status is SUCCESS (``Graph.dfsToProcess``): nodes upstream of a finished node are never
visited. So once every consumer of a node has finished, that node's output files are not read
again; keeping its SUCCESS status files is enough. This is what keeps a 15 GB Drive from filling.

The nodes whose files are the result are the exception: Texturing's only consumer is Publish,
which copies its files outside the cache, so "every consumer finished" says nothing about
whether the result is safe. They are final: never pruned before the result is verified on Drive.
"""

from __future__ import annotations

from colab_side.meshroom.graph import Graph


def prunable(graph: Graph, finished: set[str], pruned: set[str]) -> list[str]:
    """Nodes whose every consumer has finished, not pruned yet and not published, in graph order.

    The node itself need not be whole in the store: archives a Drive budget dropped are not read again either.
    """
    keep = graph.publish_nodes()
    result = []
    for name in graph.order():
        consumers = graph.consumers(name)
        if name not in pruned and name not in keep and consumers and consumers <= finished:
            result.append(name)
    return result
