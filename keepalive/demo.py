"""``keepalive demo``: the whole product on this machine, without a Google account.

It starts the Colab simulator, whose runtime runs ``colab_side`` with the Meshroom stand-in on a
local "Drive" folder, and the daemon in a real Chromium pointed at it; it injects disconnects
while the job computes, and shows the live view until the job is done.
"""

from __future__ import annotations

import hashlib
import subprocess
import threading
import time
from pathlib import Path

from colab_side import heartbeat as hb
from keepalive import app, config
from keepalive.hands.browser import BrowserConfig
from keepalive.supervisor import SupervisorConfig
from keepalive_sim.colab_sim import ColabSimulator
from keepalive_sim.sample_job import SampleJob

# Short intervals, so that a demo (and a test) takes a minute, not a day.
DEMO_SUPERVISOR = SupervisorConfig(grace_seconds=4.0, dead_after=2, recovery_timeout_seconds=45.0,
                                   retry_backoff_start=2.0, retry_backoff_cap=10.0,
                                   gpu_backoff_start=5.0, gpu_backoff_cap=20.0)


class Demo:
    """The simulator, a sample job and a daemon wired together; used by ``keepalive demo`` and tests."""

    def __init__(self, workdir, headless: bool = True, images: int = 12, chunk_seconds: float = 0.3,
                 supervisor: SupervisorConfig = DEMO_SUPERVISOR, job_env: dict | None = None, stream=None,
                 mode: str = "selenium", keys: dict | None = None, watch_job: str | None = None):
        self.workdir = Path(workdir)
        self.images = images
        self.job = SampleJob(self.workdir, name="demo", images=images, chunk_seconds=chunk_seconds,
                             heartbeat_seconds=0.5, gpu=False)
        self.job.env.update(job_env or {})
        self.sim = ColabSimulator(self.job.command(), env=self.job.env, workdir=self.workdir / "sim",
                                  connect_seconds=0.5)
        self.headless = headless
        self.supervisor = supervisor
        self.stream = stream
        self.mode = mode
        self.keys = keys or {}
        self.watch_job = watch_job or self.job.name  # the job the daemon is told to watch (the notebook runs "demo")
        self.kills: list[dict] = []

    def start(self):
        self.sim.start()
        env = {"KEEPALIVE_HOME": str(self.workdir / "home")}
        self.cfg = config.load(env=env, origin=self.sim.origin, url=self.sim.notebook_url, job=self.watch_job,
                               drive_folder=str(self.job.drive), poll_seconds=0.5, notify_backend="record",
                               notify_min_interval_seconds=0.0, mode=self.mode, keep_awake=False)
        self.cfg.browser = BrowserConfig(headless=self.headless)
        self.cfg.supervisor = self.supervisor
        self.cfg.keys = self.keys
        self.cfg.page = self.sim.page_overrides()
        self.app = app.build(self.cfg, stream=self.stream)
        self.journal, self.hands, self.daemon = self.app.journal, self.app.hands, self.app.daemon
        return self

    def stop(self):
        try:
            if hasattr(self, "app"):
                self.app.close()
        finally:
            self.sim.stop()

    def heartbeat(self) -> hb.Heartbeat | None:
        try:
            return hb.read(self.job.job_dir / hb.FILENAME)
        except (OSError, hb.HeartbeatError):
            return None

    def kill_when(self, fraction: float, timeout: float = 900.0) -> bool:
        """Disconnect the runtime once the running job has made ``fraction`` of its chunks durable.

        The deadline counts from now, before the job's first start: keys mode on a loaded PC may take minutes.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.daemon.stopping:
            beat = self.heartbeat()
            fresh_session = not self.kills or beat is not None and beat.session != self.kills[-1]["session"]
            if (beat and fresh_session and beat.phase == hb.COMPUTING and beat.chunks_total
                    and beat.chunks_done >= max(1, int(fraction * beat.chunks_total))
                    and self.sim.state()["running"]):
                self.sim.kill("disconnect")
                self.kills.append({"session": beat.session, "chunks_done": beat.chunks_done,
                                   "time": time.monotonic()})
                return True
            time.sleep(0.1)
        return False

    def inject_kills(self, count: int) -> threading.Thread:
        """Spread ``count`` disconnects over the job, each once the job has gone further."""
        def injector():
            for i in range(count):
                if not self.kill_when((i + 1) / (count + 2)):
                    return

        thread = threading.Thread(target=injector, daemon=True)
        thread.start()
        return thread

    def summary(self, code: int, seconds: float) -> dict:
        beat = self.heartbeat()
        notes = [e for e in self.journal.events() if e.get("event") == "notification"]
        return {
            "done": code == 0 and beat is not None and beat.phase == hb.DONE,
            "exit_code": code,
            "kills": len(self.kills),
            "recoveries": sum(1 for n in notes if n.get("what") == "recovered"),
            "restarts": self.daemon.state["restarts"],
            "run_all": self.sim.state()["run_all_count"],
            "seconds": round(seconds, 1),
            "result_files": {name: hashlib.sha256(data).hexdigest() for name, data in self.job.result_files().items()},
            "workdir": str(self.workdir),
        }


def run_demo(workdir, headless: bool = True, kills: int = 3, stream=None) -> dict:
    """Run the demo; the summary says whether the result equals that of the same job never interrupted."""
    started = time.monotonic()
    demo = Demo(workdir, headless=headless, stream=stream)
    reference = SampleJob(Path(workdir) / "uninterrupted", name="demo", images=demo.images, chunk_seconds=0.01)
    uninterrupted = subprocess.Popen(reference.command(), env=reference.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
    try:
        demo.start()
        demo.inject_kills(kills)
        code = demo.app.run()
        summary = demo.summary(code, time.monotonic() - started)
        uninterrupted.wait()
        summary["result_identical"] = bool(reference.result_files()) and reference.result_files() == demo.job.result_files()
        return summary
    finally:
        if uninterrupted.poll() is None:
            uninterrupted.kill()
        demo.stop()

