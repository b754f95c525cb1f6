"""keepalive service: the files each platform's service manager reads, checked by its own validator where it
runs here, and install/uninstall/status against a recorded service manager (never the real one of this PC)."""

from __future__ import annotations

import io
import re
import plistlib
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from keepalive import cli, service

TASK = "{" + service.TASK_NS + "}"


def argv_with_awkward_path(tmp_path) -> list[str]:
    config = tmp_path / "my 100% \"odd\" $folder" / "config.toml"
    return service.command(config)


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="needs systemd-analyze (systemd)")
def test_the_systemd_user_unit_passes_systemd_analyze_verify(tmp_path):
    unit = tmp_path / f"{service.NAME}.service"
    unit.write_text(service.systemd_unit(argv_with_awkward_path(tmp_path), {"KEEPALIVE_HOME": "/a b/100%"}))
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout + proc.stderr == "", proc.stdout + proc.stderr
    text = unit.read_text()
    assert "Restart=on-failure" in text and "WantedBy=default.target" in text
    assert '"run" "--service"' in text and "100%%" in text and "$$folder" in text and '\\"odd\\"' in text


def test_a_broken_unit_is_caught_by_the_same_check(tmp_path):
    """The check above can fail: systemd-analyze reports what it cannot run."""
    if not shutil.which("systemd-analyze"):
        pytest.skip("needs systemd-analyze (systemd)")
    unit = tmp_path / f"{service.NAME}.service"
    unit.write_text(service.systemd_unit(["not-a-program", "run"], {}))
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 or proc.stdout + proc.stderr != ""


def test_the_launchd_agent_runs_the_daemon_at_login_and_again_after_a_crash(tmp_path):
    argv = argv_with_awkward_path(tmp_path)
    data = service.launchd_plist(argv, {"PYTHONUNBUFFERED": "1"}, tmp_path / "log")
    agent = plistlib.loads(data)
    assert agent["Label"] == service.NAME and agent["ProgramArguments"] == argv
    assert agent["RunAtLoad"] is True and agent["KeepAlive"] == {"SuccessfulExit": False}
    if sys.platform == "darwin" and shutil.which("plutil"):
        path = tmp_path / "agent.plist"
        path.write_bytes(data)
        assert subprocess.run(["plutil", "-lint", str(path)], capture_output=True).returncode == 0


def test_the_windows_task_starts_at_logon_without_a_time_limit(tmp_path):
    argv = ["C:\\Program Files\\Python311\\pythonw.exe", "-m", "keepalive", "--config",
            "C:\\Users\\Ann Lee\\config.toml", "run", "--service"]
    platform = service.platform_for(argv, tmp_path, tmp_path, system="win32")
    assert platform.content.startswith(b"\xff\xfe")  # UTF-16 with its byte-order mark, as declared
    text = platform.content.decode("utf-16")
    assert text.startswith('<?xml version="1.0" encoding="UTF-16"?>')
    task = ElementTree.fromstring(text.split("\n", 1)[1])
    assert task.find(f"{TASK}Triggers/{TASK}LogonTrigger/{TASK}Enabled").text == "true"
    assert task.find(f"{TASK}Settings/{TASK}ExecutionTimeLimit").text == "PT0S"  # the default would be 72 h
    assert task.find(f"{TASK}Settings/{TASK}DisallowStartIfOnBatteries").text == "false"
    assert task.find(f"{TASK}Principals/{TASK}Principal/{TASK}LogonType").text == "InteractiveToken"
    action = task.find(f"{TASK}Actions/{TASK}Exec")
    assert action.find(f"{TASK}Command").text == argv[0]
    assert action.find(f"{TASK}Arguments").text == '-m keepalive --config "C:\\Users\\Ann Lee\\config.toml" run --service'
    assert platform.install[0][:2] == ["schtasks", "/Create"] and str(platform.path) in platform.install[0]


class Manager:
    """A recorded service manager: says yes, or no to one command."""

    def __init__(self, refuse: str | None = None):
        self.refuse = refuse
        self.calls: list[list[str]] = []

    def __call__(self, argv):
        self.calls.append(argv)
        refused = self.refuse is not None and self.refuse in argv
        return subprocess.CompletedProcess(argv, 1 if refused else 0, "active (running)\n",
                                           "Failed to connect to bus: No medium found\n" if refused else "")


