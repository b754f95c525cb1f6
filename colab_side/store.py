"""The durable store on Drive: one archive per finished chunk, and a manifest written last.

The engine's work folder (Meshroom's cache) lives on the runtime's fast local disk and is lost at
every disconnect. After a chunk has finished, the files it added are streamed into one tar in ``store/`` on Drive (hashed
while written, read back); only then is its manifest entry (size, SHA-256) written. The manifest is
the commit point: an archive without an entry is ignored.

Layout: ``store/<Node>/<chunk // 100>/<chunk>.<session>.tar`` keeps every Drive folder small
whatever the image count, and no two sessions ever write the same archive name. Beside it,
``manifest.json`` and its twin ``manifest.bak.json``, both rewritten in place (no Trash copy per
commit); a kill mid-rewrite cuts one of them at most, and the reader falls back to the other.

Every change to the manifest is made under the job's lease, to a fresh read of it (never to a
stale copy in memory): the lease is checked after that read, right before each attempt to write the
manifest and its twin (see ``lease.py`` for the window that is left). A manifest that exists but
cannot be read raises ``DriveError``: it is never replaced by an empty one. Entries that do not
pass validation are dropped with a log line.
"""

from __future__ import annotations

import re
import tarfile
import time
from pathlib import Path, PurePosixPath

from colab_side import twins
from colab_side.drive import Drive, HashingReader
from colab_side.engine import Step, Work

FOLDER_SPAN = 100
MAX_ARCHIVE_BYTES = 1 << 50
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SAFE_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def chunk_key(node: str, chunk: int) -> str:
    return f"{node}:{chunk}"


def empty_manifest(job: str) -> dict:
    return {"version": 1, "job": job, "chunks": {}, "pruned": {}, "errors": {}}


def _is_int(value, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def valid_entry(entry) -> bool:
    """A chunk entry as ``add_chunk`` writes it: a safe relative archive path, a size, a SHA-256."""
    if not isinstance(entry, dict) or not isinstance(entry.get("archive"), str):
        return False
    parts = PurePosixPath(entry["archive"]).parts
    return (bool(parts) and all(_SAFE_PART.fullmatch(p) and p not in (".", "..") for p in parts)
            and parts[-1].endswith(".tar") and _is_int(entry.get("size"), 0, MAX_ARCHIVE_BYTES)
            and isinstance(entry.get("sha256"), str) and bool(_SHA256.fullmatch(entry["sha256"])))


def cleaned(doc, job: str, log) -> dict | None:
    """The manifest with invalid records dropped (each said in ``log``); None if it is not a manifest."""
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), dict) for k in ("chunks", "pruned", "errors")):
        return None
    clean = {**empty_manifest(job), **{k: v for k, v in doc.items() if k not in ("chunks", "pruned", "errors")}}
    for key, entry in doc["chunks"].items():
        if valid_entry(entry):
            clean["chunks"][key] = entry
        else:
            log(f"manifest entry {key!r} is not valid; its chunk will be computed again")
    clean["pruned"] = {k: v for k, v in doc["pruned"].items() if isinstance(v, dict)}
    clean["errors"] = {k: [s for s in v if isinstance(s, str)] for k, v in doc["errors"].items() if isinstance(v, list)}
    published = doc.get("published")
    if published is not None and not (isinstance(published, dict) and all(
            isinstance(k, str) and isinstance(v, str) and _SHA256.fullmatch(v) for k, v in published.items())):
        log("the manifest's record of the published result is not valid; the result is published again")
        clean.pop("published", None)
    return clean


