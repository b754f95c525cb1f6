"""The notebook the user uploads: a valid .ipynb whose first cell carries colab_side itself.

``test_keepalive_cli.py`` checks the command's output file; here: the notebook's shape, the
embedded package (complete, reproducible, nothing else in it), and that a job really runs from
that embedded copy alone.
"""

from __future__ import annotations

import ast
import base64
import io
import json
import subprocess
import sys
import zipfile
from importlib import resources

import pytest

from jobkit import Job
from keepalive import notebook

SETTINGS = dict(images="/content/drive/MyDrive/castle", job="castle", meshroom="2021.1")


def code_cells(nb):
    return ["".join(cell["source"]) for cell in nb["cells"] if cell["cell_type"] == "code"]


def embedded_zip(nb) -> bytes:
    first_line = code_cells(nb)[0].splitlines()[0]
    assert first_line.startswith('COLAB_SIDE = "')
    return base64.b64decode(first_line.split('"')[1])


def test_it_is_a_valid_version_4_notebook_on_a_gpu_runtime(tmp_path):
    path = tmp_path / "castle.ipynb"
    notebook.write(path, **SETTINGS)
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4 and nb["metadata"]["accelerator"] == "GPU"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    for cell in nb["cells"]:
        assert cell["cell_type"] in ("markdown", "code") and isinstance(cell["metadata"], dict)
        assert isinstance(cell["source"], list) and all(isinstance(line, str) for line in cell["source"])
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None
            ast.parse("".join(cell["source"]))  # Python that Colab can run


def test_the_cells_stay_short_and_the_second_runs_the_users_settings():
    install, run = code_cells(notebook.build(**SETTINGS))
    assert len(install.splitlines()) <= 10 and len(run.splitlines()) <= 5
    readable = install.split("\n", 1)[1]  # all but the payload line
    assert "pip" not in readable and "drive.mount(" in readable
    calls = [node for node in ast.walk(ast.parse(run)) if isinstance(node, ast.Call)]
    assert len(calls) == 1 and ast.unparse(calls[0].func) == "colab_side.run"
    assert {kw.arg: ast.literal_eval(kw.value) for kw in calls[0].keywords} == SETTINGS


def test_the_embedded_package_is_exactly_the_installed_colab_side_and_reproducible():
    data = notebook.colab_side_zip()
    assert data == notebook.colab_side_zip()
    names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
    root = resources.files("colab_side")

    def sources(folder, prefix):
        for item in folder.iterdir():
            if item.is_dir() and item.name != "__pycache__":
                yield from sources(item, f"{prefix}{item.name}/")
            elif item.name.endswith(".py"):
                yield f"{prefix}{item.name}"

    assert names == set(sources(root, "colab_side/"))
    assert embedded_zip(notebook.build(**SETTINGS)) == data
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.read("colab_side/heartbeat.py") == (root / "heartbeat.py").read_bytes()


def test_a_job_runs_from_the_embedded_copy_alone(tmp_path):
    archive = tmp_path / "colab_side.zip"
    archive.write_bytes(embedded_zip(notebook.build(**SETTINGS)))
    job = Job(tmp_path / "job", name="castle", images=4)
    start = ("import runpy, sys; sys.path.insert(0, sys.argv.pop(1)); import colab_side; "
             "assert colab_side.__file__.startswith(sys.path[0]), colab_side.__file__; "
             "runpy.run_module('colab_side', run_name='__main__', alter_sys=True)")
    command = [sys.executable, "-I", "-c", start, str(archive), *job.command()[3:]]
    proc = subprocess.run(command, env=job.env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert set(job.result_files()) >= {"texturedMesh.obj", "texturedMesh.mtl"}


def run_keywords(nb) -> dict:
    call = next(node for node in ast.walk(ast.parse(code_cells(nb)[1])) if isinstance(node, ast.Call))
    return {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}


def test_the_pipeline_options_appear_only_when_given():
    assert run_keywords(notebook.build(**SETTINGS)) == SETTINGS
    options = dict(pipeline="/content/drive/MyDrive/mine.mg", params=["DepthMap_1.downscale=4", "Texturing_1.textureSide=4096"],
                   overrides="/content/drive/MyDrive/overrides.json")
    assert run_keywords(notebook.build(**SETTINGS, **options)) == {**SETTINGS, **options}
    assert len(code_cells(notebook.build(**SETTINGS, **options))[1].splitlines()) <= 5


def test_a_malformed_parameter_is_refused_when_the_notebook_is_written(tmp_path):
    with pytest.raises(ValueError, match="Node_1.attribute=value"):
        notebook.write(tmp_path / "nb.ipynb", **SETTINGS, params=["downscale=4"])
    assert not (tmp_path / "nb.ipynb").exists()


def test_the_notebooks_pipeline_settings_reach_the_session(tmp_path):
    """colab_side.run with the notebook's keywords: an unknown attribute is failed BAD_INPUT, named."""
    job = Job(tmp_path / "job", name="castle", images=4)
    keywords = run_keywords(notebook.build(images="/content/drive/MyDrive/castle", job="castle", meshroom="2019.2",
                                           params=["DepthMap_1.downscal=4"]))
    keywords.update(images=str(job.images), drive_root=str(job.drive), meshroom_url=str(job.release), local_dir=str(job.local),
                    heartbeat_seconds=0.2)
    program = f"import sys, colab_side; sys.exit(colab_side.run(**{keywords!r}))"
    proc = subprocess.run([sys.executable, "-c", program], env=job.env, capture_output=True, text=True, timeout=120)
    beat = json.loads((job.job_dir / "heartbeat.json").read_text())
    assert proc.returncode != 0 and beat["cause"] == "BAD_INPUT", proc.stdout[-2000:]
    assert "DepthMap_1" in beat["reason"] and "downscal" in beat["reason"]


@pytest.mark.parametrize("images, says", [
    ("G:\\My Drive\\images", "folder on your PC"), ("C:/Users/me/photos", "folder on your PC"),
    ("images", "full path"), ("./images", "full path"), ("/home/me/images", "full path"),
    ("/content/drive/MyDrive/../etc", "full path"),
])
def test_a_path_that_is_not_a_colab_path_is_refused_saying_what_to_write(tmp_path, images, says):
    with pytest.raises(ValueError, match=says) as refused:
        notebook.write(tmp_path / "nb.ipynb", **{**SETTINGS, "images": images})
    assert "/content/drive/MyDrive/" in str(refused.value) and not (tmp_path / "nb.ipynb").exists()


def test_an_unknown_release_is_refused_naming_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match="2019.2, 2021.1") as refused:
        notebook.write(tmp_path / "nb.ipynb", **{**SETTINGS, "meshroom": "2024"})
    assert "2024" in str(refused.value) and not (tmp_path / "nb.ipynb").exists()
