"""``keepalive demo`` as a script runs it: the whole product, disconnects injected, a JSON summary,
and a result identical to the same job run once without interruption."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import chromium_available
from jobkit import Job

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not chromium_available(), reason="needs chromium and chromedriver")]


def test_demo_recovers_every_disconnect_and_gets_the_uninterrupted_result(tmp_path):
    workdir = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "keepalive", "demo", "--headless", "--kills", "2", "--json",
                           "--workdir", str(workdir)], env=dict(os.environ, KEEPALIVE_HOME=str(tmp_path / "home")),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["done"] is True and summary["exit_code"] == 0
    assert summary["kills"] == 2 and summary["recoveries"] == 2
    assert summary["run_all"] >= 3  # the first start and one per disconnect
    assert summary["seconds"] > 0 and summary["workdir"] == str(workdir)

    # the live view went to stderr as plain lines (no terminal), through the job's phases
    lines = proc.stderr.splitlines()
    assert "\x1b[" not in proc.stderr
    assert any("phase=computing" in line and "heartbeat=stale" in line for line in lines)
    assert any("phase=done" in line for line in lines)

    images = len(list((workdir / "drive" / "images").iterdir()))
    reference = Job(tmp_path / "reference", name="demo", images=images)
    subprocess.run(reference.command(), env=reference.env, check=True, capture_output=True, timeout=120)
    demo_result = workdir / "drive" / "keepalive" / "demo" / "result"
    got = {p.name: p.read_bytes() for p in sorted(demo_result.iterdir())}
    assert got == reference.result_files() != {}
    assert sorted(summary["result_files"]) == sorted(got)
