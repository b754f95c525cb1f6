"""The COLMAP engine (pycolmap) behind the runner: a small synthesized job ends done with the sparse model, and
the same job killed at random moments ends done with byte-identical model files."""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import wait_for
from hypothesis import given, settings
from hypothesis import strategies as st

pycolmap = pytest.importorskip("pycolmap")

from colab_side import heartbeat as hb  # noqa: E402
from colab_side.colmap import units  # noqa: E402
from colab_side.colmap.options import Choices, OptionError  # noqa: E402
from colab_side.events import read_events  # noqa: E402
from colab_side.layout import job_layout  # noqa: E402
from colab_side.runner import Session  # noqa: E402
from colab_side.settings import make as make_settings  # noqa: E402
from keepalive_sim.synthetic_images import synthesize  # noqa: E402

IMAGES = 8  # 800x600, 2,000 points: global mapping registers all 8 (docs/colmap.md)
PARAMS = ("batch=3", "block=7")  # 3 chunks of features, 4 of matches: 10 chunks in all
ROOT = Path(__file__).resolve().parents[1]
REFERENCE = pytest.mark.xdist_group("colmap-reference")  # the tests that compare with one uninterrupted run share it


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    return synthesize(tmp_path_factory.mktemp("colmap") / "images", IMAGES)  # 800x600, 2,000 points


def arguments(images: Path, root: Path, *extra: str) -> list[str]:
    return ["--engine", "colmap", "--images", str(images), "--job", "sfm", "--drive-root", str(root / "drive"),
            "--local-dir", str(root / "local"), "--heartbeat-seconds", "3600",
            *(f"--param={param}" for param in PARAMS), *extra]


def run_in_process(images: Path, root: Path, *extra: str) -> int:
    from colab_side.__main__ import parser

    options = vars(parser().parse_args(["run", *arguments(images, root, *extra)]))
    options.pop("command")
    with contextlib.redirect_stdout(io.StringIO()):
        return Session(make_settings(**options)).run()


def result(root: Path) -> dict[str, bytes]:
    folder = job_layout(root / "drive", "sfm").result
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def count(root: Path, event: str) -> int:
    """How many ``event`` events the job's sessions have written."""
    events = job_layout(root / "drive", "sfm").events
    return sum(1 for e in read_events(events) if e.get("event") == event) if events.exists() else 0


def beat(root: Path) -> hb.Heartbeat:
    return hb.read(job_layout(root / "drive", "sfm").heartbeat)


@pytest.fixture(scope="module")
def uninterrupted(images, tmp_path_factory) -> Path:
    """The root (drive and local folders) of one uninterrupted run."""
    root = tmp_path_factory.mktemp("reference")
    assert run_in_process(images, root) == 0, beat(root).reason
    return root


@pytest.fixture(scope="module")
def reference(uninterrupted) -> dict[str, bytes]:
    return result(uninterrupted)


@pytest.mark.timeout(120)
@REFERENCE
def test_an_uninterrupted_job_ends_done_with_the_sparse_model_in_both_formats(uninterrupted, reference, tmp_path):
    done = beat(uninterrupted)
    assert (done.phase, done.chunks_done, done.chunks_total, done.nodes_total, done.progress) == (hb.DONE, 10, 10, 5, 1.0)
    assert count(uninterrupted, "chunk_done") == 10  # each unit measured: what the ETA is made of
    layout = job_layout(uninterrupted / "drive", "sfm")
    assert json.loads(layout.engine_plan.read_text())["dense"] is False  # no CUDA here: decided once, kept
    logged = "".join(path.read_text() for path in layout.logs.glob("*.log"))
    assert logged.count("the dense steps are skipped, the result is the sparse model") == 1
    assert sorted(reference) == sorted(units.MODEL_FILES)
    model = pycolmap.Reconstruction()
    (tmp_path / "model").mkdir()
    for name, data in reference.items():
        if name.endswith(".bin"):
            (tmp_path / "model" / Path(name).name).write_bytes(data)
    model.read_binary(tmp_path / "model")
    assert model.num_reg_images() == IMAGES and model.num_points3D() > 50


