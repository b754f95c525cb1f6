"""``keepalive service install|uninstall|status``: the daemon as the user's own service.

So that a reboot, a logout or a Windows update does not end a multi-day watch, the daemon is
registered with the user's own service manager, never system-wide and never as root:

- Linux: a systemd user unit (``~/.config/systemd/user/colab-keepalive.service``), enabled and started;
- macOS: a launchd agent (``~/Library/LaunchAgents/colab-keepalive.plist``), loaded into the GUI session;
- Windows: a Task Scheduler task started at the user's logon (``schtasks /Create /XML``), with no time
  limit (a task's default limit is 72 hours).

The service runs ``keepalive run --service``: every end that a restart would not mend (the job done or
failed, restarts given up, bad input, another daemon already watching) exits 0, a crash exits non-zero
and the service manager starts it again. The generators are pure functions of the command to run.
"""

from __future__ import annotations

import hashlib
import os
import plistlib
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

NAME = "colab-keepalive"
DESCRIPTION = "colab-keepalive: keep a long Google Colab job alive"
RESTART_SECONDS = 60
TASK_NS = "http://schemas.microsoft.com/windows/2004/02/mit/task"


def service_name(job: str | None) -> str:
    """One service per job: colab-keepalive-<job>; a job named outside ASCII (城) gets a stable ASCII name."""
    if not job:
        return NAME
    name = f"{NAME}-{job}"
    return name if re.fullmatch(r"[A-Za-z0-9._-]+", name) else f"{NAME}-{hashlib.sha256(job.encode()).hexdigest()[:12]}"


class ServiceError(RuntimeError):
    """The service manager refused; the message says what was done and what to do."""


def command(config_path: Path | None = None, python: str | None = None, job: str | None = None) -> list[str]:
    """What the service runs: this Python, the keepalive module, ``run --service`` (``--job JOB``: the job it was
    installed for, whichever job is remembered later)."""
    python = python or sys.executable
    if sys.platform == "win32":  # no console window at logon
        windowed = Path(python).with_name("pythonw.exe")
        python = str(windowed) if windowed.exists() else python
    args = [python, "-m", "keepalive"]
    if config_path:
        args += ["--config", str(Path(config_path).resolve())]
    return args + ["run", "--service"] + (["--job", job] if job else [])


def _environment() -> dict[str, str]:
    """The settings the service must see as this shell does (where the folders and the Colab site are)."""
    wanted = ("KEEPALIVE_HOME", "KEEPALIVE_CONFIG", "KEEPALIVE_COLAB_ORIGIN")
    return {"PYTHONUNBUFFERED": "1", **{key: os.environ[key] for key in wanted if os.environ.get(key)}}


# --- the three files ---------------------------------------------------------------------------------

def _systemd_quote(word: str) -> str:
    """One word of a systemd command line: quoted, with %, $, quotes and backslashes escaped."""
    escaped = word.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{escaped}"'


def systemd_unit(argv: list[str], env: dict[str, str]) -> str:
    environment = "".join(f"Environment={_systemd_quote(f'{k}={v}')}\n" for k, v in sorted(env.items()))
    return (
        "[Unit]\n"
        f"Description={DESCRIPTION}\n"
        "After=graphical-session.target\n"
        "\n"
        "[Service]\n"
        "Type=simple\n"
        f"ExecStart={' '.join(_systemd_quote(word) for word in argv)}\n"
        f"{environment}"
        "Restart=on-failure\n"
        f"RestartSec={RESTART_SECONDS}\n"
        "\n"
        "[Install]\n"
        "WantedBy=default.target\n"
    )


def launchd_plist(argv: list[str], env: dict[str, str], log: Path, name: str = NAME) -> bytes:
    return plistlib.dumps({
        "Label": name,
        "ProgramArguments": list(argv),
        "EnvironmentVariables": dict(env),
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},  # started again after a crash, not after a clean end
        "ThrottleInterval": RESTART_SECONDS,
        "ProcessType": "Interactive",
        "StandardOutPath": str(log),
        "StandardErrorPath": str(log),
    })