def test_install_writes_the_unit_enables_it_and_uninstall_removes_it(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    platform = service.platform_for(service.command(tmp_path / "config.toml"), tmp_path / "state", tmp_path,
                                    system="linux")
    manager = Manager()
    assert "not installed" in service.status(platform, manager)
    said = service.install(platform, manager)
    unit = tmp_path / ".config" / "systemd" / "user" / f"{service.NAME}.service"
    assert platform.path == unit and unit.read_bytes() == platform.content and str(unit) in said
    assert manager.calls[-2:] == [["systemctl", "--user", "daemon-reload"],
                                  ["systemctl", "--user", "enable", "--now", f"{service.NAME}.service"]]
    assert "active (running)" in service.status(platform, manager)
    assert "removed" in service.uninstall(platform, manager) and not unit.exists()
    assert ["systemctl", "--user", "disable", "--now", f"{service.NAME}.service"] in manager.calls


def test_a_service_manager_that_refuses_is_one_line_saying_what_was_written(tmp_path):
    platform = service.platform_for(service.command(None), tmp_path, tmp_path, system="linux")
    with pytest.raises(service.ServiceError) as refused:
        service.install(platform, Manager(refuse="enable"))
    message = str(refused.value)
    assert "\n" not in message and str(platform.path) in message and "systemctl --user enable --now" in message
    assert "Failed to connect to bus" in message and platform.path.exists()


def test_the_command_line_says_it_in_one_line_where_no_service_manager_can_be_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KEEPALIVE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("PATH", str(tmp_path / "no-programs-here"))
    code = cli.main(["service", "install"] if sys.platform.startswith("linux") else ["service", "status"])
    err = capsys.readouterr().err
    if sys.platform.startswith("linux"):
        assert code == 2 and err.count("\n") == 1 and "systemctl --user" in err
        assert (tmp_path / "xdg" / "systemd" / "user" / "colab-keepalive-meshroom.service").exists()  # the job's own


@pytest.mark.parametrize("ended, expected", [(0, 0), (1, 0), (2, 0), (130, 0), (cli.EXIT_CRASHED, cli.EXIT_CRASHED)])
def test_as_a_service_only_a_crash_asks_for_a_restart(monkeypatch, ended, expected):
    monkeypatch.setitem(cli.COMMANDS, "run", lambda args: ended)
    assert cli.main(["run", "--service"]) == expected
    assert cli.main(["run"]) == ended


def test_as_a_service_bad_input_is_said_and_not_retried(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KEEPALIVE_HOME", str(tmp_path))
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    assert cli.main(["run", "--service"]) == 0
    assert "no notebook URL" in capsys.readouterr().err


def test_each_job_has_a_service_of_its_own_under_a_stable_ascii_name(tmp_path):
    units = {job: service.platform_for(service.command(None, job=job), tmp_path, tmp_path, system="linux",
                                       label=service.service_name(job)) for job in ("castle", "temple", "城")}
    assert units["castle"].path.name == "colab-keepalive-castle.service"
    assert units["城"].path.name == service.platform_for([], tmp_path, tmp_path, system="linux",
                                                         label=service.service_name("城")).path.name
    assert re.fullmatch(r"colab-keepalive-[0-9a-f]{12}\.service", units["城"].path.name)
    assert len({unit.path for unit in units.values()}) == 3  # installing one never replaces another
    assert all(f"--job {job}" in unit.content.decode() or f'"--job" "{job}"' in unit.content.decode()
               for job, unit in units.items())


def test_uninstall_also_removes_the_one_service_of_before_per_job_services(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KEEPALIVE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("PATH", str(tmp_path / "no-programs-here"))
    if not sys.platform.startswith("linux"):
        pytest.skip("the systemd paths: Linux here")
    old = tmp_path / "xdg" / "systemd" / "user" / f"{service.NAME}.service"
    old.parent.mkdir(parents=True)
    old.write_text("[Service]\n")
    assert cli.main(["service", "uninstall"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["no systemd user unit was installed", f"removed the systemd user unit {old}"] and not old.exists()
