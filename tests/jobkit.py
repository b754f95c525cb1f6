"""Test helpers around the sample job (see keepalive_sim.sample_job), and running a session in-process."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import pytest

from colab_side import heartbeat as hb
from colab_side.drive import Drive, FaultPlan
from colab_side.runner import Session
from colab_side.settings import make as make_settings
from keepalive_sim.sample_job import SampleJob as Job, make_images  # noqa: F401


class FakeClock:
    """A clock that only the Drive's back-off sleeps move: outages of minutes take no time."""

    def __init__(self):
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


def faulty_drive(job: Job, plan: FaultPlan | None = None, clock: FakeClock | None = None, **options) -> Drive:
    """A Drive on the job's folder whose faults follow ``plan`` on ``clock``."""
    clock = clock or FakeClock()
    plan = plan or FaultPlan()
    plan.clock = clock.now
    return Drive(job.drive, sleep=clock.sleep, faults=plan, backoff=1.0, **options)


def run_session(job: Job, drive: Drive | None = None, local: Path | None = None, **options) -> tuple[int, str]:
    """Run one session in this process (Meshroom runs as subprocesses); return (exit code, its output)."""
    settings = make_settings(images=job.images, job=job.name, drive_root=job.drive, meshroom_url=str(job.release),
                             local_dir=local or job.local, heartbeat_seconds=3600.0, **options)
    saved = {key: os.environ.get(key) for key in ("PATH", "MESHROOM_STANDIN_CHUNK_SECONDS")}
    os.environ.update({key: job.env[key] for key in saved})
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            code = Session(settings, drive=drive or faulty_drive(job)).run()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return code, out.getvalue()


def final_beat(job: Job) -> hb.Heartbeat:
    return hb.read(job.job_dir / hb.FILENAME)


_REFERENCES: dict[int, dict[str, bytes]] = {}


def reference_result(root: Path, images: int) -> dict[str, bytes]:
    """The result of an uninterrupted run on ``images`` sample images (computed once per test process)."""
    if images not in _REFERENCES:
        job = Job(root, images=images)
        code, out = run_session(job)
        assert code == 0, out[-2000:]
        _REFERENCES[images] = job.result_files()
    return _REFERENCES[images]


SMALL = 4  # images of the in-process store tests: every node runs, DepthMap in two chunks


@pytest.fixture
def job(tmp_path) -> Job:
    """A small sample job (import this fixture into a test module)."""
    return Job(tmp_path, images=SMALL)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, bytes]:
    """The small job's result from an uninterrupted run."""
    return reference_result(tmp_path_factory.mktemp("reference"), SMALL)
