"""The ``[cli]`` section of the config: where ``colab`` is, which runtime to ask for, the job, time limits."""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field

# `colab new --gpu` takes these; anything else is silently turned into an A100 by the CLI, so it is refused here.
GPUS = ("T4", "L4", "G4", "H100", "A100")
_SESSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


HOUR = 3600.0
# Inclusive (low, high) of every [cli] number: a limit of 0 would end every call at once.
RANGES = {
    "call_seconds": (5.0, HOUR), "allocate_seconds": (30.0, 4 * HOUR), "drivemount_seconds": (5.0, 4 * HOUR),
    "consent_wait_seconds": (0.0, HOUR), "waiter_poll_seconds": (0.1, 600.0),
    "waiter_cell_seconds": (1.0, 12 * HOUR), "release_backoff_start": (0.1, HOUR),
    "release_backoff_cap": (0.1, 6 * HOUR),
}


def out_of_range(name: str, value) -> str | None:
    """Pure: None if ``value`` is a number within ``RANGES[name]``, else one line saying what to use."""
    low, high = RANGES[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value)
                                                                          and low <= value <= high):
        return f"cli.{name} = {value!r} is out of range: use a number between {low:g} and {high:g}"
    return None


class CliSettingsError(ValueError):
    """A [cli] setting cannot be used; the message says what to do."""


@dataclass(frozen=True)
class CliConfig:
    path: str = "colab"  # the program: on PATH, or a full path (pipx/uv put it in ~/.local/bin)
    session: str = ""  # the CLI's session name; empty: keepalive-<job>
    gpu: str = "T4"  # one of GPUS; "" asks for a CPU runtime (then the job must not need a GPU)
    images: str = ""  # the images folder as the VM sees it, under /content/drive/
    meshroom: str = "2019.2"
    job_args: list = field(default_factory=list)  # more `python -m colab_side run` arguments
    call_seconds: float = 120.0  # our time limit on a short call (sessions, download, upload, exec of a snippet)
    allocate_seconds: float = 900.0  # on `colab new` (it retries 502/503/504 by itself, 10 s doubling)
    drivemount_seconds: float = 900.0  # on `colab drivemount`, consent included
    consent_wait_seconds: float = 180.0  # after "Please visit:", before pressing Enter for the human
    waiter_poll_seconds: float = 2.0  # how often the attached exec looks at the job and its log
    waiter_cell_seconds: float = 1800.0  # one attached exec lasts this long at most; the next follows at once
    release_backoff_start: float = 10.0  # releasing at the end: first wait after a failed `colab stop`, doubling
    release_backoff_cap: float = 300.0  # ... up to this; it goes on until the runtime is confirmed gone
    answers: dict = field(default_factory=dict)  # corrections of colab_cli.toml [answers]

    def session_name(self, job: str) -> str:
        """The set name, else keepalive-<job>; a job named in another script (城) gets a stable ASCII name."""
        if self.session:
            return self.session
        name = f"keepalive-{job}"
        return name if _SESSION.fullmatch(name) else f"keepalive-{hashlib.sha256(job.encode()).hexdigest()[:12]}"


def check(cli: CliConfig, job: str) -> CliConfig:
    """``cli`` if it can be used for ``job``, else CliSettingsError with one line saying what to set."""
    for name in RANGES:
        problem = out_of_range(name, getattr(cli, name))
        if problem:
            raise CliSettingsError(problem)
    if not _SESSION.fullmatch(cli.session_name(job)):
        raise CliSettingsError(f"cli session name {cli.session_name(job)!r} is not usable: letters, digits, "
                               "'.', '_' or '-' (at most 64)")
    if cli.gpu and cli.gpu not in GPUS:
        raise CliSettingsError(f"--gpu {cli.gpu!r} is not one the colab CLI knows: use one of {', '.join(GPUS)}")
    if not cli.images.startswith("/content/drive/"):
        raise CliSettingsError("cli mode needs the images folder as Colab sees it: "
                               "--images /content/drive/MyDrive/<folder>")
    return cli
