"""Meshroom command lines: build and save the graph once, then compute it chunk by chunk."""

from __future__ import annotations

from pathlib import Path

from colab_side.meshroom.versions import MeshroomVersion


def save_command(version: MeshroomVersion, exe_dir, images, project, cache, output) -> list[str]:
    """Configure the photogrammetry graph for ``images`` and write it to ``project`` without computing.

    Early ``meshroom_photogrammetry`` requires ``--output`` even with ``--save``, so it is always given.
    """
    exe = str(Path(exe_dir) / version.batch_exe)
    common = ["--output", str(output), "--cache", str(cache), "--save", str(project)]
    if version.style == "photogrammetry":
        return [exe, "--input", str(images), *common]
    return [exe, "--input", str(images), *common, "--compute", "no"]


def compute_command(version: MeshroomVersion, exe_dir, project, cache, node: str, iteration: int | None = None) -> list[str]:
    """Compute one node (or one chunk of it) of a saved project; interrupted statuses are forced."""
    command = [str(Path(exe_dir) / version.compute_exe), str(project), "--node", node]
    if iteration is not None:
        command += ["--iteration", str(iteration)]
    return command + ["--cache", str(cache), "--forceStatus"]
