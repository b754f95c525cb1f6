"""What an engine tells the runner: its units of work, what each reads and writes, how to run one.

The runner (``colab_side.runner``) owns everything a job keeps across kills and shares between
sessions: the lease, the heartbeat, the events, the store of finished chunks on Drive, the Drive
budget, pruning, the job's identity and the published result. It knows no program. An engine
(``colab_side/meshroom/``, one package per engine) owns the program: installing it, saying which
units the job is made of, running one unit, and naming the result. docs/engines.md shows an
engine from scratch.

Units of work are *steps* made of *chunks*. A step's files live in one folder of the session's
local work folder (the *cache*); a chunk is the smallest piece the runner makes durable and the
most a kill loses. A step reads the files of the steps it depends on (``Work.dependencies``);
once every step that reads a step's files is durable, those files are never read again (pruning).
``Unit`` and ``Units`` are plain dataclasses for an engine without a graph of its own; Meshroom's
``Graph`` and ``Node`` have the same shape.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Protocol

from colab_side.budget import Archive

DONE, ERROR, STOPPED = "done", "error", "stopped"  # how one chunk ended (``Outcome.status``)


class Stop(Exception):
    """The session ends in a final phase (done, failed, blocked) with a named cause."""

    def __init__(self, phase: str, cause: str | None = None, reason: str = "", action: str = ""):
        super().__init__(reason)
        self.phase, self.cause, self.reason, self.action = phase, cause, reason, action

    @classmethod
    def of(cls, verdict) -> "Stop":
        """From a ``policy.Verdict``."""
        return cls(verdict.phase, verdict.cause, verdict.reason, verdict.action)


class Interrupted(Exception):
    """A chunk did not finish for a reason that a new session may not have: end this one."""


class Step(Protocol):
    """A step of work: ``chunk_count`` chunks whose files are in ``internal_folder(cache)``."""

    name: str

    @property
    def chunk_count(self) -> int: ...

    @property
    def archive_prefix(self) -> str:
        """The step's folder relative to the cache, as the store's archives name their members."""

    def internal_folder(self, cache) -> Path: ...


class Work(Protocol):
    """A job's steps and who reads whom (Meshroom's ``Graph``, or ``Units``)."""

    nodes: Mapping[str, Step]

    def order(self) -> list[str]:
        """Every step, the ones it depends on first: the order the runner computes them in."""

    def dependencies(self, name: str) -> set[str]:
        """Steps whose files ``name`` reads."""

    def consumers(self, name: str) -> set[str]:
        """Steps that read ``name``'s files."""

    def publish_nodes(self) -> set[str]:
        """Steps whose files are the result: never pruned before it is published and verified."""

    @property
    def chunks_total(self) -> int: ...


@dataclass(frozen=True)
class Unit:
    """A step for an engine without a graph of its own: ``folder`` is relative to the cache."""

    name: str
    chunks: int
    folder: str
    reads: frozenset = frozenset()

    @property
    def chunk_count(self) -> int:
        return self.chunks

    @property
    def archive_prefix(self) -> str:
        return self.folder

    def internal_folder(self, cache) -> Path:
        return Path(cache) / self.folder


@dataclass(frozen=True)
class Units:
    """``Work`` from a list of ``Unit`` given in compute order; ``results``: the steps whose files are published."""

    steps: tuple
    results: frozenset = frozenset()
    nodes: dict = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "nodes", {step.name: step for step in self.steps})
        for step in self.steps:
            unknown = set(step.reads) - set(self.nodes)
            if unknown or any(self.order().index(r) > self.order().index(step.name) for r in step.reads):
                raise ValueError(f"step {step.name} reads {', '.join(sorted(unknown or step.reads))}, "
                                 "which is not an earlier step")

    def order(self) -> list[str]:
        return [step.name for step in self.steps]

    def dependencies(self, name: str) -> set[str]:
        return set(self.nodes[name].reads)

    def consumers(self, name: str) -> set[str]:
        return {step.name for step in self.steps if name in step.reads}

    def publish_nodes(self) -> set[str]:
        return set(self.results)

    @property
    def chunks_total(self) -> int:
        return sum(step.chunks for step in self.steps)


@dataclass(frozen=True)
class Outcome:
    """How one chunk ended: ``DONE`` with the files it wrote (relative to its step's folder), ``ERROR``
    (the program itself failed: counted per session, final after ``max_node_errors``), or ``STOPPED``
    (interrupted: the next session computes it again)."""

    status: str
    files: tuple = ()
    code: int | None = None  # the program's exit code
    detail: str = ""  # the program's own word for the state, for the log
    log_tail: tuple = ()  # the last lines of the program's log (ERROR)


