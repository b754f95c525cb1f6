"""Input is checked: URLs and origins parsed strictly, the config written by tomlkit, every number in a
range, job names by the notebook's own rule, --no-sandbox as root, doctor's files for the user only.
Bad input is one line that says what to do, never a traceback, and nothing is written."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import tomllib

import pytest
from hypothesis import given, settings, strategies as st

from colab_side import layout
from keepalive import cli, config
from keepalive.hands import browser

GOOD = "https://colab.research.google.com/drive/1AbCdEf"


def keepalive(*args, home, env_extra=None):
    """The command in its own process, as a user runs it."""
    env = dict(os.environ, KEEPALIVE_HOME=str(home), **(env_extra or {}))
    env.pop("KEEPALIVE_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "keepalive", *args], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120)


@pytest.fixture
def command(tmp_path, monkeypatch, capsys):
    """The command in this process (quicker): exit code and stderr, whatever it raised."""
    monkeypatch.setenv("KEEPALIVE_HOME", str(tmp_path))
    monkeypatch.delenv("KEEPALIVE_CONFIG", raising=False)
    monkeypatch.delenv("KEEPALIVE_COLAB_ORIGIN", raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO())

    def run(*args):
        code = cli.main(list(args))
        captured = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, captured.out, captured.err)

    return run


def one_clear_line(proc) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.strip().count("\n") == 0, proc.stderr
    return proc.stderr


@pytest.mark.parametrize("url", [
    GOOD + '"\ngrace_seconds = 0', GOOD + "'", GOOD + "\\x", GOOD + " x", GOOD + "\tx", GOOD + "\x00", GOOD + "\x7f",
    "http://colab.research.google.com/drive/1AbC",  # not https
    "https://colab.research.google.com.evil.example/drive/1AbC", "https://evil.example/drive/1AbC",
    "https://colab.research.google.com@evil.example/drive/1AbC", "https://user:pw@colab.research.google.com/drive/1",
    "https://colab.research.google.com:8443/drive/1AbC", "https://colab.research.google.com:x/drive/1AbC",
    "https://colab.research.google.com/drive/", "https://colab.research.google.com/settings",
    "javascript:alert(1)//colab.research.google.com/drive/1", "",
])
def test_a_url_that_is_not_exactly_a_notebook_on_the_origin_is_refused(url):
    with pytest.raises(config.ConfigError) as refused:
        config.check_colab_url(url, config.COLAB_ORIGIN)
    assert "\n" not in str(refused.value) and "/drive/1AbC" in str(refused.value)


@pytest.mark.parametrize("url", [GOOD, GOOD + "?usp=sharing", GOOD + "#scrollTo=abc",
                                 "https://colab.research.google.com/github/user/repo/blob/main/nb.ipynb"])
def test_share_links_are_accepted(url):
    assert config.check_colab_url(url, config.COLAB_ORIGIN) == url


@pytest.mark.parametrize("origin", ["http://colab.research.google.com", "ftp://colab.research.google.com",
                                    "https://colab.research.google.com/drive", "https://x@colab.example",
                                    'https://colab.example"', "https://", "colab.research.google.com"])
def test_an_origin_is_https_or_http_on_this_machine_only(origin):
    with pytest.raises(config.ConfigError):
        config.check_origin(origin)
    assert config.check_origin("http://127.0.0.1:8765/") == "http://127.0.0.1:8765"


@settings(max_examples=200, deadline=None)
@given(url=st.text())
def test_whatever_is_saved_as_the_url_reads_back_as_itself_and_nothing_else(tmp_path_factory, url):
    """A value can never become TOML syntax: no key is injected, nothing else in the file changes."""
    path = tmp_path_factory.mktemp("cfg") / "config.toml"
    path.write_text('# mine\n[supervisor]\ngrace_seconds = 300 # keep\n[colab]\norigin = "https://colab.research.google.com"\n')
    cfg = config.load(path, env={"KEEPALIVE_HOME": str(path.parent)})
    config.save_url(cfg, url)
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert data == {"supervisor": {"grace_seconds": 300},
                    "colab": {"origin": "https://colab.research.google.com", "url": url}}
    assert "# mine" in path.read_text(encoding="utf-8") and "# keep" in path.read_text(encoding="utf-8")


@settings(max_examples=300, deadline=None)
@given(url=st.text(alphabet=st.characters(), max_size=80).map(lambda tail: GOOD + tail))
def test_an_accepted_url_never_holds_a_quote_backslash_space_or_control_character(url):
    try:
        url = config.check_colab_url(url, config.COLAB_ORIGIN)
    except config.ConfigError:
        return
    assert not any(c in url for c in "\"'\\") and all(c.isprintable() and not c.isspace() for c in url)


def test_the_url_a_user_pastes_with_an_injection_is_refused_and_nothing_is_written(tmp_path):
    line = one_clear_line(keepalive("run", GOOD + '"\ngrace_seconds = 0\n#', home=tmp_path))
    assert "is not a Colab notebook URL" in line
    assert not (tmp_path / "config" / "config.toml").exists()


@pytest.mark.parametrize("value", ["0", "nan", "inf", "-1", "1e400", "-inf"])
def test_a_poll_interval_out_of_range_is_one_line(tmp_path, command, value):
    line = one_clear_line(command("run", GOOD, f"--poll-seconds={value}"))
    assert "--poll-seconds" in line and "out of range" in line
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("setting, value", [
    ("[supervisor]\ngrace_seconds", "-5"), ("[supervisor]\ngrace_seconds", "nan"),
    ("[supervisor]\ngrace_seconds", "inf"), ("[supervisor]\ndead_after", "0"),
    ("[supervisor]\ndead_after", "2.5"), ("[supervisor]\ncrash_loop_hours", "-inf"),
    ("[daemon]\npoll_seconds", "0"), ("[schedule]\nreopen_minutes", "0"), ("[view]\nrefresh_per_second", "1e9"),
    ("[notify]\nmin_interval_seconds", "-1"), ("[daemon]\nmode", '"turbo"'), ("[notify]\nbackend", '"smoke"'),
    ("[supervisor]\non_done", '"explode"'), ("[notify]\nurls", '["nosuchservice://token@host"]'),
    ("[notify]\nurls", '"ntfy://topic"'), ("[colab]\norigin", '"http://colab.research.google.com"'),
])
def test_every_setting_out_of_range_in_the_file_is_one_line_naming_it(tmp_path, command, setting, value):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.toml").write_text(f"{setting} = {value}\n")
    line = one_clear_line(command("status"))
    assert setting.split("\n")[1] in line


@pytest.mark.parametrize("job", ["../x", "a/b", "a\\b", "..", ".hidden", "", "x" * 65, "_meshroom", "a b", "castle\n",
                                 "ca\tstle", "x\x00", "con", "NUL.txt", "castle.", "u\u0308ber"])
def test_a_job_name_follows_the_notebooks_own_rule(tmp_path, command, job):
    line = one_clear_line(command("status", "--job", job))
    assert "job name" in line
    with pytest.raises(ValueError):
        layout.check_job_name(job)  # the same rule, on the Colab side
    assert not (tmp_path / "x").exists() and not (tmp_path / "state").exists()


def test_the_notebook_command_checks_the_job_name_too(tmp_path, command):
    line = one_clear_line(command("notebook", "--job", "../../etc", "--out", str(tmp_path / "nb.ipynb")))
    assert "job name" in line and not (tmp_path / "nb.ipynb").exists()


def test_good_values_at_the_ends_of_their_ranges_are_kept(tmp_path):
    cfg = config.load(env={"KEEPALIVE_HOME": str(tmp_path)}, poll_seconds=0.05, job="a" * 64)
    assert cfg.poll_seconds == 0.05 and cfg.job == "a" * 64
    for key, (low, high) in config.RANGES.items():
        assert low <= high, key


def test_as_root_every_browser_gets_no_sandbox_and_otherwise_not(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert browser.root_flags() == ["--no-sandbox", "--disable-dev-shm-usage"]
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert browser.root_flags() == []


def test_without_chrome_or_chromium_the_demo_says_in_one_line_what_to_install(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    line = one_clear_line(keepalive("demo", "--headless", "--workdir", str(tmp_path / "demo"), home=tmp_path,
                                    env_extra={"PATH": str(empty)}))
    assert "no Chrome or Chromium found" in line and "apt-get install chromium" in line


def test_private_files_are_for_the_user_only_even_when_they_existed(tmp_path):
    old = tmp_path / "page.html"
    old.write_text("old")
    os.chmod(old, 0o644)
    browser.write_private(old, b"<html>user@example.com</html>")
    assert stat.S_IMODE(old.stat().st_mode) == 0o600 and old.read_bytes() == b"<html>user@example.com</html>"
    folder = browser.private_dir(tmp_path / "doctor")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
