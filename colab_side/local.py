"""The runtime's local disk: only the steps that the work still to come reads.

A session starts with an empty work folder and brings a step's archives from the store only when a
step about to run reads it (or to publish it): nothing is restored that the session will not read.
After each step, ``policy.local_drops`` says which steps' files go: files no step still to compute
reads, files the store holds whole (restored when next read), and files cheap to compute again
(computed again just before their next reader). The engine's own record of a step whose files went
goes with them: a step computed again must not look finished to the program (``meshroom_compute
--node`` reads no other node's status, so nothing else needs it).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from colab_side.engine import Engine, Work
from colab_side.store import Store


class LocalCache:
    def __init__(self, folder: Path, graph: Work, store: Store, engine: Engine):
        self.folder, self.graph, self.store, self.engine = Path(folder), graph, store, engine
        self.present: set[str] = set()  # steps whose files are in the folder (restored or computed here)

    def mark_finished(self, names) -> None:
        """Pruned steps: the engine sees them finished (their files are never read again)."""
        for name in names:
            node = self.graph.nodes[name]
            for chunk in range(node.chunk_count):
                self.engine.mark_done(node, chunk, self.folder)

    def bring(self, names: set[str]) -> tuple[int, list[str], list[str]]:
        """Restore the steps of ``names`` that are not here; (chunks restored, chunks dropped as damaged,
        pruned steps that must be computed again)."""
        missing = {name for name in names if name not in self.present}
        result = self.store.restore(self.graph, self.folder, missing) if missing else (0, [], [])
        self.present |= missing
        return result

    def computed(self, name: str) -> None:
        self.present.add(name)

    def drop(self, name: str) -> int:
        """Delete a step's folder; return the bytes freed."""
        folder = self.graph.nodes[name].internal_folder(self.folder)
        freed = sum(size for size, _mtime in self.engine.snapshot(folder).values())
        shutil.rmtree(folder, ignore_errors=True)
        self.present.discard(name)
        return freed
