"""One job-name rule for both halves (any script's letters, never a separator or a control character), and
settings that may hold a secret never shown: not in an error, not in the config file's mode."""

from __future__ import annotations

import io
import logging
import os
import stat
import sys
import unicodedata

import pytest
from hypothesis import given, strategies as st

from colab_side import layout
from keepalive import cli, config
from keepalive.cli_mode.settings import CliConfig, check as check_cli

TOKEN = "tk_9f8e7d6c5b4a3210"


@pytest.mark.parametrize("job", ["castle", "城", "城-2026", "Schloß_v2", "замок.1", "a" * 64, "1"])
def test_letters_of_any_script_make_a_job_name_on_both_sides(tmp_path, job):
    assert layout.check_job_name(job) == job
    cfg = config.load(env={"KEEPALIVE_HOME": str(tmp_path)}, job=job)
    assert cfg.job == job and layout.job_layout(tmp_path, job).job_dir.name == job


@given(st.text(min_size=1, max_size=70))
def test_an_accepted_job_name_is_one_plain_folder_name(job):
    if not layout.is_job_name(job):
        with pytest.raises(ValueError, match="job name"):
            layout.check_job_name(job)
        return
    assert "/" not in job and "\\\\" not in job and job not in (".", "..") and len(job) <= 64
    assert all(ch.isprintable() and not ch.isspace() for ch in job)
    assert unicodedata.normalize("NFC", job) == job and not job.endswith(".")


@given(st.text(alphabet=st.characters(categories=("Cc", "Zs", "Zl", "Zp")), min_size=1, max_size=3))
def test_a_control_character_or_a_space_anywhere_is_refused(bad):
    for job in (bad + "castle", "castle" + bad, "cas" + bad + "tle"):
        assert not layout.is_job_name(job)


def test_the_cli_session_of_a_job_in_another_script_is_a_name_the_colab_cli_takes():
    cli_cfg = CliConfig(images="/content/drive/MyDrive/images")
    assert cli_cfg.session_name("castle") == "keepalive-castle"
    name = cli_cfg.session_name("城")
    assert name.startswith("keepalive-") and name.isascii() and name == cli_cfg.session_name("城")
    assert name != cli_cfg.session_name("塔")
    check_cli(cli_cfg, "城")


@pytest.fixture
def run_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KEEPALIVE_HOME", str(tmp_path))
    monkeypatch.delenv("KEEPALIVE_CONFIG", raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO())

    def run(*args):
        code = cli.main(list(args))
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    return run


@pytest.mark.parametrize("text", [
    f'[notify]\nurls = "ntfys://{TOKEN}@ntfy.sh/castle"\n',  # a string where a list belongs
    f'[notify]\nurls = ["ntfys://{TOKEN}@ntfy.sh/castle", 3]\n',
    f'[notify]\nurls = ["nosuchscheme://{TOKEN}@example.org"]\n',
])
def test_a_wrong_secret_setting_is_named_without_its_value(tmp_path, run_command, text):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.toml").write_text(text)
    code, output = run_command("status")
    assert code == 2 and output.strip().count("\n") == 0, output
    assert TOKEN not in output and ("notify.urls" in output or "browser.attach" in output)


def test_an_attach_address_refused_is_not_echoed():
    from keepalive.hands.browser import BrowserError, check_attach_address

    with pytest.raises(BrowserError) as refused:
        check_attach_address(f"192.168.1.5:9222/{TOKEN}")
    assert TOKEN not in str(refused.value) and "browser.attach" in str(refused.value)


def test_remembering_the_url_keeps_a_private_config_private(tmp_path):
    path = tmp_path / "config" / "config.toml"
    path.parent.mkdir()
    path.write_text(f'[notify]\nurls = ["ntfys://{TOKEN}@ntfy.sh/castle"]\n')
    os.chmod(path, 0o600)
    cfg = config.load(env={"KEEPALIVE_HOME": str(tmp_path)})
    config.save_url(cfg, "https://colab.research.google.com/drive/1AbC")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert TOKEN in path.read_text() and "1AbC" in path.read_text()


def test_a_new_config_file_is_readable_by_its_owner_only(tmp_path):
    cfg = config.load(env={"KEEPALIVE_HOME": str(tmp_path)})
    config.save_url(cfg, "https://colab.research.google.com/drive/1AbC")
    assert stat.S_IMODE(cfg.path.stat().st_mode) == 0o600


def test_apprise_records_reach_no_handler_of_the_program(caplog):
    from keepalive.notify import Phone

    Phone([f"json://127.0.0.1:9/{TOKEN}"])
    caplog.set_level(logging.DEBUG)
    logging.getLogger("apprise").warning("sending to json://127.0.0.1:9/%s failed", TOKEN)
    assert TOKEN not in caplog.text
