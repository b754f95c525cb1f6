"""What this PC sees of the job's durable store, through Drive for desktop.

The runtime says in its heartbeat how many chunks it has finished; what counts for a multi-day job
is what is really on Drive. The store's manifest is its commit point (an entry is written only after
its archive was written and read back: ``colab_side/store.py``), so the chunks that the manifest lists,
as the PC's own Drive folder shows it, are uploaded for real. The manifest's own checks
(``colab_side.store.cleaned``) decide which entries count; a manifest cut mid-sync falls back to its twin.
"""

from __future__ import annotations

import json
from pathlib import Path

from colab_side.layout import job_layout
from colab_side.store import cleaned

MANIFESTS = ("manifest.json", "manifest.bak.json")


class DurableOnPC:
    """Counts the manifest's chunks; the file is read again only when Drive changed it."""

    def __init__(self, drive_folder, job: str):
        self.job = job
        store = job_layout(Path(drive_folder), job).store if drive_folder else None
        self.paths = [store / name for name in MANIFESTS] if store else []
        self._seen: tuple | None = None
        self._count: int | None = None

    def count(self) -> int | None:
        """Chunks durable on Drive as this PC sees them; None where no manifest can be read (yet)."""
        for path in self.paths:
            try:
                info = path.stat()
                key = (str(path), info.st_mtime_ns, info.st_size)
                if key == self._seen:
                    return self._count
                doc = cleaned(json.loads(path.read_bytes()), self.job, log=lambda _line: None)
            except (OSError, ValueError, RecursionError):
                continue
            if doc is not None:
                self._seen, self._count = key, len(doc["chunks"])
                return self._count
        return None
