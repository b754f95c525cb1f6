"""Figures for the daemon (printed, not asserted).

    python bench/bench_recovery.py [--faults 20]

Runs ``keepalive run`` exactly as a user would (its own process, config file, headless Chromium)
against the Colab simulator, injects disconnects, and prints:
1. from an injected disconnect to Run all issued, and to the next fresh heartbeat (a new session):
   median and max, against the configured poll interval and grace;
2. the daemon's own footprint while watching: RSS and CPU of the daemon process (Chromium,
   chromedriver and the simulator excluded).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from colab_side import heartbeat as hb  # noqa: E402
from keepalive.hands.browser import root_flags  # noqa: E402
from keepalive_sim.colab_sim import ColabSimulator  # noqa: E402
from keepalive_sim.sample_job import SampleJob  # noqa: E402

POLL, GRACE = 0.5, 3.0
CONFIG = """
[colab]
origin = "{origin}"
[job]
name = "bench"
drive_folder = "{drive}"
[daemon]
poll_seconds = {poll}
[notify]
backend = "record"
[browser]
headless = true
extra_args = {flags}
[supervisor]
grace_seconds = {grace}
dead_after = 2
recovery_timeout_seconds = 60.0
retry_backoff_start = 2.0
crash_loop_restarts = 100
[page.popup]
hosts = {accounts}
[page.signin]
hosts = {accounts}
"""


def beat(job: SampleJob):
    try:
        return hb.read(job.job_dir / hb.FILENAME)
    except (OSError, hb.HeartbeatError):
        return None


def wait(condition, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    return None


def run_all_times(events_path: Path) -> list[float]:
    times = []
    for line in events_path.read_text().splitlines():
        event = json.loads(line)
        if event.get("event") == "action" and event.get("action") == "run_all":
            times.append(datetime.datetime.fromisoformat(event["time"]).timestamp())
    return times


def proc_usage(pid: int) -> tuple[float, int]:
    """(CPU seconds, RSS bytes) of one process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    return cpu, rss


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--faults", type=int, default=20)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-recovery-"))
    job = SampleJob(root, name="bench", images=70, chunk_seconds=0.4, heartbeat_seconds=0.5, gpu=False)
    sim = ColabSimulator(job.command(), env=job.env, workdir=root / "sim", connect_seconds=0.5).start()
    home = root / "home"
    (home / "config").mkdir(parents=True)
    (home / "config" / "config.toml").write_text(CONFIG.format(
        origin=sim.origin, drive=job.drive, poll=POLL, grace=GRACE, flags=json.dumps(root_flags()),
        accounts=json.dumps(sim.page_overrides()["popup"]["hosts"])))
    env = dict(os.environ, KEEPALIVE_HOME=str(home))
    daemon = subprocess.Popen([sys.executable, "-m", "keepalive", "run", sim.notebook_url], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    events = home / "state" / "bench" / "events.jsonl"
    to_run_all, to_beat, samples = [], [], []
    try:
        session = None
        for _ in range(args.faults):
            current = wait(lambda: (b := beat(job)) and b.session != session and b.phase == hb.COMPUTING
                           and b.chunks_done > 0 and sim.state()["running"] and b)
            if current is None:
                break
            samples.append((time.monotonic(), *proc_usage(daemon.pid)))
            session = current.session
            killed_at = time.time()
            sim.kill("disconnect")
            run_all = wait(lambda: [t for t in run_all_times(events) if t > killed_at])
            fresh = wait(lambda: (b := beat(job)) and b.session != session)
            if run_all is None or fresh is None:
                break
            to_run_all.append(run_all[0] - killed_at)
            to_beat.append(time.time() - killed_at)
        samples.append((time.monotonic(), *proc_usage(daemon.pid)))
    finally:
        daemon.terminate()
        daemon.wait(30)
        sim.stop()
    print(f"faults injected and recovered: {len(to_beat)} (poll {POLL} s, grace {GRACE} s, dead after 2 polls)")
    if to_beat:
        print(f"disconnect → Run all issued:  median {statistics.median(to_run_all):5.1f} s, max {max(to_run_all):5.1f} s")
        print(f"disconnect → fresh heartbeat: median {statistics.median(to_beat):5.1f} s, max {max(to_beat):5.1f} s")
    if len(samples) >= 2:
        period = samples[-1][0] - samples[0][0]
        cpu = samples[-1][1] - samples[0][1]
        print(f"daemon process: RSS {max(s[2] for s in samples) / 2**20:.0f} MiB max; CPU {cpu:.1f} s over "
              f"{period:.0f} s watched = {100 * cpu / max(period, 1e-9):.1f}% of one core (browser excluded)")
    print(f"work folder: {root}")


if __name__ == "__main__":
    main()
