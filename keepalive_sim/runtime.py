"""The simulated Colab runtime: the notebook's job as a subprocess that can be killed like a VM.

The job runs in its own process group, so that a kill takes the job and everything it started
(Meshroom's executables) at once, as a vanished VM would. A runtime "with a GPU" puts a fake
``nvidia-smi`` first on the job's PATH; without one, the job finds no GPU, as on a CPU runtime.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections import deque
from pathlib import Path


def fake_gpu_bin(folder, name: str = "Tesla T4") -> Path:
    """A folder holding an ``nvidia-smi`` that answers ``--query-gpu=name`` with ``name``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    smi = folder / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\necho '{name}'\n")
    smi.chmod(0o755)
    return folder


class Runtime:
    """One run of the notebook's job command."""

    def __init__(self, command: list[str], env: dict, workdir: Path, gpu: bool):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = dict(env)
        if gpu:
            env["PATH"] = f"{fake_gpu_bin(self.workdir / 'gpu-bin')}{os.pathsep}{env.get('PATH', '')}"
        self.output_path = self.workdir / "output.log"
        self.tail: deque[str] = deque(maxlen=12)
        self.exit_code: int | None = None
        self.killed = False
        self._out = open(self.output_path, "a", encoding="utf-8")
        self.proc = subprocess.Popen(command, env=env, cwd=self.workdir, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, errors="replace",
                                     start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.tail.append(line.rstrip())
            self._out.write(line)
            self._out.flush()
        self.exit_code = self.proc.wait()
        self._out.close()

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group, as a vanished VM would."""
        self.killed = True
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
