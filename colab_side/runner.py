"""One Colab session of a long job: check, install, plan, restore, compute, prune, publish.

Every session starts from what is durable on Drive, never from the runtime's disk (which a
disconnect wipes): the saved graph ``project.mg``, the store of finished chunks, the error record.
It computes the job's steps (an engine's units of work: ``colab_side.engine``; Meshroom's graph
nodes) in order, chunk by chunk, so it knows exactly which files each chunk added and can make
that chunk durable before starting the next one. Nothing here knows the program that computes.

A session ends in one of three ways: ``done`` (the result is on Drive, verified), ``failed`` or
``blocked`` (a named cause a restart will not fix: the daemon stops restarting and tells the
human), or by being killed — the normal case on Colab — after which the next session resumes.
"""

from __future__ import annotations

import errno
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from colab_side import heartbeat as hb
from colab_side.beat import HeartbeatWriter
from colab_side import budget, identity, plan, policy, pruning, twins
from colab_side import engine as engines
from colab_side.drive import FULL, RETRYABLE, Drive, DriveError, mount_colab
from colab_side.events import Journal, parse_events, utc_now
from colab_side.layout import NotOurs, is_job_name, job_layout, work_dir
from colab_side.lease import Lease, Superseded
from colab_side.local import LocalCache
from colab_side.engine import DONE, ERROR, Engine, Interrupted, Step, Stop
from colab_side.settings import GB, Settings, SettingsError, check_colab_paths, make as make_settings
from colab_side.store import Store, chunk_key

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".exr", ".heic", ".dng", ".cr2", ".nef", ".arw")


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


LOW_DISK_BYTES = 256 << 20  # a chunk that ends in ERROR with less free is a full disk, not the node's fault
COLAB_DRIVE = "/content/drive/MyDrive"  # where the notebook mounts the user's Drive
RESTARTABLE_EXIT = 75  # EX_TEMPFAIL: this session ended by itself, a new one resumes
SUPERSEDED_EXIT = 3