def kill_at_random_moments(images: Path, root: Path, kills: int, seed: int, *extra: str, after=(),
                           within: float = 1.0) -> list[int]:
    """Run the job as the notebook does, killing it (runner and worker) ``kills`` times at random moments after
    its session has restored the store, every third one after a chunk more (and the k-th not before ``after[k]``
    chunks are done), within ``within`` seconds of that; then run it to the end. The chunks done at each kill."""
    rng = random.Random(seed)
    command = [sys.executable, "-m", "colab_side", "run", *arguments(images, root, *extra)]
    where = []
    for kill in range(kills):
        sessions = count(root, "restored")  # a session has restored the store: it computes from then on
        target = max(count(root, "chunk_done") + (kill % 3 == 2), after[kill] if kill < len(after) else 0)
        proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        assert wait_for(lambda: (count(root, "restored") > sessions and count(root, "chunk_done") >= target)
                        or proc.poll() is not None, timeout=120), seed
        try:
            proc.wait(timeout=rng.uniform(0.0, within))  # then a random moment, mostly within a chunk
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the runner and its pycolmap worker
            proc.wait()
            where.append(count(root, "chunk_done"))
    final = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=200)
    assert final.returncode == 0, (seed, final.stdout[-2000:])
    return where


@pytest.mark.timeout(240)
@REFERENCE
def test_a_job_killed_at_random_moments_ends_done_with_identical_model_files(images, reference, tmp_path):
    seed = int(os.environ.get("KILL_SEED", random.randrange(1 << 30)))
    where = kill_at_random_moments(images, tmp_path, 10, seed)
    assert len(where) == 10 and where[-1] >= where[0] + 3, (seed, where)  # ten kills, spread over the job
    assert beat(tmp_path).phase == hb.DONE
    assert result(tmp_path) == reference, (seed, where)
    print(f"kill seed {seed}: chunks done at each kill {where}")


