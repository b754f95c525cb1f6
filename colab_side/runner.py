"""One Colab session of a long Meshroom job: check, install, plan, restore, compute, prune, publish.

Every session starts from what is durable on Drive, never from the runtime's disk (which a
disconnect wipes): the saved graph ``project.mg``, the store of finished chunks, the error record.
It computes the graph node by node in graph order, chunk by chunk, so it knows exactly which
files each chunk added and can make that chunk durable before starting the next one.

A session ends in one of three ways: ``done`` (the result is on Drive, verified), ``failed`` or
``blocked`` (a named cause a restart will not fix: the daemon stops restarting and tells the
human), or by being killed — the normal case on Colab — after which the next session resumes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from colab_side import heartbeat as hb
from colab_side.beat import HeartbeatWriter
from colab_side.drive import Drive, DriveError, mount_colab, sha256_file
from colab_side.events import Journal, read_events
from colab_side.layout import job_layout
from colab_side.meshroom import cache as meshroom_cache
from colab_side.meshroom import commands, install, pruning, versions
from colab_side.meshroom.graph import Graph, GraphError, Node, load as load_graph
from colab_side.store import Store

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".exr", ".heic", ".dng", ".cr2", ".nef", ".arw")
GB = 1 << 30


@dataclass
class Settings:
    images: Path
    job: str = "meshroom"
    drive_root: Path | None = None  # None: mount Colab's Drive and use MyDrive
    meshroom: str = "2019.2"
    meshroom_url: str | None = None
    local_dir: Path | None = None  # the runtime's fast disk; default /content/keepalive-work
    heartbeat_seconds: float = 30.0
    max_node_errors: int = 2
    prune: bool = True
    drive_margin_bytes: int = 2 * GB
    keep_store: bool = True
    lifetime_hours: float = 12.0
    adopt_cache: Path | None = None
    gpu_required: bool = True
    drive_backoff_seconds: float = 2.0  # first wait before retrying a failed Drive write (doubles)


class Stop(Exception):
    """The session ends in a final phase (done, failed, blocked) with a named cause."""

    def __init__(self, phase: str, cause: str | None = None, reason: str = "", action: str = ""):
        super().__init__(reason)
        self.phase, self.cause, self.reason, self.action = phase, cause, reason, action


class Interrupted(Exception):
    """A chunk did not finish for a reason that a new session may not have: end this one."""


def detect_gpu() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    names = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    return names[0] if out.returncode == 0 and names else None


def find_images(folder: Path) -> list[Path]:
    """The image files of ``folder``; Stop(BAD_INPUT) naming the folder when there are none."""
    if not folder.is_dir():
        raise Stop(hb.FAILED, hb.BAD_INPUT, f"image folder {folder} does not exist",
                   "upload the images to Drive and pass that folder as images=")
    files = [p for p in folder.iterdir() if p.is_file()]
    images = [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS]
    if not images:
        what = "is empty" if not files else f"holds no image files ({len(files)} other files)"
        raise Stop(hb.FAILED, hb.BAD_INPUT, f"image folder {folder} {what}",
                   f"put .jpg/.png/.tif images in it; accepted: {', '.join(IMAGE_EXTENSIONS)}")
    return images


class Session:
    def __init__(self, settings: Settings):
        self.s = settings
        self.durations: list[float] = []
        self.node_durations: dict[str, list[float]] = {}

    # --- the session as a whole -------------------------------------------------------------------

    def run(self) -> int:
        try:
            self.layout = job_layout(self.s.drive_root or "/content/drive/MyDrive", self.s.job)
        except ValueError as exc:
            print(f"colab_side: {exc}")
            return 2
        remount = None
        if self.s.drive_root is None:
            mount_colab()
            remount = lambda: mount_colab(force=True)  # noqa: E731
        self.local = Path(self.s.local_dir or (
            "/content/keepalive-work" if Path("/content").is_dir() else tempfile.mkdtemp(prefix="keepalive-")))
        self.local.mkdir(parents=True, exist_ok=True)
        self.drive = Drive(self.layout.drive_root, remount, backoff=self.s.drive_backoff_seconds, log=print)
        self.beat = HeartbeatWriter(self.drive, self.layout.heartbeat, self.s.job, self.s.heartbeat_seconds)
        session = self.beat.session
        self.journal = Journal(self.drive, self.layout.events, self.layout.logs / f"{session}.log",
                               self.local / "logs" / f"{session}.log", session)
        self.drive.log = self.beat.log = self.journal.log
        self.beat.start()
        self.journal.event("session_start", job=self.s.job, meshroom=self.s.meshroom)
        code, end = 1, "killed"
        try:
            self._run()
        except Stop as stop:
            code, end = (0 if stop.phase == hb.DONE else 1), stop.phase
            self.beat.update(phase=stop.phase, cause=stop.cause, reason=stop.reason, action=stop.action,
                             node=None, chunk=None)
            if stop.phase != hb.DONE:
                self.journal.event(stop.phase, cause=stop.cause, reason=stop.reason, action=stop.action)
                self.journal.log(f"{stop.phase.upper()} ({stop.cause}): {stop.reason}. What to do: {stop.action}")
        except Interrupted as exc:
            end = "interrupted"
            self.journal.log(f"session ends: {exc}; the next session resumes from the store")
        except DriveError as exc:
            cause = hb.DRIVE_FULL if exc.full else hb.DRIVE_ERROR
            end = hb.BLOCKED
            self.beat.update(phase=hb.BLOCKED, cause=cause, reason=str(exc),
                             action="free space on Drive" if exc.full else "check Google Drive, then restart")
            self.journal.event("error", cause=cause, reason=str(exc))
        finally:
            self.journal.event("session_end", end=end)
            self.journal.sync_log()
            self.beat.stop()
        return code

    def _run(self) -> None:
        try:
            self.version = versions.get(self.s.meshroom)
        except ValueError as exc:
            raise Stop(hb.FAILED, hb.BAD_INPUT, str(exc), "pass meshroom= one of the known versions") from None
        self.images = sorted(find_images(Path(self.s.images)))
        self._check_identity()
        self.store = Store(self.layout.store, self.drive, self.s.job, log=self.journal.log)
        if self._published_result_intact():
            raise Stop(hb.DONE, reason="the result was already published and verified")
        self._check_errors()
        gpu = detect_gpu()
        if gpu is None and self.s.gpu_required:
            raise Stop(hb.BLOCKED, hb.NO_GPU, "this runtime has no GPU",
                       "choose a GPU runtime (Runtime > Change runtime type > GPU), then Run all")
        self.beat.update(phase=hb.INSTALLING, gpu=gpu, local_free_bytes=shutil.disk_usage(self.local).free,
                         drive_free_bytes=self.drive.free_bytes(), durable_chunks=self.store.durable_chunks,
                         pruned_bytes=self.store.pruned_bytes)
        self.exe_dir = self._install()
        self.beat.update(phase=hb.PLANNING)
        self.graph = self._plan()
        self.cache = self.local / "cache"
        shutil.rmtree(self.cache, ignore_errors=True)
        self.cache.mkdir(parents=True)
        if self.s.adopt_cache:
            self._adopt(Path(self.s.adopt_cache))
        restored, dropped = self.store.restore(self.graph, self.cache)
        for node in self.graph.nodes.values():
            meshroom_cache.reset_interrupted(node, self.cache)
        self.journal.event("restored", chunks=restored, dropped=dropped)
        self._check_disk()
        self._load_history()
        self._update_progress(hb.COMPUTING)
        for name in self.graph.order():
            self._compute_node(self.graph.nodes[name])
        self._publish()

    # --- checks -------------------------------------------------------------------------------------

    def _check_identity(self) -> None:
        identity = {"job": self.s.job, "images": str(Path(self.s.images)), "meshroom": self.s.meshroom}
        path = self.layout.identity
        if path.exists():
            try:
                known = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                known = None
            if isinstance(known, dict) and known != identity:
                raise Stop(hb.FAILED, hb.BAD_INPUT,
                           f"job folder {self.layout.job_dir} belongs to another job "
                           f"(images {known.get('images')}, Meshroom {known.get('meshroom')})",
                           "use another job name, or the same images and Meshroom version")
            if known == identity:
                return
        self.drive.write_json(path, identity)

    def _check_errors(self) -> None:
        for node, sessions in self.store.manifest["errors"].items():
            if len(sessions) >= self.s.max_node_errors:
                raise Stop(hb.FAILED, hb.CODE_ERROR,
                           f"{node} ended in ERROR in {len(sessions)} sessions; see logs/ and events.jsonl",
                           f"fix the cause (images, parameters), then remove \"{node}\" from the store's "
                           "manifest errors or start a new job")

    def _check_disk(self) -> None:
        """Say before it fails when the local cache will not fit (a rough guess: twice the store)."""
        free = shutil.disk_usage(self.local).free
        need = 2 * self.store.stored_bytes
        if need > free:
            self.beat.update(warnings=[f"local disk has {free / GB:.1f} GB free; the cache may need "
                                       f"{need / GB:.1f} GB (DISK_FULL risk)"])
            self.journal.log(f"warning: the local cache may not fit: {need} bytes needed, {free} free")

    def _published_result_intact(self) -> bool:
        published = self.store.manifest.get("published")
        if not published:
            return False
        for rel, digest in published.items():
            path = self.layout.result / rel
            if not path.is_file() or sha256_file(path) != digest:
                return False
        return True

    # --- install and plan ----------------------------------------------------------------------------

    def _install(self) -> Path:
        started = time.monotonic()
        try:
            archive = install.ensure_archive(self.layout.install_dir, self.version, self.s.meshroom_url,
                                             self.drive, log=self.journal.log)
            exe_dir = install.extract(archive, self.local, self.version)
        except install.InstallError as exc:
            raise Stop(hb.BLOCKED, hb.BAD_INPUT, str(exc), "check meshroom_url and the network, then Run all") from None
        self.journal.event("install", version=self.version.version, seconds=round(time.monotonic() - started, 2))
        return exe_dir

    def _plan(self) -> Graph:
        project = self.layout.project
        if not project.exists():
            local = self.local / "project.mg"
            command = commands.save_command(self.version, self.exe_dir, self.s.images, local,
                                            self.local / "cache", self.local / "publish")
            self._execute(command)
            try:
                saved = load_graph(local)
            except GraphError as exc:
                raise Stop(hb.FAILED, hb.CODE_ERROR, f"Meshroom saved an unusable graph: {exc}",
                           "check the Meshroom version and the images") from None
            self.drive.copy_file(local, project)
            self.journal.event("graph_saved", nodes=len(saved.nodes))
        try:
            graph = load_graph(project)
        except GraphError as exc:
            raise Stop(hb.FAILED, hb.BAD_INPUT, str(exc),
                       f"delete {project} (the store is kept) so that the next session saves the graph again") from None
        self.project = self.local / "project.mg"
        if project != self.project:
            shutil.copyfile(project, self.project)
        return graph

    def _adopt(self, seed_cache: Path) -> None:
        """Take over the finished nodes of a seed-style cache (``meshroom_photogrammetry --cache``).

        Only whole nodes are adopted: a seed cache does not say which files each chunk wrote.
        """
        adopted = 0
        for name in self.graph.order():
            node = self.graph.nodes[name]
            if self.store.node_durable(node) or not meshroom_cache.node_done(node, seed_cache):
                continue
            files = [rel for rel in meshroom_cache.snapshot(node.internal_folder(seed_cache))
                     if not meshroom_cache.is_meta(rel)]
            for chunk in range(node.chunk_count):
                meta = [node.status_file(seed_cache, chunk).name.replace("status", kind) for kind in meshroom_cache.META_FILES]
                present = [m for m in meta if (node.internal_folder(seed_cache) / m).exists()]
                self.store.add_chunk(node, chunk, seed_cache, present + (files if chunk == 0 else []), self.beat.session)
            adopted += 1
            self.journal.event("adopt", node=name, chunks=node.chunk_count)
        if not adopted:
            self.journal.log(f"no finished node of this graph found in {seed_cache} (other images or Meshroom version?)")

    # --- computing ---------------------------------------------------------------------------------

    def _execute(self, command: list[str], on_line=None) -> int:
        self.journal.log("$ " + " ".join(command))
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace", cwd=self.local)
        for line in proc.stdout:
            self.journal.log(line.rstrip())
            self.beat.update(last_log_line=line.strip()[:200])
            if on_line:
                on_line()
        return proc.wait()

    def _compute_node(self, node: Node) -> None:
        if self.store.node_durable(node):
            return
        free = self.drive.free_bytes()
        if free is not None and free < self.s.drive_margin_bytes:
            raise Stop(hb.BLOCKED, hb.DRIVE_FULL,
                       f"Drive has {free / GB:.2f} GB free, {self.s.drive_margin_bytes / GB:.2f} GB needed before {node.name}",
                       f"free at least {(self.s.drive_margin_bytes - free) / GB:.2f} GB on Drive, then Run all")
        self.journal.event("node_start", node=node.name, chunks=node.chunk_count)
        started = time.monotonic()
        for chunk in range(node.chunk_count):
            if not self.store.has(node.name, chunk):
                self._compute_chunk(node, chunk)
        self.journal.event("node_done", node=node.name, seconds=round(time.monotonic() - started, 3))
        if self.s.prune:
            self._prune()

    def _compute_chunk(self, node: Node, chunk: int) -> None:
        folder = node.internal_folder(self.cache)
        before = meshroom_cache.snapshot(folder)
        self.beat.update(node=node.name, chunk=chunk)
        started = time.monotonic()
        iteration = chunk if node.block_size else None
        command = commands.compute_command(self.version, self.exe_dir, self.project, self.cache, node.name, iteration)
        code = self._execute(command, on_line=lambda: self._warn_long_chunk(node, started))
        status = meshroom_cache.read_status(node.status_file(self.cache, chunk))
        if code == 0 and status == meshroom_cache.DONE:
            seconds = time.monotonic() - started
            after = meshroom_cache.snapshot(folder)
            changed = [rel for rel, sig in after.items() if before.get(rel) != sig]
            entry = self.store.add_chunk(node, chunk, self.cache, changed, self.beat.session)
            self.durations.append(seconds)
            self.node_durations.setdefault(node.name, []).append(seconds)
            self.journal.event("chunk_done", node=node.name, chunk=chunk, seconds=round(seconds, 3),
                               bytes=entry["size"], files=entry["files"])
            self.journal.sync_log()
            self._update_progress(hb.COMPUTING)
            return
        if status == meshroom_cache.ERROR:
            tail = self._log_tail(node, chunk)
            count = self.store.record_error(node.name, self.beat.session)
            self.journal.event("error", node=node.name, chunk=chunk, exit_code=code, sessions=count, log_tail=tail)
            if count >= self.s.max_node_errors:
                raise Stop(hb.FAILED, hb.CODE_ERROR,
                           f"{node.name} chunk {chunk} ended in ERROR in {count} sessions: {tail[-1] if tail else ''}",
                           f"read logs/ for {node.name}; fix the images or parameters and start a new job")
            raise Interrupted(f"{node.name} ended in ERROR (session {count} of {self.s.max_node_errors})")
        raise Interrupted(f"{node.name} chunk {chunk} stopped with exit code {code} and status {status}")

    def _log_tail(self, node: Node, chunk: int, lines: int = 10) -> list[str]:
        log = node.status_file(self.cache, chunk).with_name(node.status_file(self.cache, chunk).name.replace("status", "log"))
        try:
            return log.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return []

    def _warn_long_chunk(self, node: Node, started: float) -> None:
        elapsed = time.monotonic() - started
        lifetime = self.s.lifetime_hours * 3600
        if elapsed > 0.75 * lifetime:
            self._add_warning(f"{node.name} has run {elapsed / 3600:.1f} h of the runtime's {self.s.lifetime_hours:g} h "
                              "lifetime in one chunk: it may never finish on this plan")

    def _add_warning(self, text: str) -> None:
        if text not in self.beat.beat.warnings:
            self.beat.update(warnings=[*self.beat.beat.warnings, text])

    def _prune(self) -> None:
        finished = self.store.durable_nodes(self.graph)
        for name in pruning.prunable(self.graph, finished, set(self.store.manifest["pruned"])):
            self.beat.update(phase=hb.PRUNING)
            freed = self.store.prune(self.graph.nodes[name])
            self.journal.event("prune", node=name, bytes=freed)
        self._update_progress(hb.COMPUTING)

    # --- progress ----------------------------------------------------------------------------------

    def _load_history(self) -> None:
        """Chunk durations measured by earlier sessions, for the ETA and the 12-hour risk."""
        for event in read_events(self.layout.events):
            if event.get("event") == "chunk_done" and isinstance(event.get("seconds"), (int, float)):
                self.durations.append(float(event["seconds"]))
                self.node_durations.setdefault(str(event.get("node")), []).append(float(event["seconds"]))
        lifetime = self.s.lifetime_hours * 3600
        for name, times in self.node_durations.items():
            node = self.graph.nodes.get(name)
            if node and not self.store.node_durable(node) and max(times) > lifetime:
                self._add_warning(f"a chunk of {name} took {max(times) / 3600:.1f} h, more than the runtime's "
                                  f"{self.s.lifetime_hours:g} h lifetime: it may never finish")

    def _update_progress(self, phase: str) -> None:
        graph, store = self.graph, self.store
        nodes_done = len(store.durable_nodes(graph))
        chunks_done = sum(1 for n in graph.nodes.values() for c in range(n.chunk_count) if store.has(n.name, c))
        remaining = graph.chunks_total - chunks_done
        mean = sum(self.durations) / len(self.durations) if self.durations else None
        self.beat.update(
            phase=phase, nodes_done=nodes_done, nodes_total=len(graph.nodes), chunks_done=chunks_done,
            chunks_total=graph.chunks_total, progress=round(chunks_done / graph.chunks_total, 4),
            eta_seconds=round(remaining * mean, 1) if mean is not None else None,
            durable_chunks=store.durable_chunks, pruned_bytes=store.pruned_bytes,
            cache_bytes=sum(size for size, _ in meshroom_cache.snapshot(self.cache).values()),
            local_free_bytes=shutil.disk_usage(self.local).free, drive_free_bytes=self.drive.free_bytes(),
        )

    # --- publishing --------------------------------------------------------------------------------

    def _publish(self) -> None:
        self._update_progress(hb.PUBLISHING)
        published = {}
        for name in self.graph.final_nodes():
            folder = self.graph.nodes[name].internal_folder(self.cache)
            for rel in sorted(meshroom_cache.snapshot(folder)):
                if not meshroom_cache.is_meta(rel):
                    published[rel] = self.drive.copy_file(folder / rel, self.layout.result / rel)
        for rel, digest in published.items():
            if sha256_file(self.layout.result / rel) != digest:
                raise DriveError(f"result file {rel} does not match after copying")
        self.store.mark_published(published)
        self.journal.event("published", files=len(published),
                           bytes=sum((self.layout.result / rel).stat().st_size for rel in published))
        if not self.s.keep_store:
            self.store.remove_all()
            self.journal.event("store_removed")
        self.journal.event("done")
        raise Stop(hb.DONE, reason=f"result published to {self.layout.result}")


def run(images, job: str = "meshroom", drive_root=None, meshroom: str = "2019.2", **options) -> int:
    """Run (or resume) the job; returns 0 when done, nonzero when this session ended otherwise."""
    return Session(Settings(images=Path(images), job=job, drive_root=Path(drive_root) if drive_root else None,
                            meshroom=meshroom, **options)).run()
