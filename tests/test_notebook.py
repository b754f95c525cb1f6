"""The notebook the user uploads: a valid .ipynb whose collapsed first cell carries colab_side itself.

``test_keepalive_cli.py`` checks the command's output file; here: the notebook's shape (a collapsed
module cell, one short visible form cell filled from the options), the embedded package (complete,
reproducible, nothing else in it), that a job really runs from that embedded copy alone, and that a
bad value edited in the form ends as one line.
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
    payload = [line for line in code_cells(nb)[0].splitlines() if line.startswith('COLAB_SIDE = "')]
    assert len(payload) == 1
    return base64.b64decode(payload[0].split('"')[1])


def form_values(nb) -> dict:
    """The values of the form cell's fields: the ``name = value  #@param ...`` lines."""
    lines = [line for line in code_cells(nb)[1].splitlines() if "#@param" in line]
    return {line.split(" = ", 1)[0]: ast.literal_eval(line.split(" = ", 1)[1].split("  #@param")[0]) for line in lines}


def run_keywords(nb) -> dict:
    """What the form cell passes to colab_side.run: each keyword is the form field of its name."""
    call = next(node for node in ast.walk(ast.parse(code_cells(nb)[1])) if isinstance(node, ast.Call))
    assert ast.unparse(call.func) == "colab_side.run"
    values = form_values(nb)
    assert all(isinstance(kw.value, ast.Name) for kw in call.keywords)
    return {kw.arg: values[kw.value.id] for kw in call.keywords}


BLANK = {"drive_budget_gb": "", "params": ""}  # the form's fields not given: blank texts


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


def test_the_module_cell_is_collapsed_and_the_one_visible_cell_is_a_short_filled_form():
    nb = notebook.build(**SETTINGS, params=["DepthMap_1.downscale=4", "FeatureExtraction_1.describerTypes=sift,akaze"],
                        drive_budget_gb=7.5)
    module, form = [cell for cell in nb["cells"] if cell["cell_type"] == "code"]
    assert module["metadata"] == {"cellView": "form"} and form["metadata"] == {}
    title = module["source"][0]
    assert title.startswith("#@title colab_side ") and 'display-mode: "form"' in title
    install = "".join(line for line in module["source"] if not line.startswith("COLAB_SIDE = "))  # but the payload
    assert "pip" not in install and "drive.mount(" in install and 'sys.path.insert(0, "/content/colab_side.zip")' in install
    source = "".join(form["source"])
    assert source.startswith("#@title ") and len(source.splitlines()) <= 10 and "COLAB_SIDE" not in source
    assert len(source) < 1500
    assert form_values(nb) == {**SETTINGS, "drive_budget_gb": "7.5",
                               "params": "DepthMap_1.downscale=4; FeatureExtraction_1.describerTypes=sift,akaze"}
    assert 'meshroom = "2021.1"  #@param ["2019.2", "2021.1", "2023.3", "2025.1"]' in source
    assert run_keywords(nb) == form_values(nb)
    from colab_side import settings
    chosen = settings.make(**run_keywords(nb))  # the form's texts read as the options given
    assert chosen.params == ("DepthMap_1.downscale=4", "FeatureExtraction_1.describerTypes=sift,akaze")
    assert chosen.drive_budget_gb == 7.5 and chosen.job == "castle"


def test_the_module_cell_comes_first_so_that_run_all_mounts_drive_before_the_job():
    nb = notebook.build(**SETTINGS)
    module, form = code_cells(nb)
    assert nb["cells"][0]["cell_type"] == "markdown" and "drive.mount" in module and "colab_side.run(" in form
    assert notebook.build(**SETTINGS) == nb  # the same sources, the same notebook


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


def test_the_pipeline_options_appear_only_when_given():
    assert run_keywords(notebook.build(**SETTINGS)) == {**SETTINGS, **BLANK}
    options = dict(pipeline="/content/drive/MyDrive/mine.mg", params=["DepthMap_1.downscale=4", "Texturing_1.textureSide=4096"],
                   overrides="/content/drive/MyDrive/overrides.json")
    assert run_keywords(notebook.build(**SETTINGS, **options)) == {
        **SETTINGS, **options, "drive_budget_gb": "", "params": "DepthMap_1.downscale=4; Texturing_1.textureSide=4096"}
    assert len(code_cells(notebook.build(**SETTINGS, **options))[1].splitlines()) <= 12