class Store:
    def __init__(self, folder, drive: Drive, job: str, log=print, guard=lambda: None):
        """``guard`` is called right before every write and raises when this session may not write."""
        self.folder = Path(folder)
        self.drive = drive
        self.job = job
        self.log = log
        self.guard = guard
        self.manifest, self._unusable = self._read()

    # --- manifest -------------------------------------------------------------------------

    @property
    def _main(self) -> Path:
        return self.folder / "manifest.json"

    def _read(self, quiet: bool = False) -> tuple[dict, list[Path]]:
        """The manifest from Drive: main, else its twin, else empty when neither exists; and the
        files that exist but are not manifests when neither could be used.

        DriveError (unreadable) propagates. Files that are not manifests are moved aside (kept,
        renamed) at the next write, and the store starts empty, which only costs recomputation.
        """
        log = (lambda _line: None) if quiet else self.log
        doc, unusable = twins.read(self.drive, self._main, lambda doc: cleaned(doc, self.job, log), log,
                                   "store manifest")
        return (empty_manifest(self.job), unusable) if doc is None else (doc, [])

    def _set_aside(self) -> None:
        stamp = time.strftime("%Y%m%d%H%M%S")
        for path in self._unusable:
            aside = path.with_name(f"{path.stem}.unusable-{stamp}.json")
            self.guard()
            self.drive.rename(path, aside)
            self.log(f"{path.name} could not be used; kept as {aside.name}, the store starts over")
        self._unusable = []

    def _mutate(self, change) -> None:
        """Apply ``change(manifest)`` to a fresh read of the manifest and write it, main then twin, each
        attempt right after a check of the lease."""
        doc, unusable = self._read(quiet=True)
        change(doc)
        if unusable and self._unusable:
            self._set_aside()
        twins.write(self.drive, self._main, doc, guard=self.guard)
        self.manifest = doc

    def has(self, node: str, chunk: int) -> bool:
        return chunk_key(node, chunk) in self.manifest["chunks"] or node in self.manifest["pruned"]

    def node_durable(self, node: Step) -> bool:
        return all(self.has(node.name, c) for c in range(node.chunk_count))

    def durable_nodes(self, graph: Work) -> set[str]:
        return {name for name, node in graph.nodes.items() if self.node_durable(node)}

    @property
    def durable_chunks(self) -> int:
        return len(self.manifest["chunks"])

    @property
    def pruned_bytes(self) -> int:
        return sum(entry.get("bytes", 0) for entry in self.manifest["pruned"].values()
                   if isinstance(entry.get("bytes", 0), int))

    @property
    def stored_bytes(self) -> int:
        return sum(entry["size"] for entry in self.manifest["chunks"].values())

    # --- errors a node had, per session --------------------------------------------------------

    def record_error(self, node: str, session: str) -> int:
        """Remember that ``node`` ended in ERROR in ``session``; return in how many sessions it did."""

        def change(doc):
            sessions = doc["errors"].setdefault(node, [])
            if session not in sessions:
                sessions.append(session)

        self._mutate(change)
        return len(self.manifest["errors"][node])

    # --- archiving --------------------------------------------------------------------------

    def archive_path(self, node: str, chunk: int, session: str) -> Path:
        return self.folder / node / str(chunk // FOLDER_SPAN) / f"{chunk}.{session}.tar"

    def add_chunk(self, node: Step, chunk: int, cache, files: list[str], session: str) -> dict:
        """Stream ``files`` (relative to the node's folder) into the chunk's archive, then commit it."""
        folder = node.internal_folder(cache)
        prefix = node.archive_prefix
        target = self.archive_path(node.name, chunk, session)

        def produce(writer):
            with tarfile.open(fileobj=writer, mode="w|") as archive:
                for rel in sorted(files):
                    archive.add(folder / rel, arcname=f"{prefix}/{rel}", recursive=False)

        self.guard()
        size, digest = self.drive.write_stream(target, produce)
        entry = {"archive": target.relative_to(self.folder).as_posix(), "size": size, "sha256": digest,
                 "files": len(files), "session": session}
        self._mutate(lambda doc: doc["chunks"].__setitem__(chunk_key(node.name, chunk), entry))
        return entry

    def prune(self, node: Step) -> int:
        """Delete a node's archives (its consumers are all finished); return the bytes its entries held."""
        held = sum(self.manifest["chunks"].get(chunk_key(node.name, c), {}).get("size", 0)
                   for c in range(node.chunk_count))

        def change(doc):
            doc["pruned"][node.name] = {"bytes": held, "chunks": node.chunk_count}
            for chunk in range(node.chunk_count):
                doc["chunks"].pop(chunk_key(node.name, chunk), None)

        self._mutate(change)  # first say it is pruned, then delete: a kill in between leaves only orphans
        self.guard()
        self.drive.remove_tree(self.folder / node.name)
        return held

    def drop_chunk(self, node: Step, chunk: int) -> int:
        """Forget one chunk's archive (the Drive budget chose to recompute it after a kill): the entry
        goes first, then the file (truncated, removed); return the bytes the entry held (0: no entry)."""
        dropped = []
        self._mutate(lambda doc: dropped.extend(filter(None, [doc["chunks"].pop(chunk_key(node.name, chunk), None)])))
        for entry in dropped:
            self.guard()
            self.drive.remove(self.folder / entry["archive"])
        return sum(entry["size"] for entry in dropped)

    def unprune(self, names: set[str]) -> None:
        """Bring pruned nodes back into the plan: they are computed again (their files are needed)."""
        if names:
            self._mutate(lambda doc: [doc["pruned"].pop(name, None) for name in names])

    # --- restoring --------------------------------------------------------------------------

    def restore(self, graph: Work, cache, names=None) -> tuple[int, list[str], list[str]]:
        """Bring the archives of ``names`` (None: every node) into the local cache; return (chunks restored,
        chunks dropped, nodes unpruned).

        A missing or damaged archive drops its entry: that chunk is computed again. An archive that
        cannot be read raises DriveError and keeps its entry. A node that must be computed again
        gets its pruned producers back (recursively); for the other pruned nodes the engine leaves
        what its program needs to skip them (``Engine.mark_done``: Meshroom's SUCCESS status files).
        """
        restored, dropped = 0, []
        for name, node in graph.nodes.items():
            if name in self.manifest["pruned"] or (names is not None and name not in names):
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
        if dropped:
            self._mutate(lambda doc: [doc["chunks"].pop(key, None) for key in dropped])
        needed = self.producers_to_recompute(graph)
        self.unprune(needed)
        return restored, dropped, sorted(needed)

    def producers_to_recompute(self, graph: Work) -> set[str]:
        """Pruned nodes whose files a node still to compute reads, directly or through other such nodes."""
        pruned = set(self.manifest["pruned"])
        todo = [name for name, node in graph.nodes.items() if name not in pruned and not self.node_durable(node)]
        needed: set[str] = set()
        while todo:
            for producer in graph.dependencies(todo.pop()):
                if producer in pruned and producer not in needed:
                    needed.add(producer)
                    todo.append(producer)
        return needed

    def _extract(self, node: Step, entry: dict, cache: Path) -> bool:
        """Extract one archive while hashing it; False (and nothing left behind) if missing or damaged."""
        prefix = f"{node.archive_prefix}/"
        written: list[Path] = []

        def consume(handle):
            reader = HashingReader(handle)
            written.clear()
            try:
                with tarfile.open(fileobj=reader, mode="r|") as archive:
                    for member in archive:
                        if not member.name.startswith(prefix) or ".." in member.name or not member.isfile():
                            return "is damaged (it holds files of another node)"
                        if hasattr(tarfile, "data_filter"):
                            archive.extract(member, cache, filter="data")
                        else:
                            archive.extract(member, cache)
                        written.append(cache / member.name)
                reader.drain()
            except tarfile.TarError as exc:
                return f"is damaged (not a readable tar: {exc})"
            if reader.size != entry["size"] or reader.digest.hexdigest() != entry["sha256"]:
                return "is damaged (size or SHA-256 differs from its manifest entry)"
            return ""

        problem = self.drive.read_stream(self.folder / entry["archive"], consume)
        if problem is None:
            problem = "is missing"
        if problem:
            for path in written:
                path.unlink(missing_ok=True)
            self.log(f"archive {entry['archive']} {problem}; its chunk will be computed again")
            return False
        return True

    def mark_published(self, files: dict[str, str]) -> None:
        """Record the verified result (relative path → SHA-256): the job is done. Archives no entry
        names (written by sessions killed before their commit) are removed then."""
        self._mutate(lambda doc: doc.__setitem__("published", files))
        named = {self.folder / entry["archive"] for entry in self.manifest["chunks"].values()}
        for path in self.drive.find(self.folder, "*.tar"):
            if path not in named:
                self.guard()
                self.drive.remove(path)

    def remove_all(self) -> None:
        """Remove every archive (only after the result is published and verified)."""
        self._mutate(lambda doc: doc.__setitem__("chunks", {}))
        for name in self.drive.listdir(self.folder):
            self.guard()
            self.drive.remove_tree(self.folder / name)  # the manifests are files: kept