class Session:
    def __init__(self, settings: Settings, drive: Drive | None = None, engine: Engine | None = None):
        """``drive``: tests pass one with injected faults; by default it is built from the settings.
        ``engine``: by default the settings' engine, made when the session starts."""
        self.settings = settings
        self.drive = drive
        self.engine = engine
        self._proc = None
        self.node_durations: dict[str, list[float]] = {}

    # --- the session as a whole -------------------------------------------------------------------

    def run(self) -> int:
        try:
            self.layout = job_layout(self.settings.drive_root or COLAB_DRIVE, self.settings.job)
        except ValueError as exc:
            print(f"colab_side: {exc}")
            return 2
        remount = None
        if self.settings.drive_root is None:
            mount_colab()
            remount = lambda: mount_colab(force=True)  # noqa: E731
        local = Path(self.settings.local_dir or (
            "/content/keepalive-work" if Path("/content").is_dir() else tempfile.mkdtemp(prefix="keepalive-")))
        try:
            self.local = work_dir(local)
        except NotOurs as exc:
            print(f"colab_side: {exc}")
            return 2
        if self.drive is None:
            self.drive = Drive(self.layout.drive_root, remount, backoff=self.settings.drive_backoff_seconds, log=print,
                               call_limit=self.settings.drive_call_limit_seconds)
        self.beat = HeartbeatWriter(self.drive, self.layout.heartbeat, self.settings.job, self.settings.heartbeat_seconds)
        session = self.beat.session
        self.journal = Journal(self.drive, self.layout.events, self.layout.logs / f"{session}.log",
                               self.local / "logs" / f"{session}.log", session)
        self.drive.log = self.beat.log = self.journal.log
        self.lease = Lease(self.drive, self.layout.lease, session, ttl=max(60.0, 4 * self.settings.heartbeat_seconds))
        self.beat.guard = lambda: self.lease.check(renew=True)
        self.beat.on_superseded = self._superseded
        code, end = 1, "killed"
        try:
            previous = self.lease.take()
            if previous:
                self.journal.log(f"taking the job over from session {previous.owner} (the newest session writes)")
            if previous and previous.live:  # the loser cannot say it: the heartbeat is this session's now
                self.beat.update(history=[f"{utc_now()} session {previous.owner} superseded by session {session}"])
            self.beat.start()
            self.journal.event("session_start", job=self.settings.job, engine=self.settings.engine,
                               meshroom=self.settings.meshroom)
            self._run()
        except Stop as stop:
            code, end = self._end(stop)
        except Superseded as lost:
            code, end = SUPERSEDED_EXIT, "superseded"
            self.journal.log(f"superseded by session {lost.owner}: this session stops writing to the job and exits")
            self.journal.event("superseded", by=lost.owner)
        except Interrupted as exc:
            end = "interrupted"
            self.journal.log(f"session ends: {exc}; the next session resumes from the store")
        except DriveError as exc:
            code, end = self._end(self._drive_stop(exc))
        except OSError as exc:  # outside Drive's wrapper: the local disk, or a meshroom_url that is a path on Drive
            if exc.errno in FULL:
                code, end = self._end(Stop.of(policy.disk_full(str(exc))))
            elif exc.errno in RETRYABLE:
                code, end = self._end(self._drive_stop(DriveError(f"Drive failed: {exc}")))
            else:
                raise
        finally:
            if end != "superseded":  # the newer session owns the job's shared files; the log is this session's own
                self.journal.event("session_end", end=end)
            self.journal.sync_log()
            self.beat.stop(final_write=end != "superseded")
        return code

    def _end(self, stop: Stop) -> tuple[int, str]:
        """Say how the session ends (heartbeat, events, log); return (exit code, end)."""
        self.beat.update(phase=stop.phase, cause=stop.cause, reason=stop.reason, action=stop.action,
                         node=None, chunk=None)
        if stop.phase != hb.DONE:
            self.journal.event(str(stop.phase), cause=stop.cause, reason=stop.reason, action=stop.action)
            self.journal.log(f"{stop.phase.upper()} ({stop.cause}): {stop.reason}. What to do: {stop.action}")
        code = {hb.DONE: 0, hb.RESTARTABLE: RESTARTABLE_EXIT}.get(stop.phase, 1)
        return code, str(stop.phase)

    @staticmethod
    def _drive_stop(exc: DriveError) -> Stop:
        """Only a full Drive needs the human; an outage, a timeout or a failed remount is restartable."""
        return Stop.of(policy.drive_error(str(exc), exc.full, exc.timeout))

    def _superseded(self, owner: str) -> None:
        """Called by the heartbeat thread when a newer session took the lease: stop the program at once."""
        self.journal.log(f"superseded by session {owner}: stopping")
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()

    def _run(self) -> None:
        if self.engine is None:
            self.engine = engines.make(self.settings.engine, self.settings)
        self.images = sorted(self.drive.call("the image folder", lambda: find_images(Path(self.settings.images))))
        self._check_identity()
        self.store = Store(self.layout.store, self.drive, self.settings.job, log=self.journal.log, guard=self.lease.check)
        if self._published_result_intact():
            raise Stop(hb.DONE, reason="the result was already published and verified")
        self._check_errors()
        self.drive_budget = self.settings.drive_budget_bytes
        if self.drive_budget is None:
            self.drive_budget = budget.default_budget(self.store.stored_bytes, self.drive.free_bytes(),
                                                      self.settings.drive_margin_bytes)
        self._check_budget()
        gpu = detect_gpu()
        if verdict := policy.no_gpu(gpu, self.settings.gpu_required and self.engine.needs_gpu):
            raise Stop.of(verdict)
        self.beat.update(phase=hb.INSTALLING, gpu=gpu, local_free_bytes=shutil.disk_usage(self.local).free,
                         drive_free_bytes=self.drive.free_bytes(), durable_chunks=self.store.durable_chunks,
                         pruned_bytes=self.store.pruned_bytes)
        self.engine.install(self)
        self.beat.update(phase=hb.PLANNING)
        self.graph = self.engine.plan(self)
        self.cache = self.local / "cache"
        shutil.rmtree(self.cache, ignore_errors=True)
        self.cache.mkdir(parents=True)
        if self.settings.adopt_cache:
            self.engine.adopt(self, self.graph, Path(self.settings.adopt_cache))
        self.producers = {name: self.graph.dependencies(name) for name in self.graph.nodes}
        self.finished: set[str] = set()  # steps computed whole by this session
        self.local_cache = LocalCache(self.cache, self.graph, self.store, self.engine)
        todo = self._todo()  # what the first step reads comes back now, the rest when first read
        restored, dropped, unpruned = self.local_cache.bring(self._reads(todo[0] if todo else None))
        self.local_cache.mark_finished(name for name in self.store.manifest["pruned"] if name in self.graph.nodes)
        self.engine.prepare(self.graph, self.cache)
        self.journal.event("restored", chunks=restored, dropped=dropped, recompute_pruned=unpruned)
        self._check_disk()
        self.shape = budget.Shape.of(self.graph)
        self.computed: dict[tuple[str, int], tuple[list[str], int]] = {}  # by this session: files, archive bytes
        self._load_history()
        self._update_progress(hb.COMPUTING)
        while True:  # results lost since (a damaged archive found when restored) are redone: plan again each step
            todo = self._todo()
            restored, dropped, unpruned = self.local_cache.bring(self._reads(todo[0] if todo else None))
            if restored or dropped:  # the log, not events: a restore is no decision
                self.journal.log(f"restored {restored} chunks for {todo[0] if todo else 'the result'}"
                                 + (f"; damaged: {', '.join(dropped)}; computed again: {', '.join(unpruned)}"
                                    if dropped else ""))
            if dropped:
                for name in unpruned:  # computed again: their "finished" marks go
                    self.local_cache.drop(name)
                continue
            if not todo:
                break
            self._compute_node(self.graph.nodes[todo[0]])
            self.finished.add(todo[0])
            self._free_local()
        self._publish()

    # --- the local disk -------------------------------------------------------------------------------

    def _todo(self, finished: set[str] | None = None) -> list[str]:
        """The steps still to compute, in order (``policy.compute_order``): a step this session computed whose
        files left the local disk before the store held them all is computed again before its next reader."""
        done = self.store.durable_nodes(self.graph) | (self.finished if finished is None else finished)
        return policy.compute_order(self.graph.order(), self.producers, done, self.graph.publish_nodes())

    def _reads(self, name: str | None) -> set[str]:
        """What a step needs in the local folder (itself and what it reads); None: the result's steps."""
        return {name, *self.producers[name]} if name else set(self.graph.publish_nodes())

    def _free_local(self) -> None:
        """Delete the local files the next steps do not read now (``policy.local_drops``)."""
        todo = self._todo()
        later = set(todo) | set(self.graph.publish_nodes())
        for name in todo:
            later |= self.producers[name]
        present = self.local_cache.present
        durable = {name for name in present if self.store.node_durable(self.graph.nodes[name])}
        seconds = {name: self._chunk_seconds(name) * sum(1 for c in range(self.graph.nodes[name].chunk_count)
                                                          if not self.store.has(name, c)) for name in present}
        stored_inputs = {name for name in present if all(self.store.node_durable(self.graph.nodes[producer])
                                                         for producer in self.producers[name])}
        gone, recompute = policy.local_drops(present, self._reads(todo[0] if todo else None), later, durable,
                                             seconds, policy.LOCAL_RECOMPUTE_SECONDS, stored_inputs)
        if recompute and self._todo(self.finished - recompute)[:1] != todo[:1]:
            gone -= recompute  # they would come straight back: keep them
            recompute = set()
        for name in sorted(gone):
            freed = self.local_cache.drop(name)
            self.finished.discard(name)
            self.journal.log(f"local disk: {name}'s files removed ({freed} bytes)"
                             + ("; computed again before its next reader" if name in recompute else ""))

    # --- checks -------------------------------------------------------------------------------------

    def _check_identity(self) -> None:
        """The job is the image set and settings it was started with: refuse others unless ``replan``; a
        ``--replan`` under way is finished first (or refused), whatever the session that finds it."""
        intent = self._read_record(self.layout.replan, identity.replan_intent, "--replan record")
        known = self._read_record(self.layout.identity, identity.job_record, "job record",
                                  lost_ok=intent is not None or not self._job_began())
        images = []
        stats = self.drive.call("the images", lambda: [image.stat() for image in self.images])
        for image, stat in zip(self.images, stats):
            digest = identity.known_digest(known, image.name, stat.st_size, stat.st_mtime_ns) or self.drive.sha256(image)
            images.append({"name": image.name, "size": stat.st_size, "sha256": digest, "mtime_ns": stat.st_mtime_ns})
        current = identity.identity(self.settings.job, self.settings.meshroom, str(Path(self.settings.images)), images,
                                    **self._pipeline_choices())
        if intent is not None:
            differs = identity.difference(intent["job"], current)
            if differs and not self.settings.replan:
                raise Stop(hb.FAILED, hb.BAD_INPUT, f"a --replan of job {self.settings.job} to other settings is under "
                           f"way: {differs}", "run it with the settings of that --replan, or pass --replan to start "
                           "it over with these")
            return self._replan(intent["aside"], known, current)
        if known is None:
            return self._write_record(current)
        differs = identity.difference(known, current)
        if differs and not self.settings.replan:
            raise Stop(hb.FAILED, hb.BAD_INPUT, f"job folder {self.layout.job_dir} holds another job: {differs}",
                       f"use a new job name for these images and settings, or pass --replan to start job "
                       f"{self.settings.job} over with them (its old records are kept aside)")
        if differs:
            aside = self.layout.replaced()
            self.lease.check()
            twins.write(self.drive, self.layout.replan, {"aside": aside, "job": current}, guard=self.lease.check)
            return self._replan(aside, known, current)
        if known != current:
            self._write_record(current)  # the same job: digests and modification times kept up to date

    def _job_began(self) -> bool:
        """Whether anything of a job was made beyond its record (then a lost record cannot simply be written anew)."""
        return any(self.drive.call(path.name, path.exists)
                   for path in (self.layout.project, self.layout.engine_plan, self.layout.store, self.layout.result))

    def _read_record(self, path: Path, usable, what: str, lost_ok: bool = True):
        """A record kept with its twin; None when there is none. Both there and unusable: blocked (never read as
        another job), unless ``lost_ok``: then it is as if there were none."""
        found, unusable = twins.read(self.drive, path, usable, self.journal.log, what)
        if found is None and unusable and not lost_ok:
            names = " and ".join(p.name for p in unusable)
            raise Stop(hb.BLOCKED, hb.BAD_INPUT, f"{names} of job {self.settings.job} cannot be read (cut or not a "
                       f"{what}), so its settings cannot be checked",
                       f"restore {path.name} from Drive's version history (Manage versions), or pass --replan to "
                       f"start job {self.settings.job} over with these settings (its old records are kept aside)")
        return found

    def _write_record(self, current: dict) -> None:
        self.lease.check()
        twins.write(self.drive, self.layout.identity, current, guard=self.lease.check)

    def _replan(self, aside_name: str, known, current: dict) -> None:
        """``--replan``, resumable at any step: the old job's records into ``aside_name`` (renamed, nothing deleted)
        unless the new record is found written, then the new record and its twin, then the intent is removed."""
        aside = self.layout.job_dir / aside_name
        if known is None or identity.difference(known, current):  # the new record is not written yet
            records = (self.layout.identity, twins.twin_of(self.layout.identity), self.layout.project,
                       self.layout.engine_plan, self.layout.store, self.layout.result)
            for path in records:
                if self.drive.call(path.name, path.exists):
                    self.lease.check()
                    self.drive.call(aside.name, lambda: aside.mkdir(parents=True, exist_ok=True), kind="write")
                    self.drive.rename(path, self._free_name(aside, path.name))
        self._write_record(current)  # (again, when found written: its twin may not be)
        self.lease.check()
        twins.remove(self.drive, self.layout.replan)
        self.journal.event("replan", kept_in=aside.name)
        self.journal.log(f"--replan: the old job's records are kept in {aside}; delete that folder to free its space")

    def _free_name(self, folder: Path, name: str) -> Path:
        """``folder / name``, or ``name.2``, ``name.3``... when taken: what is set aside never replaces what is."""
        target, n = folder / name, 1
        while self.drive.call(target.name, target.exists):
            n += 1
            target = folder / f"{name}.{n}"
        return target

    def _pipeline_choices(self) -> dict:
        """The pipeline, parameters and overrides as they make the job; a file by its name and content digest."""
        files = {}
        for key in ("pipeline", "overrides"):
            path = getattr(self.settings, key)
            if path is None:
                continue
            digest = self.drive.sha256(path)
            if digest is None:
                raise Stop(hb.FAILED, hb.BAD_INPUT, f"the {key} file {path} does not exist",
                           f"give the path of your {key} file as Colab sees it (under /content/drive/)")
            files[key] = f"{Path(path).name} sha256:{digest}"
        return {"pipeline": files.get("pipeline", identity.PIPELINE), "params": list(self.settings.params),
                "overrides": files.get("overrides"), "engine": self.settings.engine}

    def _check_budget(self) -> None:
        """Before a job begins: a Drive budget with which, by the engine's size model, a kill could make the next
        session redo more than a session holds is refused (the job could never finish). Once begun, such kills are
        found by what the sessions finish (``policy.stalled``)."""
        if self.drive_budget is None or self.store.durable_chunks or self.store.manifest["pruned"]:
            return
        if self.engine.name not in engines.ENGINES:
            return  # an engine given to the session by its caller (not registered) has no size model
        sizes = engines.size_model(self.engine.name)
        try:
            model = sizes.for_params(sizes.load(), self.settings.params)
        except ValueError:
            return  # a parameter the model cannot read is refused in its own words when the graph is checked
        session = float(model["colab"]["session_seconds"])
        job = plan.estimate(model, self.settings.meshroom, len(self.images), self.engine.name)
        worst = plan.forecast_store(job, self.drive_budget, session_seconds=session).unrecoverable(session)
        given = self.settings.drive_budget_bytes
        program = f"--meshroom {self.settings.meshroom}" if self.engine.name == "meshroom" else f"--engine {self.engine.name}"
        command = " ".join([f"python -m colab_side plan --images {self.settings.images} {program}",
                            *(f"--param {param}" for param in self.settings.params),
                            *([f"--drive-budget {given / GB:.1f}"] if given is not None else [])])
        if verdict := policy.budget_too_small(worst, session, self.drive_budget, command):
            raise Stop.of(verdict)

    def _check_errors(self) -> None:
        if verdict := policy.repeated_errors(self.store.manifest["errors"], self.settings.max_node_errors):
            raise Stop.of(verdict)

    def _check_disk(self) -> None:
        """Say before it fails when the local cache will not fit (a rough guess: twice the store)."""
        free = shutil.disk_usage(self.local).free
        need = 2 * self.store.stored_bytes
        if warning := policy.disk_warning(free, need):
            self._add_warning(warning)
            self.journal.log(f"warning: the local cache may not fit: {need} bytes needed, {free} free")

    def _published_result_intact(self) -> bool:
        published = self.store.manifest.get("published")
        if not published:
            return False
        return all(self.drive.sha256(self.layout.result / rel) == digest for rel, digest in published.items())

    # --- computing ---------------------------------------------------------------------------------

    def execute(self, command: list[str]) -> int:
        self.journal.log("$ " + " ".join(command))
        proc = self._proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                             errors="replace", cwd=self.local)
        for line in proc.stdout:
            self.journal.log(line.rstrip())
            self.beat.update(last_log_line=line.strip()[:200])
        code = proc.wait()
        self._proc = None
        self.lease.check()  # a session that lost the lease had its program stopped: that is no error of the program
        return code

    def _compute_node(self, node: Step) -> None:
        if self.store.node_durable(node):
            return
        if verdict := policy.drive_space(self.drive.free_bytes(), self.settings.drive_margin_bytes, node.name):
            raise Stop.of(verdict)
        self.journal.event("node_start", node=node.name, chunks=node.chunk_count)
        started = time.monotonic()
        for chunk in range(node.chunk_count):
            if not self.store.has(node.name, chunk):
                self._compute_chunk(node, chunk)
        self.journal.event("node_done", node=node.name, seconds=round(time.monotonic() - started, 3))
        if self.settings.prune:
            self._prune()

    def _compute_chunk(self, node: Step, chunk: int) -> None:
        self.beat.update(node=node.name, chunk=chunk)
        started = time.monotonic()
        outcome = self.engine.run_unit(self, self.graph, node, chunk, self.cache)
        if outcome.status == DONE:
            seconds = time.monotonic() - started
            changed = list(outcome.files)
            self.local_cache.computed(node.name)
            self.node_durations.setdefault(node.name, []).append(seconds)
            size = self._store_chunk(node, chunk, changed)
            self.journal.event("chunk_done", node=node.name, chunk=chunk, seconds=round(seconds, 3),
                               bytes=size, files=len(changed), stored=self.store.has(node.name, chunk))
            self.journal.sync_log()
            self._update_progress(hb.COMPUTING)
            return
        failed = outcome.status == ERROR
        if failed and shutil.disk_usage(self.local).free < LOW_DISK_BYTES:
            raise OSError(errno.ENOSPC, f"{node.name} chunk {chunk} ended in ERROR with the local disk all but full")
        if failed and self.graph.dependencies(node.name) & set(self.store.manifest["pruned"]):
            needed = self.store.producers_to_recompute(self.graph)  # never counted: not the node's own fault
            self.store.unprune(needed)
            raise Interrupted(f"{node.name} lacked the files of pruned {', '.join(sorted(needed))}; "
                              "the next session computes them again")
        if failed:
            tail = list(outcome.log_tail)
            count = self.store.record_error(node.name, self.beat.session)
            self.journal.event("error", node=node.name, chunk=chunk, exit_code=outcome.code, sessions=count,
                               log_tail=tail)
            verdict = policy.node_error(node.name, chunk, count, self.settings.max_node_errors, tail[-1] if tail else "")
            if verdict.final:
                raise Stop.of(verdict)
            raise Interrupted(verdict.reason)
        raise Interrupted(f"{node.name} chunk {chunk} stopped with exit code {outcome.code} and status {outcome.detail}")

    def tick(self, step: str, elapsed: float, line: str | None) -> None:
        if line:
            self.beat.update(last_log_line=line)
        warning = policy.long_chunk_warning(step, elapsed, self.settings.lifetime_hours)
        if warning:
            self._add_warning(warning)

    def _add_warning(self, text: str) -> None:
        if text not in self.beat.beat.warnings:
            self.beat.update(warnings=[*self.beat.beat.warnings, text])

    def _prune(self) -> None:
        while names := pruning.prunable(self.graph, self.store.durable_nodes(self.graph),
                                        set(self.store.manifest["pruned"])):
            for name in names:
                self.beat.update(phase=hb.PRUNING)
                freed = self.store.prune(self.graph.nodes[name])
                self.journal.event("prune", node=name, bytes=freed)
            self._settle_store(None)  # the room pruning freed may take chunks left local-only
        self._update_progress(hb.COMPUTING)

    # --- the Drive budget ----------------------------------------------------------------------------

    def _store_chunk(self, node: Step, chunk: int, files: list[str]) -> int:
        """Archive a finished chunk, unless the budget keeps others instead; return its archive's bytes."""
        if self.drive_budget is None:
            return self.store.add_chunk(node, chunk, self.cache, files, self.beat.session)["size"]
        folder = node.internal_folder(self.cache)
        self.computed[node.name, chunk] = files, budget.archive_bytes((folder / rel).stat().st_size for rel in files)
        self._settle_store(node.name)
        entry = self.store.manifest["chunks"].get(chunk_key(node.name, chunk))
        return entry["size"] if entry else self.computed[node.name, chunk][1]

    def _settle_store(self, live: str | None) -> None:
        """Keep in the store what ``budget.decide`` says: drop archives first, then write the chunks that now fit.

        Chunks computed by this session can come back into the store later (their files are on local
        disk); a dropped archive restored from an earlier session cannot: a kill makes it computed again.
        """
        if self.drive_budget is None:
            return
        pruned = set(self.store.manifest["pruned"])
        sizes = {key: size for key, (_files, size) in self.computed.items() if key[0] not in pruned}
        stored = set()
        for name, node in self.graph.nodes.items():
            for chunk in range(node.chunk_count) if name not in pruned else ():
                entry = self.store.manifest["chunks"].get(chunk_key(name, chunk))
                if entry:
                    stored.add((name, chunk))
                    sizes[name, chunk] = entry["size"]
        candidates = [budget.Archive(name, chunk, size, self._chunk_seconds(name)) for (name, chunk), size in sizes.items()]
        choice, risk = budget.decide(candidates, self.drive_budget, self.shape, live, pruned,
                                     frozenset(key for key in sizes if key[0] not in self.local_cache.present) - stored)
        dropped = sorted(choice.drop & stored)
        for name, chunk in dropped:
            self.store.drop_chunk(self.graph.nodes[name], chunk)  # a kill now makes the next session redo it
        for name, chunk in sorted(choice.keep - stored):
            self.store.add_chunk(self.graph.nodes[name], chunk, self.cache, self.computed[name, chunk][0],
                                 self.beat.session)
        if choice.drop:
            self.journal.event("budget", budget=self.drive_budget, kept_bytes=choice.kept_bytes,
                               dropped=[chunk_key(*key) for key in dropped], not_stored=len(choice.drop),
                               risk_seconds=round(risk.seconds, 1), risk_nodes=sorted(risk.nodes))

    def _chunk_seconds(self, name: str) -> float:
        """Measured seconds per chunk of a node (this and earlier sessions), else the estimate."""
        times = self.node_durations.get(name)
        return sum(times) / len(times) if times else self.estimated_chunk_seconds[name]

    # --- progress ----------------------------------------------------------------------------------

    def _load_history(self) -> None:
        """Chunk durations measured by earlier sessions, for the ETA and the 12-hour risk; and whether kills
        keep undoing more than sessions finish (``policy.stalled``)."""
        sessions: dict[str, dict] = {}
        for event in parse_events((self.drive.read_bytes(self.layout.events) or b"").decode("utf-8", "replace")):
            if event.get("event") == "chunk_done" and isinstance(event.get("seconds"), (int, float)):
                self.node_durations.setdefault(str(event.get("node")), []).append(float(event["seconds"]))
                size = event.get("bytes") if isinstance(event.get("bytes"), int) else 0
                sessions.setdefault(str(event.get("session")), {})[event.get("node"), event.get("chunk")] = size
        if verdict := policy.stalled(list(sessions.values()), self.drive_budget):
            raise Stop.of(verdict)
        unfinished = [name for name, node in self.graph.nodes.items() if not self.store.node_durable(node)]
        for warning in policy.history_warnings(self.node_durations, unfinished, self.settings.lifetime_hours):
            self._add_warning(warning)
        self.estimated_chunk_seconds = self.engine.estimated_chunk_seconds(self.graph, len(self.images))

    def _update_progress(self, phase: str) -> None:
        graph, store = self.graph, self.store
        nodes_done = len(store.durable_nodes(graph))
        remaining = {n.name: sum(1 for c in range(n.chunk_count) if not store.has(n.name, c)
                                 and (n.name, c) not in self.computed) for n in graph.nodes.values()}
        chunks_done = graph.chunks_total - sum(remaining.values())
        eta = policy.eta_seconds(remaining, self.node_durations, self.estimated_chunk_seconds)
        self.beat.update(
            phase=phase, nodes_done=nodes_done, nodes_total=len(graph.nodes), chunks_done=chunks_done,
            chunks_total=graph.chunks_total, progress=round(chunks_done / graph.chunks_total, 4),
            eta_seconds=round(eta, 1) if eta is not None else None,
            durable_chunks=store.durable_chunks, pruned_bytes=store.pruned_bytes,
            cache_bytes=sum(size for size, _ in self.engine.snapshot(self.cache).values()),
            local_free_bytes=shutil.disk_usage(self.local).free, drive_free_bytes=self.drive.free_bytes(),
        )

    # --- publishing --------------------------------------------------------------------------------

    def _publish(self) -> None:
        self._update_progress(hb.PUBLISHING)
        self.lease.check()
        files = self.engine.result_files(self.graph, self.cache)
        if not files:
            wanted = self.engine.describe_result(self.graph)
            pruned = sorted(self.graph.publish_nodes() & set(self.store.manifest["pruned"]))
            raise Stop(hb.FAILED, hb.NOTHING_TO_PUBLISH,
                       f"the graph finished but its result ({wanted}) matched no file in the cache",
                       f"{', '.join(pruned)} was pruned before its result was verified (an older version did this): "
                       "remove it from the store's manifest \"pruned\" so that it is computed again" if pruned else
                       "check the pipeline's final nodes (Publish inputs) and the logs of the node that should write them")
        published = {}
        for rel, path in files.items():
            self.lease.check()  # the result folder is shared: a session that lost the job writes no file of it
            published[rel] = self.drive.copy_file(path, self.layout.result / rel)
        for rel, digest in published.items():
            if self.drive.sha256(self.layout.result / rel) != digest:
                raise DriveError(f"result file {rel} does not match after copying")
        self.store.mark_published(published)
        self.journal.event("published", files=len(published),
                           bytes=sum(files[rel].stat().st_size for rel in published))  # the local copies: same bytes
        if not self.settings.keep_store:
            self.store.remove_all()
            self.journal.event("store_removed")
        self.journal.event("done")
        raise Stop(hb.DONE, reason=f"result published to {self.layout.result}")


