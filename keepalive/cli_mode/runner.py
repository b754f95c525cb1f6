"""Calling google-colab-cli (``colab``) as a program: never imported, so keepalive stays on Python 3.11.

Every call passes ``-s NAME`` where the command takes one, closes standard input (a lost login then
ends in "Aborted." instead of waiting for a code forever), and has a time limit of our own: the
CLI's ``--timeout`` is not enforced. What it printed is classified by :func:`classify`, a pure
function of the answer and the phrases in ``colab_cli.toml``; the tokens the CLI handles are
scrubbed from anything keepalive keeps.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import tomllib
from dataclasses import dataclass
from enum import Enum
from importlib import resources
from pathlib import Path

# Secrets the CLI may print or log (OAuth codes and tokens, runtime-proxy bearers); group 1 is kept.
_SECRETS = [
    re.compile(r"(?i)((?:access_token|refresh_token|id_token|token|client_secret)[\"']?\s*[=:]\s*[\"']?)[^\s\"'&,}]+"),
    re.compile(r"(?i)([?&](?:code|state|code_challenge)=)[^\s&\"']+"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"()\bya29\.[A-Za-z0-9._-]+"),
    re.compile(r"()\b1//[A-Za-z0-9._-]{20,}"),
]
INSTALL_HINT = ("install it with 'pipx install google-colab-cli' (or 'uv tool install google-colab-cli'), "
                "or set cli.path in the config")
_SESSION_LINE = re.compile(r"^\[(?P<name>[^\]]+)\] (?P<endpoint>\S+) \| Hardware: (?P<hardware>[^|]+?) \|")
_VERSION = re.compile(r"Version:\s*(\d+(?:\.\d+)*)")


def scrub(text: str) -> str:
    """``text`` with every token-looking value replaced by ``***``."""
    for pattern in _SECRETS:
        text = pattern.sub(r"\1***", text)
    return text


def load_answers(overrides: dict | None = None) -> dict:
    """The phrases the CLI prints (``colab_cli.toml``), with the user's corrections."""
    data = tomllib.loads(resources.files("keepalive.cli_mode").joinpath("colab_cli.toml").read_text(encoding="utf-8"))
    data["answers"].update(overrides or {})
    return data


class Outcome(str, Enum):
    """What one call of the CLI came to."""

    OK = "ok"
    LOGIN_REQUIRED = "login_required"  # the saved login is gone: the interactive sign-in started
    REFUSED = "refused"  # HTTP 412: usage or capacity limit, too many sessions
    REJECTED = "rejected"  # HTTP 400: the account may not use this accelerator
    LOST = "lost"  # the CLI itself says the runtime is lost (404/401 from it): no doubt left
    GONE = "gone"  # the runtime may be gone (connection lost, session unknown): evidence, counted over rounds
    FAILED = "failed"  # anything else (transport error, traceback): not evidence of anything
    TIMED_OUT = "timed_out"  # our own time limit ended it
    MISSING = "missing"  # `colab` is not installed where we look


@dataclass(frozen=True)
class Answer:
    command: str
    code: int | None  # None: ended by our time limit, or never started
    out: str = ""
    err: str = ""

    @property
    def text(self) -> str:
        return self.out + self.err


def classify(answer: Answer, answers: dict) -> Outcome:
    """Pure: the outcome of one call, from its exit code and what it printed."""
    said = answers["answers"]
    text = answer.text
    if answer.code is None:
        return Outcome.MISSING if answer.err.startswith("not found") else Outcome.TIMED_OUT
    if said["login_prompt"] in text or said["adc_missing"] in text:
        return Outcome.LOGIN_REQUIRED
    if answer.code == 0:
        return Outcome.OK
    if said["allocation_refused"] in text:
        return Outcome.REFUSED
    if said["accelerator_rejected"] in text:
        return Outcome.REJECTED
    if said["session_lost"] in text:
        return Outcome.LOST
    if said["connection_lost"] in text or (
            "[colab] Session '" in text and said["session_not_found"] in text):
        return Outcome.GONE
    return Outcome.FAILED


def parse_sessions(out: str) -> dict[str, dict]:
    """Pure: ``colab sessions`` lines → {name: {"endpoint", "hardware"}} (``[?]`` orphans included as "?")."""
    found = {}
    for line in out.splitlines():
        match = _SESSION_LINE.match(line.strip())
        if match:
            found[match["name"]] = {"endpoint": match["endpoint"], "hardware": match["hardware"].strip()}
    return found


