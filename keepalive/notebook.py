"""``keepalive notebook``: the .ipynb the user uploads to Colab once.

The notebook does not install anything from a package index: the ``colab_side`` package is
embedded in the first cell as a base64 zip (made from the installed package when the command
runs) and imported from that zip, so every restart runs exactly the version that wrote it.
"""

from __future__ import annotations

import base64
import io
import json
import textwrap
import zipfile
from importlib import resources
from pathlib import PurePosixPath, PureWindowsPath

from colab_side import settings as colab_settings
from colab_side.meshroom import versions
from colab_side.meshroom.commands import parse_param


def colab_side_zip() -> bytes:
    """The colab_side package as a zip, byte-identical for identical sources."""
    buffer = io.BytesIO()
    root = resources.files("colab_side")
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        def add(folder, prefix):
            for item in sorted(folder.iterdir(), key=lambda p: p.name):
                if item.is_dir() and item.name != "__pycache__":
                    add(item, f"{prefix}{item.name}/")
                elif item.name.endswith(".py"):
                    info = zipfile.ZipInfo(f"{prefix}{item.name}", date_time=(2020, 1, 1, 0, 0, 0))
                    archive.writestr(info, item.read_bytes(), zipfile.ZIP_DEFLATED)
        add(root, "colab_side/")
    return buffer.getvalue()


def _code(source: str) -> dict:
    return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
            "source": source.strip("\n").splitlines(keepends=True)}


def check_colab_folder(images: str) -> str:
    """``images`` if it is a folder as Colab sees it (under /content/drive/), else ValueError saying what to write."""
    example = "/content/drive/MyDrive/images"
    name = PureWindowsPath(images).name or "images"
    if "\\" in images or PureWindowsPath(images).drive:
        raise ValueError(f"--images '{images}' is a folder on your PC; write it as Colab sees it on your Drive, "
                         f"e.g. /content/drive/MyDrive/{name}")
    if not images.startswith("/content/drive/") or ".." in PurePosixPath(images).parts:
        raise ValueError(f"--images '{images}' is not a folder on your Drive as Colab sees it: write the full path, "
                         f"e.g. {example} for My Drive/images")
    return images


def run_settings(images: str, job: str, meshroom: str, pipeline: str | None = None, params=(),
                 overrides: str | None = None, drive_budget_gb: float | None = None) -> dict:
    """The keyword arguments of ``colab_side.run`` in the notebook: the pipeline options only when given.

    ``params`` are checked here (``Node_1.attribute=value``); node and attribute names are checked
    against the saved graph on Colab, before anything is computed.
    """
    check_colab_folder(images)
    versions.get(meshroom)  # an unknown release is named here, with the ones there are
    for text in params:
        parse_param(text)
    chosen = {"images": images, "job": job, "meshroom": meshroom, "pipeline": pipeline,
              "params": list(params), "overrides": overrides, "drive_budget_gb": drive_budget_gb}
    chosen = {key: value for key, value in chosen.items() if value not in (None, [])}
    colab_settings.make(**chosen)  # the checks colab_side.run makes on Colab: a bad value is refused here first
    return chosen


def build(images: str, job: str, meshroom: str, **options) -> dict:
    """The notebook; ``options``: ``pipeline``, ``params``, ``overrides``, ``drive_budget_gb`` (see ``run_settings``)."""
    settings = ", ".join(f"{key}={value!r}" for key, value in run_settings(images, job, meshroom, **options).items())
    payload = base64.b64encode(colab_side_zip()).decode()
    install = textwrap.dedent(f"""
        # 1. colab_side, embedded (no package index needed), and Google Drive.
        import base64, sys
        open("/content/colab_side.zip", "wb").write(base64.b64decode(COLAB_SIDE))
        sys.path.insert(0, "/content/colab_side.zip")
        from google.colab import drive
        drive.mount("/content/drive")
        """)
    run = textwrap.dedent(f"""
        # 2. Run or resume the job. Safe to run again at any time: finished chunks are never redone.
        import colab_side
        colab_side.run({settings})
        """)
    intro = ("# Meshroom on Colab, kept alive by colab-keepalive\n"
             "Run all on a **GPU** runtime. The daemon on your PC reopens this notebook and presses Run all "
             "after every disconnect; progress is in `My Drive/keepalive/" + job + "/heartbeat.json`.")
    return {
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"accelerator": "GPU", "colab": {"provenance": []},
                     "kernelspec": {"name": "python3", "display_name": "Python 3"}},
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": intro.splitlines(keepends=True)},
            _code(f'COLAB_SIDE = "{payload}"\n' + install),
            _code(run),
        ],
    }


def write(path, images: str, job: str, meshroom: str, **options) -> None:
    nb = build(images, job, meshroom, **options)  # checked before anything is written
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(nb, handle, indent=1)
        handle.write("\n")
