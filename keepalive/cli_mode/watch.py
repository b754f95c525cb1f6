"""The heartbeat over the CLI: each poll fetches ``heartbeat.json`` from the VM with ``colab download``.

``download`` goes through the Jupyter Contents API, which answers while a cell runs (a second
``exec`` would wait behind the attached one). The file is kept in a local mirror laid out like
Drive (``<state>/<job>/cli/drive/keepalive/<job>/heartbeat.json``) and rewritten only when it
changed, so the ordinary heartbeat watch (and ``keepalive status``) read it as they read Drive.

Only what this run saw counts as final (:func:`counts`): a ``done``, ``failed`` or ``blocked`` written by
a session this run neither started nor saw running is the previous run's word, not a verdict. It is
kept beside the mirror as ``previous_heartbeat.json`` (``keepalive status`` shows it as the previous
run's) and the job is started again: after the user's fix it runs; after ``done`` it finds its result.
"""

from __future__ import annotations

import os
from pathlib import Path

from colab_side import heartbeat as hb
from keepalive.cli_mode import vm_code
from keepalive.cli_mode.runner import ColabCli, Outcome
from keepalive.heartbeat_watch import HeartbeatWatch

PREVIOUS = "previous_heartbeat.json"
CLOCK_SLACK = 2.0  # seconds: the heartbeat's times are written to the second


def mirror_folder(cfg) -> Path:
    """The local folder that stands for Drive in cli mode (``keepalive status`` reads it too)."""
    return Path(cfg.dirs.state) / cfg.job / "cli" / "drive"


def counts(beat: hb.Heartbeat, alive: frozenset, own_since: float | None) -> bool:
    """Pure: whether this run may take ``beat`` as the job's state. A live beat always; a final one only from a
    session this run saw running (``alive``) or one that began after this run started the job, or found it
    running (``own_since``, the VM's clock, as the heartbeat's ``session_started``)."""
    if not beat.final or beat.session in alive:
        return True
    started = hb.timestamp(beat.session_started)
    return own_since is not None and started is not None and started >= own_since - CLOCK_SLACK


def previous_run(mirror: Path, job: str) -> hb.Heartbeat | None:
    """The final heartbeat of an earlier run that this run did not take as its verdict (for ``keepalive status``)."""
    try:
        return hb.read(hb.heartbeat_path(mirror, job).with_name(PREVIOUS))
    except (OSError, hb.HeartbeatError):
        return None


def previous_text(beat: hb.Heartbeat) -> str:
    return (f"previous run: {beat.phase}" + (f" ({beat.cause}: {beat.reason})" if beat.cause or beat.reason else "")
            + f", session {beat.session}; not this run's verdict: the job is started again")


class CliHeartbeatWatch(HeartbeatWatch):
    final_beats_are_this_runs = True  # poll passes on only what :func:`counts` takes as this run's word
    def __init__(self, cli: ColabCli, session: str, mirror: Path, job: str, grace_seconds: float,
                 own_since=lambda: None, **clocks):
        Path(mirror).mkdir(parents=True, exist_ok=True)
        super().__init__(mirror, job, grace_seconds, **clocks)
        self.cli = cli
        self.session = session
        self.own_since = own_since  # the VM-clock start of the job this run launched or found running, or None
        self.remote = str(hb.heartbeat_path(f"{vm_code.MOUNT}/MyDrive", job))
        self.download = self.path.with_name(self.path.name + ".download")
        self.previous = self.path.with_name(PREVIOUS)
        self.fetched = False  # a heartbeat of this run's came from the VM
        self.alive: frozenset = frozenset()  # sessions seen running in this run
        self._set_aside(self._mirrored())  # an earlier run's last word is not this run's

    def poll(self):
        """The heartbeat as fetched this round, when it is this run's to judge (:func:`counts`); a copy left by an
        earlier run counts only once fetched again (after a fix, ``keepalive run`` must start a blocked or failed
        job again, not read its old end)."""
        if self.fetch():
            self.fetched = True
        if not self.fetched:
            return self.tracker.missing(self.clock())
        return super().poll()

    def _mirrored(self) -> hb.Heartbeat | None:
        try:
            return hb.read(self.path)
        except (OSError, hb.HeartbeatError):
            return None

    def _set_aside(self, beat: hb.Heartbeat | None) -> None:
        if beat is not None and beat.final:
            os.replace(self.path, self.previous)

    def fetch(self) -> bool:
        """Bring the VM's heartbeat into the mirror if it is this run's; False (and the old copy kept) when it
        cannot be had or is an earlier run's final word (then set aside as the previous run's)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        answer = self.cli.call("download", "-s", self.session, self.remote, str(self.download))
        if self.cli.outcome(answer) is not Outcome.OK or not self.download.is_file():
            return False
        try:
            beat = hb.read(self.download)
        except (OSError, hb.HeartbeatError):
            beat = None  # half written: the ordinary watch reports it unreadable
        if beat is not None and not counts(beat, self.alive, self.own_since()):
            os.replace(self.download, self.previous)
            return False
        if beat is not None and not beat.final:
            self.alive |= {beat.session}
        fresh = self.download.read_bytes()
        try:
            same = self.path.read_bytes() == fresh
        except OSError:
            same = False
        if same:
            self.download.unlink()
        else:
            os.replace(self.download, self.path)
        return True