@pytest.mark.timeout(300)
@REFERENCE
def test_two_runtimes_at_once_under_drive_faults_end_done_with_identical_model_files(images, reference, tmp_path):
    """A second tab's Run all starts another runtime on the same job while Drive fails now and then (each session
    its own faults, retried): the newer session takes the job, the older stops, and the result is the same."""
    seed = int(os.environ.get("FAULT_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    faults = ",".join(f"{rng.choice('rw')}{n}:{rng.choice((107, 5, 110, 116))}" for n in sorted(rng.sample(range(1, 150), 10)))
    env = {**os.environ, "COLAB_SIDE_FAULTS": faults}

    def command(runtime: str) -> list[str]:
        return [sys.executable, "-m", "colab_side", "run", *arguments(images, tmp_path), "--local-dir",
                str(tmp_path / runtime), "--drive-backoff-seconds", "0.05"]

    older = subprocess.Popen(command("a"), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: count(tmp_path, "restored") >= 1 or older.poll() is not None, timeout=120)
    newer = subprocess.Popen(command("b"), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    codes = [older.wait(timeout=200), newer.wait(timeout=200)]
    for _ in range(3):  # the daemon's restarts of a session a fault ended restartable
        if beat(tmp_path).phase == hb.DONE:
            break
        codes.append(subprocess.run(command("c"), cwd=ROOT, env=env, capture_output=True, timeout=200).returncode)
    assert beat(tmp_path).phase == hb.DONE, (seed, faults, codes)
    assert result(tmp_path) == reference, (seed, faults)
    assert count(tmp_path, "superseded") >= 1 or codes[0] == 0, (seed, codes)  # (the older one had not finished)
    print(f"fault seed {seed}: {faults}; exit codes {codes}")


@pytest.mark.timeout(120)
def test_a_sequential_job_matches_only_near_images_and_ends_done(images, tmp_path):
    assert run_in_process(images, tmp_path, "--param", "matcher=sequential", "--param", "overlap=3") == 0
    said = " ".join(path.read_text() for path in job_layout(tmp_path / "drive", "sfm").logs.glob("*.log"))
    matched = sum(int(n) for n in re.findall(r"colmap: (\d+) pairs matched", said))
    assert matched == units.pair_count(IMAGES, Choices.read(["matcher=sequential", "overlap=3"])) == 22 < 28
    assert beat(tmp_path).phase == hb.DONE and sorted(result(tmp_path)) == sorted(units.MODEL_FILES)


def test_a_parameter_pycolmap_does_not_have_fails_bad_input_before_anything_runs(images, tmp_path):
    assert run_in_process(images, tmp_path, "--param", "feature_extraction.max_image_sise=2000") == 1
    assert (beat(tmp_path).phase, beat(tmp_path).cause) == (hb.FAILED, hb.BAD_INPUT)
    assert "max_image_sise" in beat(tmp_path).reason and "\n" not in beat(tmp_path).reason
    assert not job_layout(tmp_path / "drive", "sfm").store.exists()


def test_a_job_whose_first_session_planned_dense_is_blocked_no_gpu_on_a_runtime_without_cuda(images, tmp_path):
    layout = job_layout(tmp_path / "drive", "sfm")
    layout.job_dir.mkdir(parents=True)
    layout.engine_plan.write_text(json.dumps({"engine": "colmap", "dense": True}))  # as a GPU runtime decided
    assert run_in_process(images, tmp_path) == 1
    assert (beat(tmp_path).phase, beat(tmp_path).cause) == (hb.BLOCKED, hb.NO_GPU)
    assert "dense steps need it" in beat(tmp_path).reason
    assert not layout.store.exists() or not list(layout.store.rglob("*.tar"))


def test_dense_asked_for_on_a_runtime_without_a_gpu_is_blocked_no_gpu(images, tmp_path, monkeypatch):
    monkeypatch.setattr("colab_side.runner.detect_gpu", lambda: None)
    assert run_in_process(images, tmp_path, "--param", "dense=on") == 1
    assert (beat(tmp_path).phase, beat(tmp_path).cause) == (hb.BLOCKED, hb.NO_GPU)
    assert not job_layout(tmp_path / "drive", "sfm").store.exists()


def test_dense_asked_for_where_pycolmap_has_no_cuda_is_blocked_no_gpu(images, tmp_path, monkeypatch):
    monkeypatch.setattr("colab_side.runner.detect_gpu", lambda: "Tesla T4")
    monkeypatch.setattr(pycolmap, "has_cuda", False)
    assert run_in_process(images, tmp_path, "--param", "dense=on") == 1
    assert (beat(tmp_path).phase, beat(tmp_path).cause) == (hb.BLOCKED, hb.NO_GPU)
    assert "dense=off" in beat(tmp_path).action


@pytest.mark.parametrize("param, says", [
    ("feature_extraction.max_image_size=big", "expects a whole number"),
    ("feature_extraction.sift.nope=1", "has no option 'sift.nope'"),
    ("features.max_image_size=1", "unknown section 'features'"),
    ("mapper=hierarchical", "mapper is one of global, incremental"),
    ("batch=0", "batch is a whole number"),
    ("feature_extraction.use_gpu=perhaps", "expects true or false"),
    ("feature_extraction.type=SURF", "expects one of"),
])
def test_bad_parameters_are_one_line_naming_them(param, says):
    with pytest.raises(OptionError, match=says.replace("(", r"\(")) as caught:
        Choices.read([param]).check(pycolmap)
    assert "\n" not in str(caught.value)


def test_parameters_set_pycolmaps_options_over_the_deterministic_defaults():
    choices = Choices.read(["feature_extraction.max_image_size=2000", "feature_extraction.sift.max_num_features=4000",
                            "global_mapping.num_threads=4", "feature_matching.guided_matching=true"])
    extraction = choices.build("feature_extraction", pycolmap)
    assert (extraction.max_image_size, extraction.sift.max_num_features, extraction.num_threads) == (2000, 4000, 1)
    mapping = choices.build("global_mapping", pycolmap)
    assert (mapping.num_threads, mapping.random_seed) == (4, 0)  # the user's wins; the seed stays 0
    assert choices.build("feature_matching", pycolmap).guided_matching is True


def test_exhaustive_blocks_cover_every_pair_once_in_name_order():
    names = [f"{index:02d}.png" for index in range(9)]
    choices = Choices.read(["batch=4", "block=7"])
    work = units.steps(len(names), choices, dense=False)
    pairs = [pair for chunk in range(work.nodes["matches"].chunk_count) for pair in units.block(names, choices, chunk)]
    assert pairs == [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    assert [units.batch(names, 4, chunk) for chunk in range(work.nodes["features"].chunk_count)] == [
        names[:4], names[4:8], names[8:]]
    assert work.publish_nodes() == {"mapping"}
    assert units.steps(len(names), choices, dense=True).publish_nodes() == {"mapping", "fusion", "meshing"}


@settings(deadline=None, max_examples=60)
@given(images=st.integers(2, 80), overlap=st.integers(1, 12), block=st.integers(1, 50))
def test_sequential_blocks_pair_each_image_with_its_next_ones_and_those_two_to_the_k_ahead(images, overlap, block):
    names = [f"{index:03d}.png" for index in range(images)]
    choices = Choices.read(["matcher=sequential", f"overlap={overlap}", f"block={block}"])
    work = units.steps(images, choices, dense=False)
    pairs = [pair for chunk in range(work.nodes["matches"].chunk_count) for pair in units.block(names, choices, chunk)]
    ahead = {*range(1, overlap + 1), *(2 ** k for k in range(overlap))}
    assert pairs == [(names[i], names[i + d]) for i in range(images) for d in sorted(ahead) if i + d < images]
    assert len(pairs) == units.pair_count(images, choices) and work.nodes["matches"].chunk_count == -(-len(pairs) // block)


def test_the_wheel_is_downloaded_once_per_drive_and_a_damaged_copy_is_fetched_again(tmp_path, monkeypatch):
    from colab_side.colmap import install
    from colab_side.drive import Drive

    downloads, installed, found = [], [], iter([ImportError("no pycolmap yet"), pycolmap])

    def download(name, dest):
        downloads.append(name)
        (dest / f"pycolmap-{install.VERSION}-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(b"wheel bytes")

    def importer(name):
        answer = next(found, pycolmap)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(install.importlib, "import_module", importer)
    monkeypatch.setattr(install, "package", lambda: "pycolmap")
    drive = Drive(tmp_path / "drive", log=lambda line: None)
    folder = tmp_path / "drive" / "_meshroom"
    assert install.ensure(folder, tmp_path, drive, lambda line: None, download, installed.append) is pycolmap
    assert downloads == ["pycolmap"] and [path.read_bytes() for path in installed] == [b"wheel bytes"]
    wheel = install.ensure_wheel(folder / "pycolmap", "pycolmap", drive, lambda line: None, download)
    assert downloads == ["pycolmap"]  # verified on Drive: not downloaded again
    wheel.write_bytes(b"cut short")
    assert install.ensure_wheel(folder / "pycolmap", "pycolmap", drive, lambda line: None, download).read_bytes() == \
        b"wheel bytes"
    assert downloads == ["pycolmap", "pycolmap"] and list((folder / "pycolmap").glob("*.corrupt-*"))


def test_plan_counts_the_chunks_of_a_colmap_job_and_the_depth_maps_size_sets_what_fits(capsys):
    from colab_side.__main__ import main

    assert main(["plan", "--engine", "colmap", "--images", "200", "--param", "dense=off"]) == 0
    shown = capsys.readouterr().out
    assert "COLMAP (pycolmap 4.2.1), sparse" in shown and "chunks: 90 in 5 nodes" in shown  # 1+20+1+67+1
    assert main(["plan", "--engine", "colmap", "--images", "200"]) == 1  # full-size depth maps: local disk short
    assert "does NOT fit" in capsys.readouterr().out
    assert main(["plan", "--engine", "colmap", "--images", "200", "--param", "patch_match.max_image_size=1600"]) == 0