def listed_endpoints(out: str) -> set[str]:
    """Pure: every runtime endpoint a ``colab sessions`` answer lists, under any name (several ``[?]`` included)."""
    return {match["endpoint"] for match in map(_SESSION_LINE.match, map(str.strip, out.splitlines())) if match}


def parse_version(out: str) -> tuple[int, ...] | None:
    match = _VERSION.search(out)
    return tuple(int(part) for part in match.group(1).split(".")) if match else None


def version_problem(found: tuple[int, ...] | None, answers: dict) -> str | None:
    """Pure: None if ``found`` is in the supported range, else one line saying what to do."""
    low = tuple(int(p) for p in answers["versions"]["min"].split("."))
    high = tuple(int(p) for p in answers["versions"]["below"].split("."))
    wanted = f">= {answers['versions']['min']}, < {answers['versions']['below']}"
    if found is None:
        return f"could not read the version of the colab CLI ('colab version'); keepalive needs {wanted}"
    if not low <= found < high:
        shown = ".".join(map(str, found))
        return (f"google-colab-cli {shown} is not supported (keepalive needs {wanted}): install that range, "
                f"e.g. pipx install 'google-colab-cli>={answers['versions']['min']},<{answers['versions']['below']}'")
    return None


def switch_off_update_check(home: Path) -> Path:
    """Merge ``enable_update_check: false`` into the CLI's own settings file, keeping its other keys."""
    path = Path(home) / ".config" / "colab-cli" / "settings.json"
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(settings, dict):
            settings = {}
    except (OSError, ValueError):
        settings = {}
    if settings.get("enable_update_check") is False:
        return path
    settings["enable_update_check"] = False
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(path.name + ".keepalive-tmp")
    temp.write_text(json.dumps(settings), encoding="utf-8")
    os.replace(temp, path)
    return path


class ColabCli:
    """The ``colab`` program, called with closed stdin and our own time limit."""

    def __init__(self, program: str = "colab", timeout: float = 120.0, answers: dict | None = None, env=None):
        self.program = program
        self.timeout = timeout
        self.answers = answers or load_answers()
        self.env = dict(os.environ if env is None else env)
        self.env.update({"TYPER_STANDARD_TRACEBACK": "1", "NO_COLOR": "1", "TERM": "dumb"})
        self._running: set[subprocess.Popen] = set()
        self._lock = threading.Lock()

    def resolved(self) -> str | None:
        return shutil.which(self.program, path=self.env.get("PATH"))

    def call(self, *args: str, timeout: float | None = None) -> Answer:
        """Run ``colab ARGS`` and return what it said; never raises for what the CLI does."""
        command = " ".join(args[:1])
        program = self.resolved()
        if program is None:
            return Answer(command, None, "", f"not found: {self.program}")
        proc = self._track(subprocess.Popen([program, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, text=True, errors="replace", env=self.env,
                                            start_new_session=True))
        try:
            out, err = proc.communicate(timeout=timeout or self.timeout)
        except subprocess.TimeoutExpired:
            stop_group(proc)
            out, err = proc.communicate()
            return Answer(command, None, out, err)
        finally:
            with self._lock:
                self._running.discard(proc)
        return Answer(command, proc.returncode, out, err)

    def _track(self, proc: subprocess.Popen) -> subprocess.Popen:
        with self._lock:
            self._running.add(proc)
        return proc

    def stop_all(self) -> None:
        """End every short call still under way (the daemon is stopping)."""
        with self._lock:
            running = list(self._running)
        for proc in running:
            stop_group(proc)

    def outcome(self, answer: Answer) -> Outcome:
        return classify(answer, self.answers)

    def start(self, *args: str, stdout) -> subprocess.Popen:
        """Start a long call (the attached ``exec``) whose output goes to ``stdout`` as it comes."""
        return subprocess.Popen([self.resolved() or self.program, *args], stdin=subprocess.DEVNULL, stdout=stdout,
                                stderr=subprocess.STDOUT, text=True, errors="replace", env=self.env,
                                start_new_session=True)


def stop_group(proc: subprocess.Popen) -> None:
    """End a call we started, with everything it started (it runs in a session of its own)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
