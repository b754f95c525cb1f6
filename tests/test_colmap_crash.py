"""What running COLMAP's dense steps on an H200 taught (docs/colmap.md): a worker that crashes is the unit's failure
(counted, then final), not a stop restarted for ever (pycolmap 4.2.1's CUDA wheel segfaulted in Poisson meshing's
surface trimmer); the dense steps' defaults."""

from __future__ import annotations

import signal
from pathlib import Path
from types import SimpleNamespace

import pytest

from colab_side.colmap.engine import ColmapEngine
from colab_side.colmap.options import Choices
from colab_side.engine import ERROR, STOPPED, Unit
from colab_side.settings import make as make_settings


def run_unit_ending(tmp_path: Path, code: int):
    """The engine's outcome for a unit whose worker process ends with ``code`` (negative: by that signal)."""
    settings = make_settings(images=str(tmp_path), engine="colmap", drive_root=str(tmp_path))
    engine = ColmapEngine(settings)
    engine.plan_file = tmp_path / "colmap-plan.json"
    (tmp_path / "log.txt").write_text("")
    host = SimpleNamespace(local=tmp_path, execute=lambda command: code, tick=lambda *args: None,
                           journal=SimpleNamespace(local_log_path=tmp_path / "log.txt"))
    step = Unit("meshing", 1, "meshing", frozenset({"fusion"}))
    return engine.run_unit(host, None, step, 0, tmp_path / "cache")


@pytest.mark.parametrize("code, says", [(-signal.SIGSEGV, "the meshing worker crashed (SIGSEGV)"),
                                        (-signal.SIGKILL, "the meshing worker crashed (SIGKILL)"),
                                        (1, "the meshing worker ended with exit code 1")])
def test_a_crashed_worker_is_the_units_failure_with_what_happened(tmp_path, code, says):
    outcome = run_unit_ending(tmp_path, code)
    assert outcome.status == ERROR and outcome.log_tail == (says,)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_worker_the_session_stopped_is_computed_again(tmp_path, stop):
    assert run_unit_ending(tmp_path, -stop).status == STOPPED


def test_dense_steps_run_on_one_thread_and_poisson_meshing_does_not_trim_unless_asked():
    pycolmap = pytest.importorskip("pycolmap")
    chosen = Choices.read([])
    assert chosen.build("stereo_fusion", pycolmap).num_threads == 1  # (byte-identical dense results, docs/colmap.md)
    assert chosen.build("poisson_meshing", pycolmap).num_threads == 1
    assert chosen.build("poisson_meshing", pycolmap).trim == 0
    assert Choices.read(["poisson_meshing.trim=7"]).build("poisson_meshing", pycolmap).trim == 7
