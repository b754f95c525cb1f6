"""Contract with the real google-colab-cli, where it is installed (Python >= 3.12; offline, no Google account):
every command keepalive calls still offers the options it passes, its version is in range, and a missing login
ends the way keepalive recognises. Point KEEPALIVE_REAL_COLAB at its ``colab`` (or have ``colab`` on PATH)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from keepalive.cli_mode.runner import ColabCli, Outcome, parse_version, switch_off_update_check, version_problem

REAL = os.environ.get("KEEPALIVE_REAL_COLAB") or shutil.which("colab")
pytestmark = pytest.mark.skipif(not REAL, reason="google-colab-cli is not installed (set KEEPALIVE_REAL_COLAB)")

# Every command keepalive runs, with the options and arguments it passes (keepalive/cli_mode/hands.py, watch.py).
CALLS = {
    "new": ["--session", "-s", "--gpu"],
    "sessions": [],
    "stop": ["--session", "-s"],
    "exec": ["--session", "-s", "--file", "-f"],
    "upload": ["--session", "-s", "local_path", "remote_path"],
    "download": ["--session", "-s", "remote_path", "local_path"],
    "drivemount": ["--session", "-s", "path"],
    "restart-kernel": ["--session", "-s"],
    "version": [],
}


@pytest.fixture
def real_cli(tmp_path):
    home = tmp_path / "home"
    switch_off_update_check(home)  # no PyPI request from a test
    env = dict(os.environ, HOME=str(home))
    return ColabCli(REAL, timeout=60, env=env), home


@pytest.mark.parametrize("command", sorted(CALLS))
def test_each_command_still_offers_the_options_keepalive_passes(real_cli, command):
    cli, _ = real_cli
    answer = cli.call(command, "--help")
    assert answer.code == 0, answer.text
    for option in CALLS[command]:
        assert option in answer.out, f"colab {command} --help no longer offers {option}"


def test_its_version_is_in_the_supported_range(real_cli):
    cli, _ = real_cli
    assert version_problem(parse_version(cli.call("version").out), cli.answers) is None


def test_a_missing_login_starts_the_interactive_sign_in_which_keepalive_recognises(real_cli):
    cli, home = real_cli
    answer = cli.call("sessions")
    assert answer.code == 1
    assert cli.outcome(answer) is Outcome.LOGIN_REQUIRED
    assert "A new version" not in answer.out  # the update check is off through its own settings file


def test_the_update_check_setting_survives_a_run_of_the_cli(real_cli):
    cli, home = real_cli
    cli.call("sessions")
    settings = (home / ".config" / "colab-cli" / "settings.json").read_text()
    assert '"enable_update_check": false' in settings.replace("False", "false")


def test_an_unknown_option_is_a_usage_error_not_a_silent_default(real_cli):
    cli, _ = real_cli
    answer = cli.call("new", "-gpu", "T4")
    assert answer.code == 2, subprocess.list2cmdline(["colab", "new", "-gpu", "T4"])
