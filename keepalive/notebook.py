"""``keepalive notebook``: the .ipynb the user uploads to Colab once.

The notebook does not install anything from a package index: the ``colab_side`` package is
embedded as a base64 zip (made from the installed package when the command runs) in a collapsed
cell and imported from that zip, so every restart runs exactly the version that wrote it. The one
visible cell is a Colab form (``#@param`` fields, filled from the command's options) that passes
its values to ``colab_side.run``, which checks them as it checks the command's (docs/notebook.md).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import textwrap
import zipfile
from importlib import resources

from colab_side import settings as colab_settings
from colab_side.colmap.options import Choices
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


def _code(source: str, collapsed: bool = False) -> dict:
    """A code cell; ``collapsed``: Colab shows its ``#@title`` line only (the form view, code hidden)."""
    return {"cell_type": "code", "execution_count": None, "metadata": {"cellView": "form"} if collapsed else {},
            "outputs": [], "source": source.strip("\n").splitlines(keepends=True)}


def check_colab_folder(images: str) -> str:
    """``images`` if it is a folder as Colab sees it (under /content/drive/), else ValueError saying what to write."""
    colab_settings.check_colab_path("--images", images)
    return images


def run_settings(images: str, job: str, meshroom: str, pipeline: str | None = None, params=(),
                 overrides: str | None = None, drive_budget_gb: float | None = None, engine: str = "meshroom") -> dict:
    """The keyword arguments of ``colab_side.run`` in the notebook: the pipeline options (and the engine, when not
    Meshroom) only when given.

    ``params`` are checked here (Meshroom: ``Node_1.attribute=value``, node and attribute names checked against
    the saved graph on Colab; COLMAP: the engine's choices and sections, attributes checked against pycolmap on
    Colab), before anything is computed.
    """
    check_colab_folder(images)
    versions.get(meshroom)  # an unknown release is named here, with the ones there are
    if engine == "colmap":
        Choices.read(params)
    else:
        for text in params:
            parse_param(text)
    chosen = {"images": images, "job": job, "meshroom": meshroom, "pipeline": pipeline,
              "params": list(params), "overrides": overrides, "drive_budget_gb": drive_budget_gb,
              "engine": None if engine == "meshroom" else engine}
    chosen = {key: value for key, value in chosen.items() if value not in (None, [])}
    colab_settings.make(**chosen)  # the checks colab_side.run makes on Colab: a bad value is refused here first
    return chosen


def form_fields(chosen: dict) -> list[str]:
    """The form's lines, one ``#@param`` field per setting: a text field, or a list to choose from.

    Fields always shown: images, job, the release, the Drive budget and the parameters (blank when not
    given); the engine, pipeline and overrides files only when given. The values are JSON texts, which Python reads.
    """
    def field(name: str, value, spec: str) -> str:
        return f"{name} = {json.dumps(value, ensure_ascii=False)}  #@param {spec}"

    budget = chosen.get("drive_budget_gb")
    example = ("feature_extraction.max_image_size=2000; dense=off" if chosen.get("engine") == "colmap"
               else "Node_1.attribute=value; Node_2.attribute=value")
    lines = [
        field("images", chosen["images"], '{type:"string"}'),
        field("job", chosen["job"], '{type:"string"}'),
        field("meshroom", chosen["meshroom"], json.dumps(list(versions.VERSIONS))),
        field("drive_budget_gb", "" if budget is None else str(budget),
              '{type:"string", placeholder:"GB; blank: what Drive has free"}'),
        field("params", "; ".join(chosen.get("params", ())),
              '{type:"string", placeholder:"' + example + '"}'),
    ]
    if "engine" in chosen:
        lines.insert(2, field("engine", chosen["engine"], json.dumps(list(colab_settings.BY_NAME["engine"].choices))))
    lines += [field(name, chosen[name], '{type:"string"}') for name in ("pipeline", "overrides") if name in chosen]
    return lines


def build(images: str, job: str, meshroom: str, **options) -> dict:
    """The notebook; ``options``: ``pipeline``, ``params``, ``overrides``, ``drive_budget_gb``, ``engine`` (see
    ``run_settings``)."""
    chosen = run_settings(images, job, meshroom, **options)
    fields = form_fields(chosen)
    names = [line.split(" = ", 1)[0] for line in fields]
    data = colab_side_zip()
    install = textwrap.dedent(f"""
        #@title colab_side {hashlib.sha256(data).hexdigest()[:12]}, embedded (every restart runs this version), and Google Drive {{ display-mode: "form" }}
        COLAB_SIDE = "{base64.b64encode(data).decode()}"
        import base64, sys
        open("/content/colab_side.zip", "wb").write(base64.b64decode(COLAB_SIDE))
        sys.path.insert(0, "/content/colab_side.zip")
        from google.colab import drive
        drive.mount("/content/drive")
        """)
    run = "\n".join([
        "#@title Your job (change a value, then Runtime > Run all; finished chunks are never redone)",
        *fields,
        "import colab_side",
        f"colab_side.run({', '.join(f'{name}={name}' for name in names)})",
    ])
    program = "COLMAP" if chosen.get("engine") == "colmap" else "Meshroom"
    intro = (f"# {program} on Colab, kept alive by colab-keepalive\n"
             "Run all on a **GPU** runtime. The daemon on your PC reopens this notebook and presses Run all "
             "after every disconnect; progress is in `My Drive/keepalive/" + job + "/heartbeat.json`.\n\n"
             "The form below holds the job's settings, as `keepalive notebook` wrote them. The daemon watches the "
             "job named there: to rename the job, write a new notebook with `keepalive notebook --job`.")
    return {
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"accelerator": "GPU", "colab": {"provenance": []},
                     "kernelspec": {"name": "python3", "display_name": "Python 3"}},
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": intro.splitlines(keepends=True)},
            _code(install, collapsed=True),
            _code(run),
        ],
    }


def write(path, images: str, job: str, meshroom: str, **options) -> None:
    nb = build(images, job, meshroom, **options)  # checked before anything is written
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(nb, handle, indent=1)
        handle.write("\n")