def task_xml(argv: list[str], user: str) -> str:
    """A Task Scheduler task (schema 1.2) started at ``user``'s logon, restarted after a crash."""
    ElementTree.register_namespace("", TASK_NS)

    def add(parent, tag: str, text: str | None = None, **attrs):
        element = ElementTree.SubElement(parent, f"{{{TASK_NS}}}{tag}", attrs)
        element.text = text
        return element

    task = ElementTree.Element(f"{{{TASK_NS}}}Task", version="1.2")
    add(add(task, "RegistrationInfo"), "Description", DESCRIPTION)
    logon = add(add(task, "Triggers"), "LogonTrigger")
    add(logon, "Enabled", "true")
    add(logon, "UserId", user)
    principal = add(add(task, "Principals"), "Principal", id="Author")
    add(principal, "UserId", user)
    add(principal, "LogonType", "InteractiveToken")  # in the user's desktop session, with its browser
    add(principal, "RunLevel", "LeastPrivilege")
    settings = add(task, "Settings")
    for tag, text in (("MultipleInstancesPolicy", "IgnoreNew"), ("DisallowStartIfOnBatteries", "false"),
                      ("StopIfGoingOnBatteries", "false"), ("AllowHardTerminate", "true"),
                      ("StartWhenAvailable", "true"), ("RunOnlyIfNetworkAvailable", "false")):
        add(settings, tag, text)
    idle = add(settings, "IdleSettings")
    add(idle, "StopOnIdleEnd", "false")
    add(idle, "RestartOnIdle", "false")
    for tag, text in (("AllowStartOnDemand", "true"), ("Enabled", "true"), ("Hidden", "false"),
                      ("RunOnlyIfIdle", "false"), ("WakeToRun", "false"),
                      ("ExecutionTimeLimit", "PT0S"), ("Priority", "7")):  # PT0S: no time limit
        add(settings, tag, text)
    restart = add(settings, "RestartOnFailure")
    add(restart, "Interval", f"PT{RESTART_SECONDS // 60}M")
    add(restart, "Count", "999")
    action = add(add(task, "Actions", Context="Author"), "Exec")
    add(action, "Command", argv[0])
    add(action, "Arguments", subprocess.list2cmdline(argv[1:]))
    # schtasks reads the file in the encoding its declaration names; it is written as UTF-16 (see platform_for)
    return '<?xml version="1.0" encoding="UTF-16"?>\n' + ElementTree.tostring(task, encoding="unicode")


# --- where each platform keeps it, and how it is told -------------------------------------------------

@dataclass
class Platform:
    """One service manager: where the file goes, its content, and the commands that register it."""

    name: str
    path: Path
    content: bytes
    install: list[list[str]]
    uninstall: list[list[str]]
    status: list[str]
    note: str


def platform_for(argv: list[str], state_dir: Path, home: Path | None = None, system: str | None = None,
                 label: str = NAME) -> Platform:
    home = home or Path.home()
    system = system or sys.platform
    if system == "win32":
        path = Path(state_dir) / f"{label}-task.xml"
        user = "\\".join(part for part in (os.environ.get("USERDOMAIN"), os.environ.get("USERNAME")) if part)
        return Platform("Task Scheduler logon task", path, task_xml(argv, user).encode("utf-16"),
                        [["schtasks", "/Create", "/TN", label, "/XML", str(path), "/F"], ["schtasks", "/Run", "/TN", label]],
                        [["schtasks", "/End", "/TN", label], ["schtasks", "/Delete", "/TN", label, "/F"]],
                        ["schtasks", "/Query", "/TN", label, "/V", "/FO", "LIST"],
                        "it starts at every logon of yours")
    if system == "darwin":
        path = home / "Library" / "LaunchAgents" / f"{label}.plist"
        domain = f"gui/{os.getuid()}"
        log = home / "Library" / "Logs" / f"{label}.log"
        return Platform("launchd agent", path, launchd_plist(argv, _environment(), log, label),
                        [["launchctl", "bootstrap", domain, str(path)]], [["launchctl", "bootout", domain, str(path)]],
                        ["launchctl", "print", f"{domain}/{label}"], "it starts at every login of yours")
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    path = config_home / "systemd" / "user" / f"{label}.service"
    unit = f"{label}.service"
    return Platform("systemd user unit", path, systemd_unit(argv, _environment()).encode("utf-8"),
                    [["systemctl", "--user", "daemon-reload"], ["systemctl", "--user", "enable", "--now", unit]],
                    [["systemctl", "--user", "disable", "--now", unit], ["systemctl", "--user", "daemon-reload"]],
                    ["systemctl", "--user", "status", "--no-pager", unit],
                    f"it starts at every login of yours; to start at boot before you log in: "
                    f"loginctl enable-linger {os.environ.get('USER', '$USER')}")


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(argv, 127, "", str(exc))


def _first_line(proc: subprocess.CompletedProcess) -> str:
    text = (proc.stderr or proc.stdout or "").strip()
    return text.splitlines()[0] if text else f"exit code {proc.returncode}"


def install(platform: Platform, run=_run) -> str:
    """Write the file and register it; one installed before is replaced (stopped first)."""
    for argv in platform.uninstall:
        run(argv)  # nothing registered yet is fine
    platform.path.parent.mkdir(parents=True, exist_ok=True)
    platform.path.write_bytes(platform.content)
    for argv in platform.install:
        proc = run(argv)
        if proc.returncode != 0:
            raise ServiceError(f"wrote the {platform.name} {platform.path}, but '{shlex.join(argv)}' failed "
                               f"({_first_line(proc)}): run it yourself once the service manager answers")
    return f"installed the {platform.name} {platform.path}; {platform.note}"


def uninstall(platform: Platform, run=_run) -> str:
    for argv in platform.uninstall:
        run(argv)  # a service already stopped or never loaded is no reason to keep its file
    existed = platform.path.exists()
    platform.path.unlink(missing_ok=True)
    return f"removed the {platform.name} {platform.path}" if existed else f"no {platform.name} was installed"


def status(platform: Platform, run=_run) -> str:
    if not platform.path.exists():
        return f"not installed (no {platform.path}): 'keepalive service install' registers it"
    proc = run(platform.status)
    return f"installed: {platform.path}\n{(proc.stdout or proc.stderr).rstrip()}"
