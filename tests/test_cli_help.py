"""The command's own words: --version, help for every option, unknown config keys warned by every command, and
every example the README and the docs show (TOML snippets, the command table, the commands in the text) valid."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from keepalive import cli, config

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def subcommands() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in cli._parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]


def test_every_option_of_every_command_has_help_text():
    missing = [f"{name} {'/'.join(a.option_strings) or a.dest}"
               for name, parser in [("keepalive", cli._parser()), *subcommands().items()]
               for a in options(parser) if not (a.help or "").strip()]
    assert missing == []


def keepalive(*args, home, stdin=subprocess.DEVNULL):
    env = dict(os.environ, KEEPALIVE_HOME=str(home))
    env.pop("KEEPALIVE_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "keepalive", *args], env=env, capture_output=True, text=True,
                          stdin=stdin, timeout=120, cwd=ROOT)


def test_version_is_the_packages():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    proc = keepalive("--version", home=ROOT / "nonexistent")
    assert proc.returncode == 0 and proc.stdout.strip() == f"keepalive {version}"


@pytest.mark.parametrize("args", [
    ["status"], ["doctor"], ["notebook", "--out", "{tmp}/nb.ipynb"], ["service", "status"], ["run"],
], ids=lambda args: args[0])
def test_every_command_that_reads_the_config_warns_of_unknown_keys_once(tmp_path, args):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.toml").write_text('[supervisor]\ngrace = 3\n[colab]\nspeed = "fast"\n')
    proc = keepalive(*[a.format(tmp=tmp_path) for a in args], home=tmp_path)
    warned = [line for line in proc.stderr.splitlines() if line.startswith("keepalive: warning: ")]
    assert len(warned) == 2, proc.stderr
    assert "unknown key supervisor.grace; ignored" in warned[0] and "unknown key colab.speed" in warned[1]
    assert "Traceback" not in proc.stderr


def toml_blocks():
    for doc in DOCS:
        for number, block in enumerate(re.findall(r"^ *```toml\n(.*?)^ *```", doc.read_text(encoding="utf-8"),
                                                  re.S | re.M), 1):
            lines = block.splitlines()
            indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
            yield pytest.param("\n".join(line[indent:] for line in lines), id=f"{doc.name}#{number}")


@pytest.mark.parametrize("block", list(toml_blocks()))
def test_every_toml_example_in_the_docs_parses_and_is_a_config_without_unknown_keys(tmp_path, block):
    tomllib.loads(block)
    path = tmp_path / "config.toml"
    path.write_text(block, encoding="utf-8")
    assert config.load(path, env={"KEEPALIVE_HOME": str(tmp_path)}).warnings == []


def test_the_readmes_windows_path_example_keeps_its_backslash(tmp_path):
    block = next(b.values[0] for b in toml_blocks() if "drive_folder" in b.values[0])
    assert tomllib.loads(block)["job"]["drive_folder"] == "G:\\My Drive"


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_config_file_parses(path):
    tomllib.loads(path.read_text(encoding="utf-8"))


def table_rows() -> dict[str, str]:
    rows = re.findall(r"^\| `keepalive (\w+)([^`]*)` \|", README, re.M)
    return {name: rest for name, rest in rows}


def test_the_readmes_command_table_lists_every_command_and_every_option():
    rows = table_rows()
    assert set(rows) == set(subcommands())
    for name, parser in subcommands().items():
        documented = set(re.findall(r"--[a-z-]+", rows[name]))
        actual = {s for a in options(parser) for s in a.option_strings if s.startswith("--")}
        assert documented == actual, name


def test_every_command_the_readme_shows_in_its_text_parses():
    spans = {span for span in re.findall(r"`(keepalive [^`]+)`", README) if "|" not in span}
    assert len(spans) > 8
    for span in spans:
        words = shlex.split(re.sub(r"\[[^\]]*\]", "", span.replace("<URL>", "https://colab.research.google.com/drive/x")))
        if words[1:2] == ["COMMAND"]:
            continue
        try:
            cli._parser().parse_args(words[1:])
        except SystemExit as exc:
            assert exc.code == 0, span  # --help, --version
