"""A small Meshroom job on a local "Drive" folder, run by ``python -m colab_side run``.

Shared by the notebook-side tests, the daemon's end-to-end tests and the demo's checks: images,
the stand-in release archive, a fake ``nvidia-smi`` and the command line that a Colab cell runs.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from keepalive.simulator.meshroom_release import build_release
from keepalive.simulator.runtime import fake_gpu_bin


def make_images(folder: Path, count: int = 7) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"IMG_{i:04d}.jpg").write_bytes(hashlib.sha256(f"image {i}".encode()).digest() * 8)
    return folder


class Job:
    """Everything one test job needs, under ``root``."""

    def __init__(self, root: Path, name: str = "job", images: int = 7, chunk_seconds: float = 0.02):
        self.root = root
        self.name = name
        self.drive = root / "drive"
        self.images = make_images(self.drive / "images", images)
        self.release = build_release(root / "release")
        self.local = root / "local"
        self.env = dict(os.environ)
        self.env["PATH"] = f"{fake_gpu_bin(root / 'gpu-bin')}{os.pathsep}{self.env.get('PATH', '')}"
        self.env["MESHROOM_STANDIN_CHUNK_SECONDS"] = str(chunk_seconds)

    @property
    def job_dir(self) -> Path:
        return self.drive / "keepalive" / self.name

    def command(self, *extra: str) -> list[str]:
        return [sys.executable, "-m", "colab_side", "run", "--images", str(self.images), "--job", self.name,
                "--drive-root", str(self.drive), "--meshroom-url", str(self.release),
                "--local-dir", str(self.local), "--heartbeat-seconds", "0.2", *extra]

    def result_files(self) -> dict[str, bytes]:
        result = self.job_dir / "result"
        return {p.name: p.read_bytes() for p in sorted(result.iterdir())} if result.is_dir() else {}
