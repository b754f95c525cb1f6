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


@pytest.mark.browser
@pytest.mark.skipif(not chromium_available(), reason="needs chromium and chromedriver")
def test_a_new_users_path_from_notebook_to_done_never_retypes_the_job(tmp_path):
    sim = subprocess.Popen([sys.executable, "-m", "keepalive_sim", "--workdir", str(tmp_path), "--images", "3",
                            "--chunk-seconds", "0.2"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = re.match(r"Colab simulator: (http://127\.0\.0\.1:\d+/drive/demo) ", sim.stdout.readline()).group(1)
        path = tmp_path / "home" / "config" / "config.toml"
        while not path.exists() or "[job]" not in path.read_text():
            sim.stdout.readline()  # the config is written before the commands are printed
        text = re.sub(r'(?m)^(url = .*|name = "demo")\n', "", path.read_text())  # a new user: no job, no notebook
        path.write_text(text)
        env = dict(os.environ, KEEPALIVE_HOME=str(tmp_path / "home"))
        keepalive = [sys.executable, "-m", "keepalive"]
        notebook = subprocess.run([*keepalive, "notebook", "--job", "demo", "--out", str(tmp_path / "nb.ipynb")],
                                  env=env, capture_output=True, text=True, timeout=60)
        assert notebook.stdout.strip().endswith("then run 'keepalive run <its URL>'")
        run = subprocess.run([*keepalive, "run", url, "--headless"], env=env, capture_output=True, text=True,
                             timeout=300)  # the command as printed, the job not retyped
        assert run.returncode == 0, run.stderr[-2000:]
        assert run.stderr.strip().splitlines()[-1].startswith("keepalive: DONE: the job finished")
        status = subprocess.run([*keepalive, "status"], env=env, capture_output=True, text=True, timeout=60)
        assert status.returncode == 0 and status.stdout.startswith("job demo: phase done")
    finally:
        sim.send_signal(signal.SIGINT)
        try:
            sim.wait(timeout=60)
        except subprocess.TimeoutExpired:
            sim.kill()
            sim.wait()
