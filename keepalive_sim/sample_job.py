"""A small deterministic Meshroom job on a local "Drive" folder, for the demo and the tests.

It gathers what the simulated runtime needs: images, the stand-in Meshroom release, the
environment, and the command line that the notebook's cell runs (``python -m colab_side run``).
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from keepalive_sim.meshroom_release import build_release
from keepalive_sim.runtime import fake_gpu_bin


def make_images(folder: Path, count: int) -> Path:
    """``count`` small files with image names and deterministic bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"IMG_{i:04d}.jpg").write_bytes(hashlib.sha256(f"image {i}".encode()).digest() * 8)
    return folder


class SampleJob:
    def __init__(self, root, name: str = "job", images: int = 7, chunk_seconds: float = 0.02,
                 heartbeat_seconds: float = 0.2, gpu: bool = True):
        self.root = Path(root)
        self.name = name
        self.drive = self.root / "drive"
        self.images = make_images(self.drive / "images", images)
        self.release = build_release(self.root / "release")
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
                "--drive-root", str(self.drive), "--meshroom-url", str(self.release),
                "--local-dir", str(self.local), "--heartbeat-seconds", str(self.heartbeat_seconds), *extra]

    def result_files(self) -> dict[str, bytes]:
        result = self.job_dir / "result"
        return {p.name: p.read_bytes() for p in sorted(result.iterdir())} if result.is_dir() else {}
