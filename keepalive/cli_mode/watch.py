"""The heartbeat over the CLI: each poll fetches ``heartbeat.json`` from the VM with ``colab download``.

``download`` goes through the Jupyter Contents API, which answers while a cell runs (a second
``exec`` would wait behind the attached one). The file is kept in a local mirror laid out like
Drive (``<state>/<job>/cli/drive/keepalive/<job>/heartbeat.json``) and rewritten only when it
changed, so the ordinary heartbeat watch (and ``keepalive status``) read it as they read Drive.
"""

from __future__ import annotations

import os
from pathlib import Path

from colab_side import heartbeat as hb
from keepalive.cli_mode import vm_code
from keepalive.cli_mode.runner import ColabCli, Outcome
from keepalive.heartbeat_watch import HeartbeatWatch


def mirror_folder(cfg) -> Path:
    """The local folder that stands for Drive in cli mode (``keepalive status`` reads it too)."""
    return Path(cfg.dirs.state) / cfg.job / "cli" / "drive"


class CliHeartbeatWatch(HeartbeatWatch):
    def __init__(self, cli: ColabCli, session: str, mirror: Path, job: str, grace_seconds: float, **clocks):
        Path(mirror).mkdir(parents=True, exist_ok=True)
        super().__init__(mirror, job, grace_seconds, **clocks)
        self.cli = cli
        self.session = session
        self.remote = str(hb.heartbeat_path(f"{vm_code.MOUNT}/MyDrive", job))
        self.download = self.path.with_name(self.path.name + ".download")
        self.fetched = False  # a heartbeat came from the VM in this run

    def poll(self):
        """The heartbeat as fetched this round; a copy left by an earlier run counts only once fetched again
        (after a fix, ``keepalive run`` must start a blocked or failed job again, not read its old end)."""
        if self.fetch():
            self.fetched = True
        if not self.fetched:
            return self.tracker.missing(self.clock())
        return super().poll()

    def fetch(self) -> bool:
        """Bring the VM's heartbeat into the mirror; False (and the old copy kept) when it cannot be had."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        answer = self.cli.call("download", "-s", self.session, self.remote, str(self.download))
        if self.cli.outcome(answer) is not Outcome.OK or not self.download.is_file():
            return False
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
