"""The keepalive command as a user runs it: URL, config, status, notebook, doctor, the job lock."""

from __future__ import annotations

import base64
import json
import re
import os
import subprocess
import sys
import zipfile
import io

import pytest

from conftest import chromium_available
from colab_side import heartbeat as hb
from keepalive import config
from keepalive.journal import AlreadyRunning, Journal


def keepalive(*args, home, env_extra=None, stdin=None):
    env = dict(os.environ, KEEPALIVE_HOME=str(home), **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "keepalive", *args], env=env, capture_output=True, text=True,
                          input=stdin, timeout=120)


def test_url_check_names_what_a_good_url_looks_like():
    good = "https://colab.research.google.com/drive/1AbCdEf"
    assert config.check_colab_url(good, config.COLAB_ORIGIN) == good
    for bad in ("", "https://example.com/drive/1", "https://colab.research.google.com/", "colab notebook"):
        with pytest.raises(config.ConfigError) as error:
            config.check_colab_url(bad, config.COLAB_ORIGIN)
        assert "/drive/" in str(error.value)


def test_bad_url_is_one_line_and_nothing_is_saved(tmp_path):
    proc = keepalive("run", "https://example.com/notebook", home=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "is not a Colab notebook URL" in proc.stderr
    assert not (tmp_path / "config" / "config.toml").exists()


def test_the_url_is_remembered_and_the_rest_of_the_config_kept(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[job]\nname = "castle"\n\n[colab]\norigin = "http://127.0.0.1:9"\n')
    cfg = config.load(path, env={"KEEPALIVE_HOME": str(tmp_path)})
    config.save_url(cfg, "http://127.0.0.1:9/drive/abc")
    again = config.load(path, env={"KEEPALIVE_HOME": str(tmp_path)})
    assert (again.url, again.job, again.origin) == ("http://127.0.0.1:9/drive/abc", "castle", "http://127.0.0.1:9")
    config.save_url(again, "http://127.0.0.1:9/drive/def")
    assert config.load(path, env={"KEEPALIVE_HOME": str(tmp_path)}).url == "http://127.0.0.1:9/drive/def"


def test_origin_layers_file_env_cli(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[colab]\norigin = "https://file"\n')
    env = {"KEEPALIVE_HOME": str(tmp_path)}
    assert config.load(path, env=env).origin == "https://file"
    assert config.load(path, env=dict(env, KEEPALIVE_COLAB_ORIGIN="https://env")).origin == "https://env"
    assert config.load(path, env=dict(env, KEEPALIVE_COLAB_ORIGIN="https://env"), origin="https://cli").origin == "https://cli"


def test_corrupt_config_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "config" / "config.toml"
    path.parent.mkdir()
    path.write_text('[colab\nurl = "half')
    proc = keepalive("status", home=tmp_path)
    assert proc.returncode == 2 and str(path) in proc.stderr and proc.stderr.strip().count("\n") == 0
    path.write_text('[supervisor]\ngrace_seconds = "soon"\n')
    proc = keepalive("status", home=tmp_path)
    assert proc.returncode == 2 and "supervisor.grace_seconds" in proc.stderr


def test_unknown_config_keys_are_warned_not_fatal(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[supervisor]\ngrace = 3\n[colab]\nurl = "x"\n')
    cfg = config.load(path, env={"KEEPALIVE_HOME": str(tmp_path)})
    assert any("supervisor.grace" in w for w in cfg.warnings)


def test_status_reads_the_heartbeat_and_says_corrupt_or_missing(tmp_path):
    drive = tmp_path / "drive"
    beat_path = hb.heartbeat_path(drive, "castle")
    proc = keepalive("status", "--json", "--job", "castle", "--drive-folder", str(drive), home=tmp_path)
    assert json.loads(proc.stdout)["heartbeat"] == "missing"
    beat_path.parent.mkdir(parents=True)
    beat_path.write_text('{"job": "castle", "sess')
    proc = keepalive("status", "--json", "--job", "castle", "--drive-folder", str(drive), home=tmp_path)
    assert json.loads(proc.stdout)["heartbeat"] == "corrupt"
    beat = hb.Heartbeat(job="castle", session="s", seq=3, time="2026-01-01T00:00:00+00:00", phase="computing",
                        progress=0.25, node="DepthMap_1")
    beat_path.write_text(beat.to_json())
    info = json.loads(keepalive("status", "--json", "--job", "castle", "--drive-folder", str(drive),
                                home=tmp_path).stdout)
    assert info["heartbeat"] == "fresh" and info["phase"] == "computing" and info["progress"] == 0.25
    assert info["restarts"] == 0
    text = keepalive("status", "--job", "castle", "--drive-folder", str(drive), home=tmp_path).stdout
    assert "DepthMap_1" in text and "25.0%" in text


def test_notebook_embeds_colab_side_and_runs_the_users_settings(tmp_path):
    out = tmp_path / "nb.ipynb"
    proc = keepalive("notebook", "--out", str(out), "--images", "/content/drive/MyDrive/castle", "--job", "castle",
                     home=tmp_path)
    assert proc.returncode == 0
    notebook = json.loads(out.read_text())
    source = "".join("".join(cell["source"]) for cell in notebook["cells"])
    assert "pip install" not in source and "drive.mount" in source
    for field in ('images = "/content/drive/MyDrive/castle"  #@param', 'job = "castle"  #@param',
                  'meshroom = "2019.2"  #@param'):
        assert field in source
    assert "colab_side.run(images=images, job=job, meshroom=meshroom," in source
    payload = "".join(notebook["cells"][1]["source"]).split('COLAB_SIDE = "')[1].split('"')[0]
    archive = tmp_path / "colab_side.zip"
    archive.write_bytes(base64.b64decode(payload))
    assert "colab_side/runner.py" in zipfile.ZipFile(io.BytesIO(archive.read_bytes())).namelist()
    check = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(archive)!r}); "
                            "import colab_side; print(colab_side.run.__module__, colab_side.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path)
    assert check.stdout.startswith("colab_side.runner") and "colab_side.zip" in check.stdout


@pytest.mark.parametrize("option, says", [
    (["--images", "G:\\My Drive\\photos"], "is a folder on your PC; write it as Colab sees it on your Drive, "
                                            "e.g. /content/drive/MyDrive/photos; nothing written"),
    (["--images", "photos"], "write the full path, e.g. /content/drive/MyDrive/images for My Drive/images"),
    (["--meshroom", "2024"], "unknown Meshroom version '2024': use one of 2019.2, 2021.1, 2023.3, 2025.1"),
])
def test_notebook_refuses_what_colab_cannot_use_in_one_line_saying_what_to_write(tmp_path, option, says):
    proc = keepalive("notebook", "--out", str(tmp_path / "nb.ipynb"), *option, home=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and says in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "nb.ipynb").exists()


def test_the_job_named_by_notebook_is_the_one_every_later_command_uses_without_retyping(tmp_path):
    proc = keepalive("notebook", "--out", str(tmp_path / "nb.ipynb"), "--job", "城", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("job 城 is remembered for run, status, doctor and service; "
                                        "then run 'keepalive run <its URL>'")
    env = {"KEEPALIVE_HOME": str(tmp_path)}
    assert config.load(env=env).job == "城"
    assert json.loads(keepalive("status", "--json", home=tmp_path).stdout)["job"] == "城"
    from keepalive import service
    assert service.command(config.load(env=env).path, job="城")[-4:] == ["run", "--service", "--job", "城"]


def test_several_jobs_keep_each_their_notebook_and_a_job_runs_none_but_its_own(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('# mine\n[colab]\nurl = "https://colab.research.google.com/drive/M"\n')  # one job, as before
    env = {"KEEPALIVE_HOME": str(tmp_path)}
    config.remember_job(config.load(path, env=env), "castle")
    castle = config.load(path, env=env)
    assert (castle.job, castle.url) == ("castle", "")  # never the other job's notebook
    config.save_url(castle, "https://colab.research.google.com/drive/C")
    temple = config.load(path, env=env, job="temple")
    config.save_url(temple, "https://colab.research.google.com/drive/T")
    urls = {job: config.load(path, env=env, job=job).url for job in ("meshroom", "castle", "temple")}
    assert urls == {job: f"https://colab.research.google.com/drive/{job[0].upper()}" for job in urls}
    assert config.load(path, env=env).job == "castle" and "# mine" in path.read_text()
    config.remember_job(config.load(path, env=env), "temple")
    assert {job: config.load(path, env=env, job=job).url for job in urls} == urls
    assert config.load(path, env=env).job == "temple"


def test_a_notebook_given_to_another_job_is_forgotten_by_the_job_named_by_mistake(tmp_path):
    path = tmp_path / "config.toml"
    env = {"KEEPALIVE_HOME": str(tmp_path)}
    config.remember_job(config.load(path, env=env), "castle")
    config.save_url(config.load(path, env=env), "https://colab.research.google.com/drive/D")  # runs job demo, in fact
    config.remember_job(config.load(path, env=env), "demo")  # as 'keepalive run URL --job demo' does
    config.save_url(config.load(path, env=env), "https://colab.research.google.com/drive/D")
    assert config.load(path, env=env, job="castle").url == ""
    assert config.load(path, env=env).url == "https://colab.research.google.com/drive/D"


def test_doctor_for_a_job_without_a_notebook_says_how_to_give_it_one(tmp_path):
    proc = keepalive("doctor", "--job", "temple", home=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "no notebook URL is remembered for job temple" in proc.stderr
    assert "'keepalive run --job temple <its URL>' once" in proc.stderr


def test_a_notebook_under_a_config_of_its_own_names_that_config_in_the_next_command(tmp_path):
    mine = tmp_path / "my config.toml"
    proc = keepalive("--config", str(mine), "notebook", "--out", str(tmp_path / "nb.ipynb"), home=tmp_path)
    assert proc.stdout.strip().endswith(f"then run 'keepalive --config '{mine}' run <its URL>'")


HOLD_LOCK = """
import sys, time
from keepalive.journal import Journal
journal = Journal(sys.argv[1], "castle")
journal.lock("selenium")
print("locked", flush=True)
time.sleep(600)
"""


def hold_lock(state_dir):
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(state_dir)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "locked\n"
    return holder


def test_a_second_daemon_is_refused_until_the_first_dies_however_it_dies(tmp_path):
    holder = hold_lock(tmp_path)
    try:
        with pytest.raises(AlreadyRunning) as refused:
            Journal(tmp_path, "castle").lock()
        assert f"(pid {holder.pid}) already watches this job" in str(refused.value)
        watcher = Journal(tmp_path, "castle").watcher()
        assert (watcher["pid"], watcher["mode"]) == (holder.pid, "selenium") and watcher["since"]
    finally:
        holder.kill()  # SIGKILL: no clean-up ran, the OS let go of the lock
        holder.wait()
    assert Journal(tmp_path, "castle").watcher() is None  # the pid file is left behind; the lock says no one
    second = Journal(tmp_path, "castle")
    second.lock("keys")
    assert json.loads(second.pid_path.read_text())["pid"] == os.getpid()
    assert Journal(tmp_path, "castle").watcher()["mode"] == "keys"  # the holder's own process sees it held too
    second.unlock()
    assert not second.pid_path.exists()
    assert Journal(tmp_path / "never", "castle").watcher() is None


def test_status_says_who_watches_and_exits_by_what_needs_doing(tmp_path):
    drive = tmp_path / "drive"
    beat_path = hb.heartbeat_path(drive, "castle")
    beat_path.parent.mkdir(parents=True)

    def status(phase, **fields):
        beat_path.write_text(hb.Heartbeat(job="castle", session="s", seq=3, time="2026-01-01T00:00:00+00:00",
                                          phase=phase, **fields).to_json())
        return keepalive("status", "--job", "castle", "--drive-folder", str(drive), home=tmp_path)

    unwatched = status("computing")
    assert unwatched.returncode == 4
    assert "NOT watched: no keepalive daemon runs for this job; start one: keepalive run --job castle" in unwatched.stdout
    holder = hold_lock(tmp_path / "state")
    try:
        watched = status("computing")
        assert watched.returncode == 0
        since = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(0:00:\d\d\)"
        assert re.search(rf"watched by keepalive pid {holder.pid} since {since}, selenium mode",
                         watched.stdout), watched.stdout
        info = json.loads(keepalive("status", "--json", "--job", "castle", "--drive-folder", str(drive),
                                    home=tmp_path).stdout)
        assert info["watched_by"]["pid"] == holder.pid and info["exit_code"] == 0
        assert info["heartbeat_reading"] == "fresh"
        failed = status("failed", cause="CODE_ERROR", reason="DepthMap_1 ended in ERROR", action="fix the input")
        assert failed.returncode == 1 and "CODE_ERROR: DepthMap_1 ended in ERROR — to do: fix the input" in failed.stdout
        assert status("blocked", cause="NO_GPU", reason="no GPU", action="choose a GPU runtime").returncode == 1
    finally:
        holder.kill()
        holder.wait()
    done = status("done", reason="result published")
    assert done.returncode == 0 and "none is needed: the job is done" in done.stdout
    assert "DONE: the job finished" in done.stdout


@pytest.mark.browser
@pytest.mark.skipif(not chromium_available(), reason="needs chromium and chromedriver")
def test_doctor_reports_state_and_saves_screenshot_and_html(tmp_path, sleeper_sim):
    # no browser flags in any config: as root (CI, containers) keepalive itself adds --no-sandbox
    proc = keepalive("doctor", sleeper_sim.notebook_url, "--headless", "--json", "--out", str(tmp_path / "doc"),
                     home=tmp_path, env_extra={"KEEPALIVE_COLAB_ORIGIN": sleeper_sim.origin})
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["state"] == "disconnected" and report["found"]["connect_button"]
    assert open(report["screenshot"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert "colab-connect-button" in open(report["html"]).read()
    # the signed-in page (account e-mail, notebook content) is for the user only
    for saved in (report["screenshot"], report["html"]):
        assert os.stat(saved).st_mode & 0o777 == 0o600
    assert os.stat(tmp_path / "doc").st_mode & 0o777 == 0o700


def test_the_example_config_is_complete_and_valid(tmp_path):
    from pathlib import Path

    example = Path(__file__).parent.parent / "configs" / "keepalive.example.toml"
    cfg = config.load(example, env={"KEEPALIVE_HOME": str(tmp_path)})
    assert cfg.warnings == []
    assert cfg.supervisor.grace_seconds == 300 and cfg.poll_seconds == 10


def test_status_judges_the_heartbeats_age_on_this_pcs_clock_only(tmp_path):
    from keepalive import status

    cfg = config.load(env={"KEEPALIVE_HOME": str(tmp_path / "home")}, job="castle", drive_folder=str(tmp_path / "d"))
    grace = cfg.supervisor.grace_seconds
    path = hb.heartbeat_path(tmp_path / "d", "castle")
    path.parent.mkdir(parents=True)

    def beat(seq, written="2099-01-01T00:00:00+00:00"):  # Colab's clock, far off: never used for the age
        path.write_text(hb.Heartbeat(job="castle", session="s", seq=seq, time=written, phase="computing").to_json())
        os.utime(path, (0, 0))  # nor is the file's mtime (1970)

    beat(1)
    first = status.collect(cfg, wall=1_000_000.0)
    assert first["heartbeat"] == "fresh" and first["heartbeat_age_seconds"] is None  # first seen now
    later = status.collect(cfg, wall=1_000_000.0 + grace + 1)
    assert later["heartbeat"] == "stale" and later["heartbeat_age_seconds"] == grace + 1
    beat(2)
    assert status.collect(cfg, wall=1_000_000.0 + grace + 2)["heartbeat"] == "fresh"  # it moved
    journal = Journal(cfg.dirs.state, "castle")  # what a running daemon noted beats status's own note
    journal.save_state({"heartbeat_seen": {"session": "s", "seq": 2, "pc_time": 1_000_000.0 - 3600}})
    noted = status.collect(cfg, wall=1_000_000.0 + grace + 2)
    assert noted["heartbeat"] == "stale" and noted["heartbeat_age_seconds"] == 3600 + grace + 2


def test_the_example_config_shows_every_setting(tmp_path):
    import dataclasses
    import tomllib
    from pathlib import Path

    example = tomllib.loads((Path(__file__).parent.parent / "configs" / "keepalive.example.toml").read_text())
    for section, key in config._KEYS:
        assert (section, key) == ("colab", "url") or key in example.get(section, {}), f"[{section}] {key}"  # url: written by run
    for section, kind in config._NESTED.items():
        shown = example.get(section, {})
        set_by_the_hands = ("blind", "human_hints")
        missing = [f.name for f in dataclasses.fields(kind) if f.name not in shown and f.name not in set_by_the_hands]
        assert section == "cli" or missing == [], f"[{section}] {missing}"  # [cli]: documented with cli mode


def test_doctor_says_what_it_could_not_save_when_the_browser_gives_no_answer(tmp_path):
    """A renderer hung on a page that never loads times out (seen on a busy machine): one line, no traceback."""
    from selenium.common.exceptions import TimeoutException

    from keepalive import doctor

    def hung():
        raise TimeoutException("Timed out receiving message from renderer: 10.000")

    assert doctor._saved(tmp_path / "doctor.png", hung) is None and not (tmp_path / "doctor.png").exists()
    assert doctor._saved(tmp_path / "doctor.html", lambda: b"<html>") == str(tmp_path / "doctor.html")
    shown = doctor.render({"problem": "Colab does not answer", "screenshot": None, "html": str(tmp_path / "d.html")})
    assert shown.splitlines() == ["keepalive doctor: Colab does not answer",
                                  "screenshot: not taken (the browser did not answer)", f"page HTML: {tmp_path / 'd.html'}"]
