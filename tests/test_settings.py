"""One table of settings: the command line, colab_side.run and Settings agree, and bad values are one line."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from colab_side import heartbeat as hb
from colab_side import settings


def parse(*argv: str) -> settings.Settings:
    parser = argparse.ArgumentParser()
    settings.add_arguments(parser)
    return settings.make(**vars(parser.parse_args(list(argv))))


def test_every_row_is_a_settings_field_and_an_option_with_the_same_default():
    assert [f.name for f in dataclasses.fields(settings.Settings)] == [row.name for row in settings.FIELDS]
    from_the_command_line = parse("--images", "photos")
    from_the_notebook = settings.make(images="photos")
    assert from_the_command_line == from_the_notebook
    for row in settings.FIELDS:
        if not row.required:
            assert getattr(from_the_notebook, row.name) == row.default, row.name


def test_options_reach_their_fields_converted():
    chosen = parse("--images", "photos", "--drive-budget", "7.5", "--no-prune", "--param", "DepthMap_1.downscale=4",
                   "--param", "Meshing_1.maxPoints=100", "--max-node-errors", "3", "--replan")
    assert chosen.images == Path("photos") and chosen.drive_budget_bytes == int(7.5 * settings.GB)
    assert chosen.prune is False and chosen.replan is True and chosen.max_node_errors == 3
    assert chosen.params == ("DepthMap_1.downscale=4", "Meshing_1.maxPoints=100")
    assert chosen.drive_margin_bytes == 2 * settings.GB and settings.make(images="x").drive_budget_bytes is None


def test_the_forms_texts_read_as_the_options_given():
    """The notebook's form holds texts: blank is not given, one text holds every parameter."""
    chosen = settings.make(images="x", drive_budget_gb=" ", pipeline="", params="")
    assert (chosen.drive_budget_gb, chosen.pipeline, chosen.params) == (None, None, ())
    chosen = settings.make(images="x", drive_budget_gb="12.5",
                           params="DepthMap_1.downscale=4, FeatureExtraction_1.describerTypes=sift,akaze;Meshing_1.x=1\n")
    assert chosen.drive_budget_gb == 12.5
    assert chosen.params == ("DepthMap_1.downscale=4", "FeatureExtraction_1.describerTypes=sift,akaze", "Meshing_1.x=1")


@pytest.mark.parametrize("values, says", [
    ({}, "images is required"),
    ({"images": "x", "heartbeat_seconds": 0}, "heartbeat_seconds must be between 0.05 and 3600"),
    ({"images": "x", "max_node_errors": 1.5}, "max_node_errors must be a whole number"),
    ({"images": "x", "drive_budget_gb": "lots"}, "drive_budget_gb must be a number"),
    ({"images": "x", "drive_budget_gb": float("nan")}, "drive_budget_gb must be between"),
    ({"images": "x", "prune": "no"}, "prune must be True or False"),
    ({"images": "x", "params": 4}, "params must be a list of texts"),
    ({"images": "x", "gpu": True}, "unknown setting 'gpu'"),
    ({"images": ""}, "images must be a non-empty path"),
])
def test_a_bad_value_is_refused_in_one_line_naming_the_setting(values, says):
    with pytest.raises(settings.SettingsError) as error:
        settings.make(**values)
    assert says in str(error.value) and "\n" not in str(error.value)


def test_the_command_line_says_a_bad_value_in_one_line_and_runs_nothing(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "colab_side", "run", "--images", str(tmp_path),
                           "--drive-root", str(tmp_path), "--lifetime-hours", "0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stdout + proc.stderr
    assert proc.stdout.strip() == "colab_side: lifetime_hours must be between 0.01 and 10000, not 0.0"
    written = sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "keepalive").rglob("*") if p.is_file())
    assert written == ["keepalive/meshroom/heartbeat.json"]  # only the job's last word, for the daemon: nothing ran
    beat = hb.read(tmp_path / written[0])
    assert beat.phase == hb.FAILED and beat.cause == hb.BAD_INPUT and "lifetime_hours" in beat.reason
