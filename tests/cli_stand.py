"""A stand for cli mode: the sample job, the fake ``colab`` on a private PATH and HOME, and a daemon wired to it."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path

from colab_side import heartbeat as hb
from keepalive import app, config
from keepalive.cli_mode.hands import CliHands
from keepalive.cli_mode.settings import CliConfig
from keepalive.daemon import Daemon
from keepalive.demo import DEMO_SUPERVISOR
from keepalive.journal import Journal
from keepalive.notify import Notifier
from keepalive.view import LiveView
from keepalive_sim.fake_colab import FakeColab
from keepalive_sim.sample_job import SampleJob

IMAGES_ON_VM = "/content/drive/MyDrive/images"


class CliStand:
    def __init__(self, workdir, images: int = 5, chunk_seconds: float = 0.15, **cli):
        self.workdir = Path(workdir)
        self.job = SampleJob(self.workdir, name="castle", images=images, chunk_seconds=chunk_seconds,
                             heartbeat_seconds=0.3, gpu=False)
        self.fake = FakeColab(self.workdir / "fake", self.job.drive)
        bin_dir = self.workdir / "bin"
        self.fake.install(bin_dir)
        self.env = dict(self.job.env, PATH=f"{bin_dir}{os.pathsep}{self.job.env.get('PATH', '')}",
                        HOME=str(self.workdir / "home"), KEEPALIVE_HOME=str(self.workdir / "keepalive"))
        settings = {"images": IMAGES_ON_VM, "consent_wait_seconds": 0.5, "call_seconds": 60.0,
                    "drivemount_seconds": 8.0,
                    "job_args": ["--meshroom-url", str(self.job.release), "--heartbeat-seconds", "0.3"]}
        self.cli = CliConfig(**{**settings, **cli})
        self.apps: list[app.App] = []

    def config(self):
        cfg = config.load(env={"KEEPALIVE_HOME": self.env["KEEPALIVE_HOME"]}, job=self.job.name, poll_seconds=0.3,
                          notify_backend="record")
        cfg.cli = self.cli
        cfg.supervisor = dataclasses.replace(DEMO_SUPERVISOR, gpu_backoff_start=1.0, gpu_backoff_cap=4.0)
        cfg.keep_awake = False
        return cfg

    def daemon(self) -> Daemon:
        """A daemon in cli mode built as ``keepalive run`` builds it (CLI checked, VM code written), not yet running."""
        cfg = self.config()
        journal = Journal(cfg.dirs.state, cfg.job)
        watching = app.build(cfg, hands=CliHands(cfg, env=self.env), notifier=Notifier("record", 0, journal),
                             view=LiveView(2.0, cfg.supervisor.grace_seconds))
        self.apps.append(watching)
        return watching.daemon

    def heartbeat(self) -> hb.Heartbeat | None:
        try:
            return hb.read(self.job.job_dir / hb.FILENAME)
        except (OSError, hb.HeartbeatError):
            return None

    def endpoint(self) -> str | None:
        """The runtime our session holds now."""
        ours = [e for e, info in self.fake.assignments().items()]
        return ours[-1] if ours else None

    def close(self) -> None:
        for watching in self.apps:
            watching.close()
        for endpoint in list(self.fake.assignments()):
            self.fake.reclaim(endpoint)


def reference_result(workdir, images: int) -> dict[str, bytes]:
    """The result of the same job run once, never interrupted, without any daemon."""
    reference = SampleJob(Path(workdir), name="castle", images=images, chunk_seconds=0.01)
    subprocess.run(reference.command(), env=reference.env, check=True, capture_output=True, timeout=240)
    return reference.result_files()
