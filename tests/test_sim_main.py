"""``python -m keepalive_sim``: the simulator on its own, with a config that ``keepalive`` commands use as they are."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from conftest import chromium_available


@pytest.mark.browser
@pytest.mark.skipif(not chromium_available(), reason="needs chromium and chromedriver")
def test_the_simulator_runs_on_its_own_and_keepalive_doctor_and_status_use_it(tmp_path):
    sim = subprocess.Popen([sys.executable, "-m", "keepalive_sim", "--workdir", str(tmp_path), "--images", "3"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = sim.stdout.readline()
        url = re.match(r"Colab simulator: (http://127\.0\.0\.1:\d+/drive/demo) ", first).group(1)
        printed = [sim.stdout.readline() for _ in range(9)]
        home = tmp_path / "home"
        assert f"  export KEEPALIVE_HOME={home}\n" in printed
        with urllib.request.urlopen(url, timeout=30) as page:
            assert "colab-connect-button" in page.read().decode()
        env = dict(os.environ, KEEPALIVE_HOME=str(home))
        keepalive = [sys.executable, "-m", "keepalive"]
        doctor = subprocess.run([*keepalive, "doctor", "--headless", "--json"], env=env, capture_output=True,
                                text=True, timeout=180)
        assert doctor.returncode == 0, doctor.stderr
        assert json.loads(doctor.stdout)["state"] == "disconnected"
        status = subprocess.run([*keepalive, "status"], env=env, capture_output=True, text=True, timeout=60)
        assert "job demo" in status.stdout and "Traceback" not in status.stderr
        sim.send_signal(signal.SIGINT)
        assert sim.wait(timeout=60) == 0
    finally:
        if sim.poll() is None:
            sim.kill()
            sim.wait()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=10)
