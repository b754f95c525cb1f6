"""COLMAP as an engine of the runner: pycolmap installed once per Drive, each chunk computed by ``worker``.

The job's steps (``units``) are a pure function of the image names and the ``--param`` choices, both
recorded in ``job.json`` by the runner, so every session plans the same units. Whether the dense steps
run is decided at the first session (dense=auto: where pycolmap has CUDA) and kept on Drive beside the
job (``engine-plan.json``), so that a later session on another runtime never plans other steps; so is the
matcher ``matcher=auto`` comes to (``units.resolve``: by the image count).
"""

from __future__ import annotations

import json
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

from colab_side import heartbeat as hb
from colab_side.colmap import estimates, install, units
from colab_side.colmap.options import Choices, OptionError
from colab_side.colmap.worker import FAILED, TEMP
from colab_side.engine import DONE, ERROR, STOPPED, Host, Interrupted, Outcome, Stop, Units
from colab_side.meshroom.chunk_log import ChunkWatch

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)  # how a session stops a worker: not the worker's fault

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds colab_side, for the worker process
NO_CUDA = ("pycolmap on this runtime has no CUDA", "choose a GPU runtime (Runtime > Change runtime type > GPU) "
           "and Run all, or pass --param dense=off for the sparse model only")


class ColmapEngine:
    name = "colmap"

    def __init__(self, settings):
        self.settings = settings
        try:
            self.choices = Choices.read(settings.params)
        except OptionError as exc:
            raise Stop(hb.FAILED, hb.BAD_INPUT, str(exc), "correct the --param values (docs/colmap.md lists them), "
                       "then Run all") from None
        self.needs_gpu = self.choices.dense == "on"
        self.has_cuda = False

    # --- install and plan ----------------------------------------------------------------------------

    def install(self, host: Host) -> None:
        started = time.monotonic()
        try:
            pycolmap = install.ensure(host.layout.install_dir, host.local, host.drive, log=host.journal.log)
        except install.InstallError as exc:
            raise Stop(hb.BLOCKED, hb.BAD_INPUT, str(exc), "check the network, then Run all") from None
        try:
            self.choices.check(pycolmap)
        except OptionError as exc:
            raise Stop(hb.FAILED, hb.BAD_INPUT, str(exc), "correct the --param value, then Run all") from None
        self.has_cuda = bool(pycolmap.has_cuda)
        if self.choices.dense == "on" and not self.has_cuda:
            raise Stop(hb.BLOCKED, hb.NO_GPU, *NO_CUDA)
        host.journal.event("install", pycolmap=pycolmap.__version__, cuda=self.has_cuda,
                           seconds=round(time.monotonic() - started, 2))

    def plan(self, host: Host) -> Units:
        self.images = Path(host.settings.images)
        self.names = sorted(image.name for image in host.images)
        if len(self.names) < 2:
            raise Stop(hb.FAILED, hb.BAD_INPUT, f"image folder {self.images} holds {len(self.names)} image",
                       "COLMAP needs at least 2 overlapping photos: add them, then Run all")
        path = host.layout.engine_plan
        try:
            saved = host.drive.read_json(path)
        except (ValueError, UnicodeDecodeError):
            saved = None  # unreadable: decided again, as at the first session
        if not isinstance(saved, dict) or not isinstance(saved.get("dense"), bool):
            saved = {"engine": self.name, "dense": self.choices.dense == "on" or (self.choices.dense == "auto"
                                                                                 and self.has_cuda),
                     "matcher": units.resolve(self.choices, len(self.names)).matcher}
            host.lease.check()
            host.drive.write_json(path, saved)
            if not saved["dense"]:
                host.journal.log("no CUDA in pycolmap on this runtime: the dense steps are skipped, the result is "
                                 "the sparse model" if self.choices.dense == "auto" else "dense=off: the result is "
                                 "the sparse model")
        if saved["dense"] and not self.has_cuda:
            raise Stop(hb.BLOCKED, hb.NO_GPU, f"{NO_CUDA[0]}, and this job's dense steps need it",
                       "choose a GPU runtime (Runtime > Change runtime type > GPU), then Run all")
        matcher = units.planned_matcher(saved, self.choices)
        self.choices = replace(self.choices, matcher=matcher)
        given = dict(self.choices.options.get("vocab_tree", ())).get("vocab_tree_path")
        self.users_tree = Path(given) if matcher == "vocabtree" and given else None
        if self.users_tree and not host.drive.call(given, self.users_tree.is_file, kind="read"):
            raise Stop(hb.FAILED, hb.BAD_INPUT, f"vocab_tree.vocab_tree_path {given} is not a file",
                       "correct the path, or leave it out to use COLMAP's own tree, then Run all")
        self.plan_file = host.local / "colmap-plan.json"
        self._write_plan()
        return units.steps(len(self.names), self.choices, saved["dense"])

    def _write_plan(self, tree: Path | None = None) -> None:
        """What every worker reads: the images, their names, the parameters with the matcher resolved and the
        vocabulary tree's copy on this runtime."""
        params = [*self.settings.params, f"matcher={self.choices.matcher}",
                  *([f"vocab_tree.vocab_tree_path={tree}"] if tree else [])]
        self.plan_file.write_text(json.dumps({"images": str(self.images), "names": self.names, "params": params}))

    def adopt(self, host: Host, work: Units, folder: Path) -> None:
        raise Stop(hb.FAILED, hb.BAD_INPUT, "adopt_cache takes a Meshroom cache, not a COLMAP one",
                   "remove adopt_cache (or use --engine meshroom), then Run all")

    # --- computing ---------------------------------------------------------------------------------

    def prepare(self, work: Units, cache: Path) -> None:
        pass  # the runner starts every session from a fresh cache; a chunk clears its own temporary files

    def mark_done(self, step, chunk: int, cache: Path) -> None:
        pass  # COLMAP needs nothing of a step whose files are gone: no later step reads them

    def run_unit(self, host: Host, work: Units, step, chunk: int, cache: Path) -> Outcome:
        if step.name == "retrieval":
            self._write_plan(self._tree(host))
        folder = step.internal_folder(cache)
        before = self.snapshot(folder)
        error = host.local / "colmap-error.txt"
        error.unlink(missing_ok=True)
        command = [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(PACKAGE_ROOT)!r}); "
                   "from colab_side.colmap.worker import main; sys.exit(main(sys.argv[1:]))",
                   str(self.plan_file), step.name, str(chunk), str(cache), "--error", str(error)]
        watch = ChunkWatch(host.journal.local_log_path, self.settings.heartbeat_seconds,
                           lambda elapsed, line: host.tick(step.name, elapsed, line))
        with watch:
            code = host.execute(command)
        if code == 0:
            after = self.snapshot(folder)
            return Outcome(DONE, tuple(sorted(rel for rel, sig in after.items() if before.get(rel) != sig)), code)
        if code < 0 and -code in STOP_SIGNALS:
            return Outcome(STOPPED, (), code, "stopped")  # the session (or the human) stopped it: computed again
        if code == FAILED and error.exists():
            reason = error.read_text()
        else:  # a crash: counted like a failure, so a chunk that always crashes fails the job instead of looping
            reason = f"the {step.name} worker " + (f"crashed ({signal.Signals(-code).name})" if code < 0 and
                                                  -code in signal.valid_signals() else f"ended with exit code {code}")
        return Outcome(ERROR, (), code, "failed", (reason,))

    def _tree(self, host: Host) -> Path:
        """The vocabulary tree copied to this runtime: the user's, or COLMAP's (kept on Drive, downloaded once)."""
        if self.users_tree:
            copy = host.local / "vocab-tree.bin"
            host.drive.copy_file(self.users_tree, copy)
            return copy
        try:
            return install.ensure_asset(host.layout.install_dir, host.local, host.drive, log=host.journal.log)
        except install.DownloadError as exc:
            raise Interrupted(f"{exc}; the next session tries again") from None
        except install.InstallError as exc:
            raise Stop(hb.BLOCKED, hb.BAD_INPUT, str(exc), "pass your own tree as --param "
                       "vocab_tree.vocab_tree_path=FILE (docs/colmap.md), then Run all") from None

    def snapshot(self, folder: Path) -> dict:
        """Every file below ``folder`` but the temporary ones (``.tmp-*``, as the worker names them)."""
        found = {}
        for path in sorted(Path(folder).rglob("*")) if Path(folder).is_dir() else ():
            rel = path.relative_to(folder)
            if any(part.startswith(TEMP) for part in rel.parts) or not path.is_file():
                continue
            stat = path.stat()
            found[rel.as_posix()] = (stat.st_size, stat.st_mtime_ns)
        return found

    # --- the result and the figures ----------------------------------------------------------------

    def result_files(self, work: Units, cache: Path) -> dict:
        """The sparse model as ``sparse/0/*.bin|txt``; with dense, ``fused.ply`` and ``meshed-poisson.ply``."""
        wanted = {rel: work.nodes["mapping"].internal_folder(cache) / rel for rel in units.MODEL_FILES}
        for step, name in (("fusion", units.FUSED), ("meshing", units.MESH)):
            if step in work.nodes:
                wanted[name] = work.nodes[step].internal_folder(cache) / name
        return {rel: path for rel, path in wanted.items() if path.is_file()}

    def describe_result(self, work: Units) -> str:
        return ", ".join([*units.MODEL_FILES, *(name for step, name in (("fusion", units.FUSED),
                                                                         ("meshing", units.MESH)) if step in work.nodes)])

    def estimated_chunk_seconds(self, work: Units, images: int) -> dict:
        return estimates.chunk_seconds(estimates.for_params(estimates.load(), self.settings.params), work, images,
                                       self.choices)


def make(settings) -> ColmapEngine:
    return ColmapEngine(settings)
