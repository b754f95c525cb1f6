"""The user's own pipeline and parameters reach Meshroom through each release's own options; bad names stop early."""

from __future__ import annotations

import json
import subprocess

import pytest
from hypothesis import given, strategies as st

from colab_side.meshroom import commands, versions
from colab_side.meshroom.commands import OptionsError, PipelineOptions
from colab_side.meshroom.graph import parse
from jobkit import Job

GRAPH = {"header": {"releaseVersion": "2019.2.0"}, "graph": {
    "CameraInit_1": {"nodeType": "CameraInit", "uids": {"0": "a"}, "inputs": {"viewpoints": []}, "outputs": {"output": "x"}},
    "DepthMap_1": {"nodeType": "DepthMap", "uids": {"0": "b"}, "parallelization": {"blockSize": 3, "size": 7},
                   "inputs": {"input": "{CameraInit_1.output}", "downscale": 2}, "outputs": {"output": "y"}},
    "Texturing_1": {"nodeType": "Texturing", "uids": {"0": "c"},
                    "inputs": {"input": "{DepthMap_1.output}", "colorMapping": {"enable": True}}, "outputs": {"output": "z"}},
    "Publish_1": {"nodeType": "Publish", "uids": {"0": "d"}, "inputs": {"inputFiles": ["{Texturing_1.output}"], "output": ""}},
}}


def graph(doc=GRAPH):
    return parse(json.dumps(doc))


names = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,12}", fullmatch=True)


@given(node=names, attribute=names, value=st.text(max_size=20).filter(lambda v: "\n" not in v))
def test_a_parameter_is_node_dot_attribute_equals_value(node, attribute, value):
    assert commands.parse_param(f"{node}.{attribute}={value}") == (node, attribute, value)


@pytest.mark.parametrize("text", ["DepthMap_1downscale=4", "DepthMap_1.downscale", ".downscale=4", "DepthMap 1.x=4"])
def test_a_malformed_parameter_is_refused_with_an_example(text):
    with pytest.raises(OptionsError, match="DepthMap_1.downscale=4"):
        commands.parse_param(text)


def test_parameter_values_become_the_json_values_meshroom_reads():
    assert [commands.param_value(t) for t in ("4", "0.5", "False", "true", "sift", '"4"')] == [4, 0.5, False, True, "sift", "4"]


def test_names_are_checked_exactly_against_the_saved_graph():
    g = graph()
    assert commands.unknown_names(g, {"DepthMap_1": {"downscale": 4}, "Texturing_1": {"colorMapping.enable": False}}) == []
    problems = commands.unknown_names(g, {"DepthMap": {"downscale": 4}, "DepthMap_1": {"downscal": 4, "output": "o"}})
    assert problems[0].startswith("the graph has no node DepthMap ") and "DepthMap_1" in problems[0]
    assert "node DepthMap_1 (DepthMap) has no input attribute downscal" in problems[1]
    assert "no input attribute output" in problems[2]  # an output is not a parameter
    assert commands.unknown_names(g, {"Texturing_1": {"colorMapping.nope": 1}})[0].endswith(
        "(its inputs: colorMapping, input)")


def test_a_custom_pipeline_needs_one_camera_init_and_a_publish_node(tmp_path):
    good = tmp_path / "good.mg"
    good.write_text(json.dumps(GRAPH))
    assert PipelineOptions.read(pipeline=good).pipeline == good
    template = {"header": {"template": True}, "graph": {  # as Meshroom's "Save As Template" writes: no uids
        name: {"nodeType": node["nodeType"], "inputs": {}} for name, node in GRAPH["graph"].items()}}
    (tmp_path / "template.mg").write_text(json.dumps(template))
    assert PipelineOptions.read(pipeline=tmp_path / "template.mg").pipeline == tmp_path / "template.mg"
    doc = json.loads(json.dumps(GRAPH))
    del doc["graph"]["Publish_1"]
    (tmp_path / "nopublish.mg").write_text(json.dumps(doc))
    with pytest.raises(OptionsError, match="no Publish node"):
        PipelineOptions.read(pipeline=tmp_path / "nopublish.mg")
    with pytest.raises(OptionsError, match="does not exist"):
        PipelineOptions.read(pipeline=tmp_path / "missing.mg")