def run(images, **options) -> int:
    """Run (or resume) the job; returns 0 when done, nonzero when this session ended otherwise.

    ``options`` are the fields of ``colab_side.settings`` (job, meshroom, drive_budget_gb, ...).
    """
    try:
        settings = make_settings(images=images, **options)
        check_colab_paths(settings)
    except SettingsError as exc:
        print(f"colab_side: {exc}")
        _tell_refused(options, str(exc))
        return 2
    return Session(settings).run()


def _tell_refused(options: dict, reason: str) -> None:
    """Settings refused before a session: where the job's folder can be named, its heartbeat says so (``failed
    BAD_INPUT``), so that the daemon tells the human instead of pressing Run all on the same values again."""
    job, root = options.get("job", "meshroom"), options.get("drive_root") or COLAB_DRIVE
    if not isinstance(job, str) or not is_job_name(job) or not Path(root).is_dir():
        return
    beat = hb.Heartbeat(job=job, session=f"refused-{uuid.uuid4().hex[:8]}", seq=1, time=utc_now(), phase=hb.FAILED,
                        session_started=utc_now(), cause=hb.BAD_INPUT, reason=reason,
                        action="correct that value in the notebook's form (or keepalive notebook's option), then Run all")
    path = hb.heartbeat_path(root, job)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        Drive(Path(root)).rewrite_bytes(path, beat.to_json().encode())
    except (OSError, DriveError):
        pass  # the line above is then all there is