class Host(Protocol):
    """What the runner lends an engine (the ``Session``)."""

    settings: object  # colab_side.settings.Settings
    images: list  # the job's image files (Path), sorted
    drive: object  # colab_side.drive.Drive: every Drive call goes through it (time limit, retries)
    layout: object  # colab_side.layout: the job's folders on Drive (install_dir, project, ...)
    local: Path  # the runtime's local work folder
    store: object  # colab_side.store.Store
    lease: object  # colab_side.lease.Lease: ``check()`` before writing anything the job shares
    journal: object  # colab_side.events.Journal: ``log(line)``, ``event(name, **fields)``
    beat: object  # colab_side.beat.HeartbeatWriter: ``session``, ``update(**fields)``

    def execute(self, command: list[str]) -> int:
        """Run a program (its output to the log, stopped when the session loses the lease)."""

    def tick(self, step: str, elapsed: float, line: str | None) -> None:
        """A running chunk's news: seconds so far, its latest log line."""


class Engine(Protocol):
    """A program behind the runner. Its constructor takes the ``Settings`` and raises ``Stop`` on bad input."""

    name: str
    needs_gpu: bool  # a runtime without a GPU is blocked NO_GPU (unless the settings say gpu_required=False)

    def install(self, host: Host) -> None:
        """Make the program runnable on this runtime (once per Drive, then from Drive)."""

    def plan(self, host: Host) -> Work:
        """The job's steps, the same in every session (saved on Drive at the first)."""

    def prepare(self, work: Work, cache: Path) -> None:
        """After the store is restored into ``cache``: clear what a killed session left half done."""

    def mark_done(self, step: Step, chunk: int, cache: Path) -> None:
        """A pruned step's chunk: leave what the program needs to skip it (its files are gone)."""

    def run_unit(self, host: Host, work: Work, step: Step, chunk: int, cache: Path) -> Outcome:
        """Compute one chunk into ``step.internal_folder(cache)``."""

    def snapshot(self, folder: Path) -> dict:
        """relative path → (size, mtime_ns) of the program's files below ``folder`` (its temp files left out)."""

    def result_files(self, work: Work, cache: Path) -> dict:
        """result name → file in ``cache``: what is published."""

    def describe_result(self, work: Work) -> str:
        """What the result should have been, for the message when ``result_files`` found nothing."""

    def estimated_chunk_seconds(self, work: Work, images: int) -> dict:
        """step → seconds per chunk before any is measured (ETA and the budget's value of an archive)."""

    def adopt(self, host: Host, work: Work, folder: Path) -> None:
        """Take over finished steps from a folder of the program's own (``adopt_cache``); ``Stop`` if it has none."""


@dataclass(frozen=True)
class Estimate:
    """A job's steps for some number of images, with estimated bytes and seconds per chunk (``plan``)."""

    graph: Work
    chunk_bytes: dict  # (step, chunk) -> bytes
    chunk_seconds: dict  # (step, chunk) -> seconds

    def archive(self, step: str, chunk: int):
        """The chunk as the budget sees it."""
        return Archive(step, chunk, self.chunk_bytes[step, chunk], self.chunk_seconds[step, chunk])


class SizeModel(Protocol):
    """An engine's figures for ``plan`` and the runner's budget check: its ``estimates`` module, with these
    functions. ``model["colab"]["session_seconds"]`` is a runtime's lifetime."""

    def load(self, path=None) -> dict:
        """The defaults with a user's ``--model`` file over them; ``ValueError`` of one line if unusable."""

    def for_params(self, model: dict, params) -> dict:
        """The model for a job run with these ``--param`` values (``ValueError`` of one line if unusable)."""

    def estimate(self, model: dict, release: str, images: int) -> Estimate: ...


# name → package holding ``engine.make`` and ``estimates``
ENGINES = {"meshroom": "colab_side.meshroom", "colmap": "colab_side.colmap"}


def _module(name: str, part: str):
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}: use one of {', '.join(ENGINES)}")
    return importlib.import_module(f"{ENGINES[name]}.{part}")


def make(name: str, settings) -> Engine:
    """The engine ``name`` for these settings; ``Stop`` on settings it cannot use."""
    return _module(name, "engine").make(settings)


def size_model(name: str) -> SizeModel:
    """The engine's figures for ``plan`` (its ``estimates`` module)."""
    return _module(name, "estimates")
