"""Everything the notebook knows of Meshroom: versions, the graph, the cache, pruning."""
