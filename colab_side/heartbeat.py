"""The heartbeat: the one contract between the notebook (writer) and the daemon (reader).

The notebook rewrites ``heartbeat.json`` in its job folder on Drive, whole and atomically
(temp file + rename), every few seconds and at every change of phase. The daemon on the
user's PC reads the same file through Google Drive for desktop. Both halves import this
module and nothing else of each other, so a field added here is added for both.

Reading is forgiving: a file cut short by a sync, or written by a newer schema that added
fields, must never crash the reader. ``parse`` raises ``HeartbeatError`` (one line, what is
wrong) for what cannot be read at all and ignores fields it does not know.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

SCHEMA_VERSION = 1
FILENAME = "heartbeat.json"
ROOT_NAME = "keepalive"  # the folder under the Drive root that holds every job


def job_dir(drive_root, job: str) -> Path:
    """The job's folder under a Drive root (``/content/drive/MyDrive`` or the PC's ``My Drive``)."""
    return Path(drive_root) / ROOT_NAME / job


def heartbeat_path(drive_root, job: str) -> Path:
    return job_dir(drive_root, job) / FILENAME

class _Named(str, Enum):
    """A string enum: members compare, hash, print and serialise as their plain value."""

    def __str__(self) -> str:
        return self.value


class Phase(_Named):
    """Where the session is, in the order a healthy session passes through them."""

    STARTING = "starting"
    INSTALLING = "installing"
    PLANNING = "planning"
    COMPUTING = "computing"
    PRUNING = "pruning"
    PUBLISHING = "publishing"
    DONE = "done"
    FAILED = "failed"
    BLOCKED = "blocked"
    RESTARTABLE = "restartable"  # ended by itself for a cause a new session may not have: restart it


class Cause(_Named):
    """Why a session ended other than ``done``: named for ``failed``, ``blocked`` and restartable ends."""

    CODE_ERROR = "CODE_ERROR"  # a Meshroom node ended in ERROR in several sessions
    NO_GPU = "NO_GPU"  # the runtime has no GPU
    DRIVE_ERROR = "DRIVE_ERROR"  # Drive kept failing after remounts
    DRIVE_FULL = "DRIVE_FULL"  # not enough free space on Drive
    DISK_FULL = "DISK_FULL"  # the runtime's local disk cannot hold the cache
    BAD_INPUT = "BAD_INPUT"  # images missing, empty, not images; a job folder of another job
    DRIVE_TIMEOUT = "DRIVE_TIMEOUT"  # a Drive remount did not come back within its time limit (restartable)
    SUPERSEDED = "SUPERSEDED"  # a newer session took the job's lease (events only; it owns the heartbeat)


PHASES = tuple(Phase)
# Phases after which the notebook stops by itself: the daemon must not restart it.
FINAL_PHASES = (Phase.DONE, Phase.FAILED, Phase.BLOCKED)
CAUSES = tuple(Cause)

# The module-level names that code written before the enums uses (``hb.DONE``, ``hb.NO_GPU``).
STARTING, INSTALLING, PLANNING, COMPUTING, PRUNING, PUBLISHING, DONE, FAILED, BLOCKED, RESTARTABLE = PHASES
CODE_ERROR, NO_GPU, DRIVE_ERROR, DRIVE_FULL, DISK_FULL, BAD_INPUT, DRIVE_TIMEOUT, SUPERSEDED = CAUSES


class HeartbeatError(ValueError):
    """The heartbeat file cannot be read (half-written, not JSON, not a heartbeat)."""


@dataclass
class Heartbeat:
    """One snapshot of the job, as the notebook sees it.

    Times are UTC ISO-8601 strings written by the runtime's clock; the daemon never
    compares them with its own clock to judge liveness (it watches ``seq`` change instead).
    """

    job: str
    session: str  # new for every runtime (every Run all)
    seq: int  # +1 at every write within a session
    time: str  # UTC, when this beat was written
    phase: str
    schema: int = SCHEMA_VERSION
    session_started: str = ""  # UTC, when this session began
    node: str | None = None  # current node, e.g. "DepthMap_1"
    chunk: int | None = None  # current chunk (iteration) of that node
    nodes_done: int = 0
    nodes_total: int = 0
    chunks_done: int = 0
    chunks_total: int = 0
    progress: float = 0.0  # 0..1, weighted by measured chunk time where known
    eta_seconds: float | None = None
    gpu: str | None = None
    local_free_bytes: int | None = None
    drive_free_bytes: int | None = None
    cache_bytes: int | None = None
    durable_chunks: int = 0  # chunks whose archive is in the store's manifest
    pruned_bytes: int = 0  # bytes freed on Drive by pruning, all sessions
    last_log_line: str = ""
    cause: str | None = None  # one of CAUSES, for failed/blocked
    reason: str | None = None  # one line: what happened
    action: str | None = None  # one line: what the human should do
    warnings: list[str] = field(default_factory=list)  # e.g. the 12-hour risk

    @property
    def final(self) -> bool:
        return self.phase in FINAL_PHASES

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True)


_FIELDS = {f.name: f for f in dataclasses.fields(Heartbeat)}
_REQUIRED = ("job", "session", "seq", "time", "phase")


def parse(text: str) -> Heartbeat:
    """Read a heartbeat from JSON text; unknown fields are ignored."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise HeartbeatError(f"heartbeat is not valid JSON ({exc.msg}); it may be half-synced") from None
    if not isinstance(data, dict):
        raise HeartbeatError("heartbeat is not a JSON object")
    missing = [name for name in _REQUIRED if name not in data]
    if missing:
        raise HeartbeatError(f"heartbeat lacks {', '.join(missing)}")
    if not isinstance(data["seq"], int) or not isinstance(data["session"], str):
        raise HeartbeatError("heartbeat has a seq or session of the wrong type")
    if data["phase"] not in PHASES:
        raise HeartbeatError(f"heartbeat has an unknown phase {data['phase']!r}")
    known = {key: value for key, value in data.items() if key in _FIELDS}
    return Heartbeat(**known)


def timestamp(text: str) -> float | None:
    """POSIX seconds of a heartbeat time (UTC ISO-8601), or None if it cannot be read."""
    try:
        stamp = datetime.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=datetime.timezone.utc)
    return stamp.timestamp()


def read(path) -> Heartbeat:
    """Read the heartbeat file at ``path``; OSError if it is not there."""
    with open(path, encoding="utf-8") as handle:
        return parse(handle.read())
