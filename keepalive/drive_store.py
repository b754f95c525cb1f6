"""What this PC sees of the job's durable store, through Drive for desktop.

The runtime says in its heartbeat how many chunks it has finished; what counts for a multi-day job
is what is really on Drive. The store's manifest is its commit point (an entry is written only after
its archive was written and read back: ``colab_side/store.py``), so the chunks that the manifest lists,
as the PC's own Drive folder shows it, are uploaded for real. The manifest's own checks
(``colab_side.store.cleaned``) decide which entries count; a manifest cut mid-sync falls back to its twin.
A chunk whose archive was pruned (every consumer of its node finished) counts as durable too: its work
is kept in what consumed it. The manifest's ``published`` record names the verified result files, and
the job's first event on Drive tells when it first started.
"""

from __future__ import annotations

import json
from pathlib import Path

from colab_side.layout import job_layout
from colab_side.store import cleaned

MANIFESTS = ("manifest.json", "manifest.bak.json")


class DurableOnPC:
    """Reads the manifest (again only when Drive changed it) and the job's first event on Drive."""

    def __init__(self, drive_folder, job: str):
        self.job = job
        layout = job_layout(Path(drive_folder), job) if drive_folder else None
        self.paths = [layout.store / name for name in MANIFESTS] if layout else []
        self.events_path = layout.events if layout else None
        self._seen: tuple | None = None
        self._found: dict | None = None
        self._started: str | None = None

    def facts(self) -> dict:
        """What the view shows of the store: ``chunks_durable_on_pc`` (kept or pruned; None where no manifest can
        be read yet), ``result_files_on_pc`` (None until the result is published), ``job_started`` (UTC, the job's
        first event on Drive; None if unknown)."""
        found = self._manifest() or {}
        return {"chunks_durable_on_pc": found.get("chunks"), "result_files_on_pc": found.get("result_files"),
                "job_started": self.started()}

    def started(self) -> str | None:
        """The time of the job's first event on Drive (its first session's start), read once found."""
        if self._started is None and self.events_path is not None:
            try:
                with open(self.events_path, encoding="utf-8", errors="replace") as handle:
                    first = json.loads(handle.readline(4096))
            except (OSError, ValueError, RecursionError):
                return None
            stamp = first.get("time") if isinstance(first, dict) else None
            self._started = stamp if isinstance(stamp, str) else None
        return self._started

    def _manifest(self) -> dict | None:
        for path in self.paths:
            try:
                info = path.stat()
                key = (str(path), info.st_mtime_ns, info.st_size)
                if key == self._seen:
                    return self._found
                doc = cleaned(json.loads(path.read_bytes()), self.job, log=lambda _line: None)
            except (OSError, ValueError, RecursionError):
                continue
            if doc is not None:
                pruned = sum(max(0, entry["chunks"]) for entry in doc["pruned"].values()
                             if type(entry.get("chunks")) is int)
                published = doc.get("published")
                self._seen = key
                self._found = {"chunks": len(doc["chunks"]) + pruned,
                               "result_files": len(published) if published else None}
                return self._found
        return None
