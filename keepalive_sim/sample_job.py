"""A small deterministic Meshroom job on a local "Drive" folder, for the demo and the tests.

It gathers what the simulated runtime needs: images, the stand-in Meshroom release, the
environment, and the command line that the notebook's cell runs (``python -m colab_side run``).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from keepalive_sim.meshroom_release import RELEASE_LAYOUT, build_release
from keepalive_sim.runtime import fake_gpu_bin


def make_images(folder: Path, count: int) -> Path:
    """``count`` small files with image names and deterministic bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"IMG_{i:04d}.jpg").write_bytes(hashlib.sha256(f"image {i}".encode()).digest() * 8)
    return folder


def extracted_release(root, version: str = "2019.2") -> Path:
    """The stand-in release of ``version`` built and unpacked under ``root``: the folder of its executables."""
    root = Path(root)
    with tarfile.open(build_release(root, version)) as tar:
        tar.extractall(root, filter="tar")
    return root / RELEASE_LAYOUT[version][1]


def save_project(exe_dir: Path, version: str, images: Path, project: Path, output: Path | None = None) -> Path:
    """``--save`` the release's photogrammetry graph for ``images`` (with a Publish node when ``output``).

    ``--cache`` is always given, as colab_side does: real 2021.1 saves stale uids and sizes without it."""
    batch = RELEASE_LAYOUT[version][2]
    command = [str(exe_dir / batch), "--input", str(images), "--save", str(project),
               "--cache", str(project.with_suffix(".cache"))]
    if output is not None:
        command += ["--output", str(output)]
    if batch == "meshroom_batch":
        command += ["--compute", "no"]
    subprocess.run(command, check=True, capture_output=True)
    return project


class SampleJob:
    def __init__(self, root, name: str = "job", images: int = 7, chunk_seconds: float = 0.02,
                 heartbeat_seconds: float = 0.2, gpu: bool = True, meshroom: str = "2019.2"):
        self.root = Path(root)
        self.name = name
        self.meshroom = meshroom
        self.drive = self.root / "drive"
        self.images = make_images(self.drive / "images", images)
        self.release = build_release(self.root / "release", meshroom)
        self.local = self.root / "local"
        self.heartbeat_seconds = heartbeat_seconds
        self.env = dict(os.environ)
        self.env["MESHROOM_STANDIN_CHUNK_SECONDS"] = str(chunk_seconds)
        if gpu:
            self.env["PATH"] = f"{fake_gpu_bin(self.root / 'gpu-bin')}{os.pathsep}{self.env.get('PATH', '')}"

    @property
    def job_dir(self) -> Path:
        return self.drive / "keepalive" / self.name

    def command(self, *extra: str) -> list[str]:
        return [sys.executable, "-m", "colab_side", "run", "--images", str(self.images), "--job", self.name,
                "--drive-root", str(self.drive), "--meshroom", self.meshroom, "--meshroom-url", str(self.release),
                "--local-dir", str(self.local), "--heartbeat-seconds", str(self.heartbeat_seconds), *extra]

    def result_files(self) -> dict[str, bytes]:
        result = self.job_dir / "result"
        return {p.name: p.read_bytes() for p in sorted(result.iterdir())} if result.is_dir() else {}
