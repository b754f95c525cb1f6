"""Which finished steps' files may leave the Drive store (any engine).

A step reads only the files of the steps it depends on, and a finished step is never computed
again while it stays finished: so once every consumer of a step has finished, that step's files
are not read again (the engine's ``mark_done`` leaves what its program needs to skip it; for
Meshroom see ``colab_side/meshroom/pruning.py``). This is what keeps a 15 GB Drive from filling.

The steps whose files are the result are the exception: their consumer may copy them outside the
work folder (Meshroom's Publish), so "every consumer finished" says nothing about whether the
result is safe. They are final: never pruned before the result is verified on Drive.
"""

from __future__ import annotations

from colab_side.engine import Work


def prunable(graph: Work, finished: set[str], pruned: set[str]) -> list[str]:
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
