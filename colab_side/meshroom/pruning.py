"""Why pruning (``colab_side.pruning``) is safe for Meshroom.

Meshroom computes a graph by walking back from the target and stopping each branch at a node
whose status is SUCCESS (``Graph.dfsToProcess``): nodes upstream of a finished node are never
visited. So once every consumer of a node has finished, that node's output files are not read
again; keeping its SUCCESS status files is enough (``MeshroomEngine.mark_done``). Texturing's only
consumer is Publish, which copies its files outside the cache: it is a result node, never pruned
before the result is verified on Drive.
"""

from colab_side.pruning import prunable  # noqa: F401  (Meshroom's graphs are pruned by the common rule)