def test_the_colmap_engine_is_a_form_field_and_its_parameters_are_checked_as_colmaps():
    nb = notebook.build(**SETTINGS, engine="colmap", params=["feature_extraction.max_image_size=2000", "dense=off"])
    assert 'engine = "colmap"  #@param ["meshroom", "colmap"]' in code_cells(nb)[1]
    assert "# COLMAP on Colab" in "".join(nb["cells"][0]["source"])
    from colab_side import settings
    chosen = settings.make(**run_keywords(nb))
    assert chosen.engine == "colmap" and chosen.params == ("feature_extraction.max_image_size=2000", "dense=off")
    with pytest.raises(ValueError, match="unknown section 'DepthMap_1'"):
        notebook.build(**SETTINGS, engine="colmap", params=["DepthMap_1.downscale=4"])
    assert "engine" not in run_keywords(notebook.build(**SETTINGS))  # Meshroom's form is as it was


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


def test_a_malformed_parameter_edited_in_the_form_ends_the_session_before_meshroom_is_installed(tmp_path):
    job = Job(tmp_path / "job", name="castle", images=4)
    keywords = dict(run_keywords(notebook.build(**SETTINGS)), params="DepthMap_1.downscale=4; downscale=8",
                    images=str(job.images), drive_root=str(job.drive), meshroom_url=str(job.release),
                    local_dir=str(job.local), heartbeat_seconds=0.2)
    program = f"import sys, colab_side; sys.exit(colab_side.run(**{keywords!r}))"
    proc = subprocess.run([sys.executable, "-c", program], env=job.env, capture_output=True, text=True, timeout=120)
    beat = json.loads((job.job_dir / "heartbeat.json").read_text())
    assert proc.returncode == 1 and beat["phase"] == "failed" and beat["cause"] == "BAD_INPUT", proc.stdout[-2000:]
    assert beat["reason"] == "parameter 'downscale=8' is not Node_1.attribute=value (for example DepthMap_1.downscale=4)"
    assert "Traceback" not in proc.stdout + proc.stderr and '"install"' not in (job.job_dir / "events.jsonl").read_text()


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


@pytest.mark.parametrize("field, value, says", [
    ("drive_budget_gb", "lots", "colab_side: drive_budget_gb must be a number, not 'lots'"),
    ("drive_budget_gb", "0", "colab_side: drive_budget_gb must be between 0.001 and 1e+06, not '0'"),
    ("images", "", "colab_side: images must be a non-empty path, not ''"),
    ("images", "G:\\My Drive\\photos", "colab_side: images 'G:\\My Drive\\photos' is a folder on your PC; write it "
     "as Colab sees it on your Drive, e.g. /content/drive/MyDrive/photos"),
    ("images", "MyDrive/photos", "colab_side: images 'MyDrive/photos' is not on your Drive as Colab sees it: write the "
     "full path, e.g. /content/drive/MyDrive/images for My Drive/images"),
    ("job", "my castle", "colab_side: job name 'my castle' is not usable: use letters"),
])
def test_a_bad_value_edited_in_the_form_ends_as_one_line_and_touches_nothing(tmp_path, field, value, says):
    """The form cell as Colab runs it, on the embedded package, after the user changed one field."""
    nb = notebook.build(**SETTINGS)
    archive = tmp_path / "colab_side.zip"
    archive.write_bytes(embedded_zip(nb))
    lines = [f"{field} = {json.dumps(value)}  #@param" if line.startswith(f"{field} = ") else line
             for line in code_cells(nb)[1].splitlines()]
    program = f"import sys; sys.path.insert(0, {str(archive)!r})\n" + "\n".join(lines)
    proc = subprocess.run([sys.executable, "-I", "-c", program], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr[-2000:]  # the cell ends; no traceback
    assert proc.stdout.count("\n") == 1 and proc.stdout.startswith(says), proc.stdout
    assert sorted(path.name for path in tmp_path.iterdir()) == ["colab_side.zip"]


def test_a_value_the_settings_refuse_is_said_in_the_heartbeat_so_the_daemon_tells_the_human(tmp_path):
    job = Job(tmp_path / "job", name="castle", images=4)
    keywords = dict(run_keywords(notebook.build(**SETTINGS)), drive_budget_gb="-3", images=str(job.images),
                    drive_root=str(job.drive), meshroom_url=str(job.release), local_dir=str(job.local))
    program = f"import sys, colab_side; sys.exit(colab_side.run(**{keywords!r}))"
    proc = subprocess.run([sys.executable, "-c", program], env=job.env, capture_output=True, text=True, timeout=120)
    beat = json.loads((job.job_dir / "heartbeat.json").read_text())
    assert proc.returncode == 2 and beat["phase"] == "failed" and beat["cause"] == "BAD_INPUT", proc.stdout[-2000:]
    assert "drive_budget_gb" in beat["reason"] and "form" in beat["action"]
    assert proc.stdout.strip() == f"colab_side: {beat['reason']}" and "Traceback" not in proc.stderr
