"""The heartbeat: the one contract between the notebook (writer) and the daemon (reader).

The notebook rewrites ``heartbeat.json`` in its job folder on Drive, whole and in place (a
rename over it would send every old copy to Drive's Trash, which counts against the quota), every
few seconds and at every change of phase; a reader may see it cut and reads it again. The daemon on the
user's PC reads the same file through Google Drive for desktop. Both halves import this
module and nothing else of each other, so a field added here is added for both.

Reading is typed and never crashes: a file cut short by a sync, binary, nested too deeply, or
written by a newer schema raises ``HeartbeatError`` (one line, what is wrong); an optional field
of the wrong type (``progress: "50%"``) is dropped; fields it does not know are ignored.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
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
    DRIVE_TIMEOUT = "DRIVE_TIMEOUT"  # a Drive call or remount did not come back within its time limit (restartable)
    SUPERSEDED = "SUPERSEDED"  # a newer session took the job's lease (events only; it owns the heartbeat)
    NOTHING_TO_PUBLISH = "NOTHING_TO_PUBLISH"  # the finished graph yields no result file (failed, never done)


PHASES = tuple(Phase)
# Phases after which the notebook stops by itself: the daemon must not restart it.
FINAL_PHASES = (Phase.DONE, Phase.FAILED, Phase.BLOCKED)
CAUSES = tuple(Cause)

# The module-level names that code written before the enums uses (``hb.DONE``, ``hb.NO_GPU``).
STARTING, INSTALLING, PLANNING, COMPUTING, PRUNING, PUBLISHING, DONE, FAILED, BLOCKED, RESTARTABLE = PHASES
CODE_ERROR, NO_GPU, DRIVE_ERROR, DRIVE_FULL, DISK_FULL, BAD_INPUT, DRIVE_TIMEOUT, SUPERSEDED, \
    NOTHING_TO_PUBLISH = CAUSES


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
    eta_seconds: float | None = None  # None while estimating (too few measured chunk times: policy.eta_seconds)
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
    # The VM's vital signs (colab_side/vitals.py), None where unknown; a heartbeat without them is still read.
    ram_used_bytes: int | None = None
    ram_total_bytes: int | None = None
    process_rss_bytes: int | None = None  # the job's own process
    uptime_seconds: int | None = None  # the VM's, since it booted
    gpu_memory_used_bytes: int | None = None
    gpu_memory_total_bytes: int | None = None
    gpu_utilization: float | None = None  # 0..1, as nvidia-smi says
    warnings: list[str] = field(default_factory=list)  # e.g. the 12-hour risk
    history: list[str] = field(default_factory=list)  # what this session did to the job, e.g. whom it superseded

    @property
    def final(self) -> bool:
        return self.phase in FINAL_PHASES

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True)


MAX_BYTES = 1 << 20  # a heartbeat is about 1 KB; anything far bigger is not one


def _text(value) -> bool:
    """A string that can be written out again (no lone surrogates from a ``\\ud800`` escape)."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _seconds(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def _fraction(value) -> bool:
    return _seconds(value) and value <= 1


def _texts(value) -> bool:
    return isinstance(value, list) and all(_text(item) for item in value)


def _optional(check):
    return lambda value: value is None or check(value)


def _one_of(choices):
    return lambda value: isinstance(value, str) and value in choices


# Every field's check. Required fields that fail make the file unreadable; optional ones are dropped.
_CHECKS = {
    "job": _text, "session": _text, "seq": _count, "time": _text, "phase": _one_of(PHASES), "schema": _count,
    "session_started": _text, "node": _optional(_text), "chunk": _optional(_count),
    "nodes_done": _count, "nodes_total": _count, "chunks_done": _count, "chunks_total": _count,
    "progress": _fraction, "eta_seconds": _optional(_seconds), "gpu": _optional(_text),
    "local_free_bytes": _optional(_count), "drive_free_bytes": _optional(_count), "cache_bytes": _optional(_count),
    "durable_chunks": _count, "pruned_bytes": _count, "last_log_line": _text,
    "cause": _optional(_one_of(CAUSES)), "reason": _optional(_text), "action": _optional(_text),
    "ram_used_bytes": _optional(_count), "ram_total_bytes": _optional(_count),
    "process_rss_bytes": _optional(_count), "uptime_seconds": _optional(_count),
    "gpu_memory_used_bytes": _optional(_count), "gpu_memory_total_bytes": _optional(_count),
    "gpu_utilization": _optional(_fraction),
    "warnings": _texts, "history": _texts,
}
_REQUIRED = ("job", "session", "seq", "time", "phase")


def _reject_constant(name: str):
    raise HeartbeatError(f"heartbeat holds {name}, which is not JSON")


def _decode(data: str | bytes) -> object:
    if isinstance(data, bytes):
        if len(data) > MAX_BYTES:
            raise HeartbeatError(f"heartbeat is {len(data)} bytes, far too big to be one")
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise HeartbeatError("heartbeat is not UTF-8 text; it may be half-synced") from None
    try:
        return json.loads(data, parse_constant=_reject_constant)
    except RecursionError:
        raise HeartbeatError("heartbeat is nested too deeply to be one") from None
    except HeartbeatError:
        raise
    except ValueError as exc:  # JSONDecodeError, or an integer with too many digits
        raise HeartbeatError(f"heartbeat is not valid JSON ({getattr(exc, 'msg', exc)}); "
                             "it may be half-synced") from None


def parse(data: str | bytes) -> Heartbeat:
    """Read a heartbeat from JSON text or bytes, field by field.

    ``HeartbeatError`` if it cannot be read: not UTF-8 or not JSON (half-synced), not an object, a required
    field missing or of the wrong type, or a newer schema. An optional field of the wrong type is dropped
    (its default is used); unknown fields are ignored.
    """
    data = _decode(data)
    if not isinstance(data, dict):
        raise HeartbeatError("heartbeat is not a JSON object")
    schema = data.get("schema", SCHEMA_VERSION)
    if not _count(schema):
        raise HeartbeatError(f"heartbeat has a schema of the wrong type ({type(schema).__name__})")
    if schema > SCHEMA_VERSION:
        raise HeartbeatError(f"heartbeat is of schema {schema}, newer than this reader's {SCHEMA_VERSION}: "
                             "update colab-keepalive")
    missing = [name for name in _REQUIRED if name not in data]
    if missing:
        raise HeartbeatError(f"heartbeat lacks {', '.join(missing)}")
    wrong = [name for name in _REQUIRED if not _CHECKS[name](data[name])]
    if wrong:
        raise HeartbeatError(f"heartbeat has {', '.join(wrong)} of the wrong type or value")
    known = {name: value for name, value in data.items() if name in _CHECKS and _CHECKS[name](value)}
    for name, choices in (("phase", PHASES), ("cause", CAUSES)):
        if known.get(name) is not None:
            known[name] = choices[choices.index(known[name])]  # the constant itself
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
    """Read the heartbeat file at ``path``: OSError if it cannot be opened, HeartbeatError if it is no heartbeat."""
    with open(path, "rb") as handle:
        return parse(handle.read(MAX_BYTES + 1))
