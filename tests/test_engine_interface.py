"""The runner with an engine that is not Meshroom: the interface of colab_side/engine.py is all it needs."""

from __future__ import annotations

import contextlib
import io

import pytest

from colab_side import heartbeat as hb
from colab_side.engine import DONE, STOPPED, Outcome, Unit, Units
from colab_side.layout import job_layout
from colab_side.runner import Session
from colab_side.settings import make as make_settings


class Copier:
    """Copies the images three a chunk, then lists the copies; stops once at ``stop_at`` (a kill)."""

    name = "copier"
    needs_gpu = False

    def __init__(self, settings, stop_at=None):
        self.settings, self.stop_at, self.runs = settings, stop_at, []

    def install(self, host):
        pass

    def plan(self, host):
        self.images = sorted(p for p in self.settings.images.iterdir() if p.is_file())
        copy = Unit("copy", -(-len(self.images) // 3), "copy/v1")
        return Units((copy, Unit("list", 1, "list/v1", frozenset({"copy"}))), results=frozenset({"list"}))

    def run_unit(self, host, work, step, chunk, cache):
        if (step.name, chunk) == self.stop_at:
            return Outcome(STOPPED, code=-9, detail="killed")
        self.runs.append((step.name, chunk))
        out = step.internal_folder(cache)
        out.mkdir(parents=True, exist_ok=True)
        if step.name == "copy":
            batch = self.images[chunk * 3:(chunk + 1) * 3]
            for image in batch:
                (out / image.name).write_bytes(image.read_bytes())
            return Outcome(DONE, tuple(image.name for image in batch))
        names = sorted(p.name for p in work.nodes["copy"].internal_folder(cache).iterdir())
        (out / "list.txt").write_text("\n".join(names))
        return Outcome(DONE, ("list.txt",))

    def prepare(self, work, cache):
        pass

    def mark_done(self, step, chunk, cache):
        pass

    def snapshot(self, folder):
        return {p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
                for p in folder.rglob("*") if p.is_file()}

    def result_files(self, work, cache):
        path = work.nodes["list"].internal_folder(cache) / "list.txt"
        return {"list.txt": path} if path.exists() else {}

    def describe_result(self, work):
        return "list.txt"

    def estimated_chunk_seconds(self, work, images):
        return {name: 1.0 for name in work.nodes}

    def adopt(self, host, work, folder):
        raise AssertionError("not asked")


@pytest.fixture
def settings(tmp_path):
    images = tmp_path / "drive" / "images"
    images.mkdir(parents=True)
    for index in range(7):
        (images / f"img{index}.jpg").write_bytes(bytes([index]) * (100 + index))
    return make_settings(images=images, job="copier", drive_root=tmp_path / "drive", local_dir=tmp_path / "local",
                         heartbeat_seconds=3600.0, gpu_required=False)


def session(settings, engine) -> int:
    with contextlib.redirect_stdout(io.StringIO()):
        return Session(settings, engine=engine).run()


def test_another_engine_resumes_from_the_store_and_publishes(settings):
    killed = Copier(settings, stop_at=("copy", 2))
    assert session(settings, killed) != 0
    assert killed.runs == [("copy", 0), ("copy", 1)]
    resumed = Copier(settings)
    assert session(settings, resumed) == 0
    assert resumed.runs == [("copy", 2), ("list", 0)]  # chunks 0 and 1 came back from the store
    result = job_layout(settings.drive_root, settings.job).result / "list.txt"
    assert result.read_text().split() == [f"img{index}.jpg" for index in range(7)]
    assert hb.read(job_layout(settings.drive_root, settings.job).heartbeat).phase == hb.DONE


def test_units_refuse_a_step_that_reads_a_later_one():
    with pytest.raises(ValueError, match="not an earlier step"):
        Units((Unit("a", 1, "a", frozenset({"b"})), Unit("b", 1, "b")))