def test_overrides_file_and_parameters_merge_parameters_last(tmp_path):
    path = tmp_path / "o.json"
    path.write_text(json.dumps({"DepthMap_1": {"downscale": 8, "minViewAngle": 3.0}}))
    options = PipelineOptions.read(params=["DepthMap_1.downscale=4", "Texturing_1.textureSide=4096"], overrides=path)
    assert options.requested == {"DepthMap_1": {"downscale": 4, "minViewAngle": 3.0}, "Texturing_1": {"textureSide": 4096}}
    path.write_text("[1, 2]")
    with pytest.raises(OptionsError, match="must map node names"):
        PipelineOptions.read(overrides=path)
    path.write_text("{not json")
    with pytest.raises(OptionsError, match="not readable JSON"):
        PipelineOptions.read(overrides=path)


def test_2019_2_gets_parameters_inside_an_overrides_file(tmp_path):
    user = tmp_path / "user.json"
    user.write_text(json.dumps({"Meshing_1": {"maxPoints": 100}}))
    options = PipelineOptions.read(None, ["DepthMap_1.downscale=4"], user)
    command = commands.save_command(versions.get("2019.2"), "/opt/m", "/img", "/p.mg", "/c", "/out", options, tmp_path)
    assert "--paramOverrides" not in command and "--compute" not in command
    written = command[command.index("--overrides") + 1]
    assert written != str(user)
    assert json.loads(open(written).read()) == {"Meshing_1": {"maxPoints": 100}, "DepthMap_1": {"downscale": 4}}


@pytest.mark.parametrize("version", ["2021.1", "2023.3", "2025.1"])
def test_meshroom_batch_gets_its_own_param_overrides_option(tmp_path, version):
    user = tmp_path / "user.json"
    user.write_text("{}")
    pipeline = tmp_path / "mine.mg"
    pipeline.write_text(json.dumps(GRAPH))
    options = PipelineOptions.read(pipeline, ["DepthMap_1.downscale=4", "Texturing_1.textureSide=4096"], user)
    command = commands.save_command(versions.get(version), "/opt/m", "/img", "/p.mg", "/c", "/out", options, tmp_path)
    assert command[command.index("--pipeline") + 1] == str(pipeline)
    assert command[command.index("--overrides") + 1] == str(user)
    at = command.index("--paramOverrides")
    assert command[at + 1:at + 3] == ["DepthMap_1.downscale=4", "Texturing_1.textureSide=4096"]
    assert command[-2:] == ["--compute", "no"]
    assert not list(tmp_path.glob("overrides.json"))


def test_without_options_the_commands_are_the_plain_ones():
    plain = commands.save_command(versions.get("2019.2"), "/m", "/img", "/p.mg", "/c", "/out")
    assert plain == ["/m/meshroom_photogrammetry", "--input", "/img", "--output", "/out", "--cache", "/c", "--save", "/p.mg"]


def run_job(job: Job, *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    proc = subprocess.run(job.command(*extra), env=job.env, capture_output=True, text=True, timeout=240)
    beat = json.loads((job.job_dir / "heartbeat.json").read_text())
    return proc, beat


def test_an_unknown_node_or_attribute_fails_bad_input_before_anything_is_computed(tmp_path):
    job = Job(tmp_path / "a", images=4)
    proc, beat = run_job(job, "--param", "DepthMap_1.downscal=4")
    assert proc.returncode != 0 and beat["phase"] == "failed" and beat["cause"] == "BAD_INPUT"
    assert "node DepthMap_1 (DepthMap) has no input attribute downscal (its inputs: " in beat["reason"]
    assert not (job.job_dir / "project.mg").exists()
    assert not [e for e in map(json.loads, (job.job_dir / "events.jsonl").read_text().splitlines())
                if e.get("event") in ("node_start", "chunk_done")]
    job = Job(tmp_path / "b", images=4)
    proc, beat = run_job(job, "--param", "NoSuchNode_1.downscale=4")
    assert beat["cause"] == "BAD_INPUT" and "NoSuchNode_1" in beat["reason"]


def test_a_bad_parameter_or_overrides_file_fails_in_one_line(tmp_path):
    job = Job(tmp_path / "a", images=4)
    proc, beat = run_job(job, "--param", "downscale=4")
    assert beat["cause"] == "BAD_INPUT" and "Node_1.attribute=value" in beat["reason"]
    assert "Traceback" not in proc.stdout + proc.stderr
    job = Job(tmp_path / "b", images=4)
    proc, beat = run_job(job, "--overrides", str(tmp_path / "missing.json"))
    assert beat["cause"] == "BAD_INPUT" and "missing.json does not exist" in beat["reason"]
