"""Where everything lives on Drive.

::

    <drive_root>/keepalive/
        _meshroom/                  one install cache for all jobs (archives, pycolmap/ wheels; + .sha256)
        <job>/
            job.json                identity of the job (image names, sizes, digests; engine, release, pipeline,
                                    parameters, overrides) and its twin job.bak.json
            project.mg              the graph, saved by the first session (Meshroom)
            engine-plan.json        what else defines the steps, saved by the first session (COLMAP: dense or not)
            lease.json              which session may write (the newest)
            heartbeat.json          rewritten every few seconds
            events.jsonl            append-only event log
            logs/<session>.log      one log per session
            store/                  one archive per finished chunk + manifest.json
            result/                 the verified final result
            replan.json             a ``--replan`` under way (and its twin): finished by the next session
            replaced-<time>-<id>/   what ``--replan`` set aside (kept, never deleted)

    <local-dir>/colab_side/         the session's work folder on the runtime's disk (marked as ours)

The daemon finds the heartbeat of a job the same way, from the Drive folder on the PC.
"""

from __future__ import annotations

import time
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path

from colab_side import heartbeat

INSTALL_DIR_NAME = "_meshroom"
WORK_DIR_NAME = "colab_side"
OWNED_MARKER = ".made-by-colab_side"
JOB_NAME_MAX = 64
# Folder names Windows refuses (Drive for desktop syncs the job's folder to a Windows PC), with or without a suffix.
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{n}" for n in range(10)), *(f"LPT{n}" for n in range(10))}


def is_job_name(job) -> bool:
    """Whether ``job`` is usable as the job's folder on Drive, on the runtime and on any PC.

    Letters and digits of any script (castle, 城, Schloß), then also '.', '_' or '-'; at most 64 characters,
    in Unicode's composed form (NFC, so that one name is one folder on every system); never a path separator,
    whitespace or a control character, never ending in '.', never a name Windows reserves (CON, NUL, COM1...).
    """
    return (isinstance(job, str) and 0 < len(job) <= JOB_NAME_MAX and job[0].isalnum() and not job.endswith(".")
            and all(ch.isalnum() or ch in "._-" for ch in job)
            and unicodedata.normalize("NFC", job) == job
            and job.split(".")[0].upper() not in _WINDOWS_RESERVED and job != INSTALL_DIR_NAME)


def check_job_name(job: str) -> str:
    """Return ``job`` if it is a safe folder name, else raise ValueError saying what to use."""
    if not is_job_name(job):
        raise ValueError(
            f"job name {job!r} is not usable: use letters (any script) or digits, then also '.', '_' or '-' "
            f"(at most {JOB_NAME_MAX}, no spaces or slashes), e.g. castle or 城-2026"
        )
    return job


@dataclass(frozen=True)
class JobLayout:
    drive_root: Path
    job: str

    @property
    def root(self) -> Path:
        return Path(self.drive_root) / heartbeat.ROOT_NAME

    @property
    def install_dir(self) -> Path:
        return self.root / INSTALL_DIR_NAME

    @property
    def job_dir(self) -> Path:
        return heartbeat.job_dir(self.drive_root, self.job)

    @property
    def identity(self) -> Path:
        return self.job_dir / "job.json"

    @property
    def project(self) -> Path:
        return self.job_dir / "project.mg"

    @property
    def engine_plan(self) -> Path:
        return self.job_dir / "engine-plan.json"

    @property
    def lease(self) -> Path:
        return self.job_dir / "lease.json"

    @property
    def replan(self) -> Path:
        """A ``--replan`` under way: where the old records go and the new job (with its twin)."""
        return self.job_dir / "replan.json"

    def replaced(self) -> str:
        """A new name, unique, for the folder of the records ``--replan`` sets aside."""
        return f"replaced-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"

    @property
    def heartbeat(self) -> Path:
        return self.job_dir / heartbeat.FILENAME

    @property
    def events(self) -> Path:
        return self.job_dir / "events.jsonl"

    @property
    def logs(self) -> Path:
        return self.job_dir / "logs"

    @property
    def store(self) -> Path:
        return self.job_dir / "store"

    @property
    def manifest(self) -> Path:
        return self.store / "manifest.json"

    @property
    def result(self) -> Path:
        return self.job_dir / "result"


def job_layout(drive_root, job: str) -> JobLayout:
    return JobLayout(Path(drive_root), check_job_name(job))


class NotOurs(ValueError):
    """A folder the module would work in exists and was not made by it."""


def work_dir(local_dir) -> Path:
    """``<local_dir>/colab_side``, made and marked as ours; NotOurs if it exists without the mark.

    Only this folder is ever emptied: a seed cache or any ``cache/`` or ``meshroom/`` already in
    ``local_dir`` is left as it is.
    """
    folder = Path(local_dir) / WORK_DIR_NAME
    if folder.exists() and not (folder / OWNED_MARKER).is_file():
        raise NotOurs(f"{folder} exists and was not made by colab_side: pass another local_dir "
                      "(--local-dir), or move that folder away")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / OWNED_MARKER).touch()
    return folder
