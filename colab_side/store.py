"""The durable store on Drive: one archive per finished chunk, and a manifest written last.

Meshroom's cache lives on the runtime's fast local disk and is lost at every disconnect. After a
chunk reaches SUCCESS, the files it added are packed into one tar in ``store/`` on Drive; only
when that archive is verified is its manifest entry (size, SHA-256) written, atomically. The
manifest is the commit point: an archive without an entry is ignored and overwritten.

Layout: ``store/<Node>/<chunk // 100>/<chunk>.tar`` keeps every Drive folder small whatever the
image count, plus ``manifest.json`` and its twin ``manifest.bak.json`` (a manifest cut by a
fault falls back to the twin).
"""

from __future__ import annotations

import json
import tarfile
import tempfile
from pathlib import Path

from colab_side.drive import Drive, sha256_file
from colab_side.meshroom import cache as meshroom_cache
from colab_side.meshroom.graph import Graph, Node

FOLDER_SPAN = 100


def chunk_key(node: str, chunk: int) -> str:
    return f"{node}:{chunk}"


def empty_manifest(job: str) -> dict:
    return {"version": 1, "job": job, "chunks": {}, "pruned": {}, "errors": {}}


def _valid(doc) -> bool:
    return isinstance(doc, dict) and all(isinstance(doc.get(k), dict) for k in ("chunks", "pruned", "errors"))


class Store:
    def __init__(self, folder, drive: Drive, job: str, log=print):
        self.folder = Path(folder)
        self.drive = drive
        self.job = job
        self.log = log
        self.manifest = self._load()

    # --- manifest -------------------------------------------------------------------------

    @property
    def _main(self) -> Path:
        return self.folder / "manifest.json"

    @property
    def _twin(self) -> Path:
        return self.folder / "manifest.bak.json"

    def _load(self) -> dict:
        for path in (self._main, self._twin):
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                continue
            except (OSError, ValueError):
                self.log(f"{path.name} is unreadable (cut mid-write?); trying its twin")
                continue
            if _valid(doc):
                return doc
            self.log(f"{path.name} is not a store manifest; trying its twin")
        return empty_manifest(self.job)

    def _save(self) -> None:
        self.drive.write_json(self._main, self.manifest)
        self.drive.write_json(self._twin, self.manifest)

    def has(self, node: str, chunk: int) -> bool:
        return chunk_key(node, chunk) in self.manifest["chunks"] or node in self.manifest["pruned"]

    def node_durable(self, node: Node) -> bool:
        return all(self.has(node.name, c) for c in range(node.chunk_count))

    def durable_nodes(self, graph: Graph) -> set[str]:
        return {name for name, node in graph.nodes.items() if self.node_durable(node)}

    @property
    def durable_chunks(self) -> int:
        return len(self.manifest["chunks"])

    @property
    def pruned_bytes(self) -> int:
        return sum(entry.get("bytes", 0) for entry in self.manifest["pruned"].values())

    @property
    def stored_bytes(self) -> int:
        return sum(entry["size"] for entry in self.manifest["chunks"].values())

    # --- errors a node had, per session --------------------------------------------------------

    def record_error(self, node: str, session: str) -> int:
        """Remember that ``node`` ended in ERROR in ``session``; return in how many sessions it did."""
        sessions = self.manifest["errors"].setdefault(node, [])
        if session not in sessions:
            sessions.append(session)
        self._save()
        return len(sessions)

    # --- archiving --------------------------------------------------------------------------

    def archive_path(self, node: str, chunk: int) -> Path:
        return self.folder / node / str(chunk // FOLDER_SPAN) / f"{chunk}.tar"

    def add_chunk(self, node: Node, chunk: int, cache, files: list[str], session: str) -> dict:
        """Pack ``files`` (relative to the node's folder) into the chunk's archive, then commit it."""
        folder = node.internal_folder(cache)
        prefix = f"{node.node_type}/{node.uid0}"
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / "chunk.tar"
            with tarfile.open(local, "w") as archive:
                for rel in sorted(files):
                    archive.add(folder / rel, arcname=f"{prefix}/{rel}", recursive=False)
            target = self.archive_path(node.name, chunk)
            digest = self.drive.copy_file(local, target)
            entry = {
                "archive": target.relative_to(self.folder).as_posix(),
                "size": local.stat().st_size,
                "sha256": digest,
                "files": len(files),
                "session": session,
            }
        self.manifest["chunks"][chunk_key(node.name, chunk)] = entry
        self._save()
        return entry

    def prune(self, node: Node) -> int:
        """Delete a node's archives (its consumers are all finished); return bytes freed."""
        freed = 0
        for chunk in range(node.chunk_count):
            entry = self.manifest["chunks"].get(chunk_key(node.name, chunk))
            if entry:
                freed += entry["size"]
        self.manifest["pruned"][node.name] = {"bytes": freed, "chunks": node.chunk_count}
        for chunk in range(node.chunk_count):
            self.manifest["chunks"].pop(chunk_key(node.name, chunk), None)
        self._save()  # first say it is pruned, then delete: a kill in between leaves only orphans
        for chunk in range(node.chunk_count):
            self.drive.remove(self.archive_path(node.name, chunk))
        return freed

    # --- restoring --------------------------------------------------------------------------

    def restore(self, graph: Graph, cache) -> tuple[int, list[str]]:
        """Rebuild a fresh local cache from the store; return (chunks restored, chunks dropped).

        A missing or corrupt archive drops its manifest entry: that chunk is computed again.
        Pruned nodes get SUCCESS status files only, which is all Meshroom needs of them.
        """
        restored, dropped = 0, []
        for name, node in graph.nodes.items():
            if name in self.manifest["pruned"]:
                for chunk in range(node.chunk_count):
                    meshroom_cache.write_success_status(node, chunk, cache)
                continue
            for chunk in range(node.chunk_count):
                key = chunk_key(name, chunk)
                entry = self.manifest["chunks"].get(key)
                if entry is None:
                    continue
                if self._extract(node, entry, Path(cache)):
                    restored += 1
                else:
                    dropped.append(key)
                    del self.manifest["chunks"][key]
        if dropped:
            self._save()
        return restored, dropped

    def _extract(self, node: Node, entry: dict, cache: Path) -> bool:
        path = self.folder / entry["archive"]
        try:
            if path.stat().st_size != entry["size"] or sha256_file(path) != entry["sha256"]:
                self.log(f"archive {entry['archive']} is damaged; its chunk will be computed again")
                return False
            prefix = f"{node.node_type}/{node.uid0}/"
            with tarfile.open(path) as archive:
                members = archive.getmembers()
                if any(not m.name.startswith(prefix) or ".." in m.name or not m.isfile() for m in members):
                    self.log(f"archive {entry['archive']} holds files of another node; ignored")
                    return False
                if hasattr(tarfile, "data_filter"):
                    archive.extractall(cache, members=members, filter="data")
                else:
                    archive.extractall(cache, members=members)
            return True
        except (OSError, tarfile.TarError) as exc:
            self.log(f"archive {entry['archive']} cannot be read ({exc}); its chunk will be computed again")
            return False

    def mark_published(self, files: dict[str, str]) -> None:
        """Record the verified result (relative path → SHA-256): the job is done."""
        self.manifest["published"] = files
        self._save()

    def remove_all(self) -> None:
        """Remove every archive (only after the result is published and verified)."""
        for entry in list(self.manifest["chunks"].values()):
            self.drive.remove(self.folder / entry["archive"])
        self.manifest["chunks"] = {}
        self._save()
