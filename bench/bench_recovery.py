"""Figures for recovery with the default settings (printed, not asserted).

    python bench/bench_recovery.py [--faults 20] [--connect-seconds 10] [--days 1]

1. A simulated day (or ``--days``) per seed through the pure supervisor and ``keepalive_sim.world``:
   deaths, Drive sync pauses (1.8 h, 30 min), an offline PC (40 min); printed: Run all sent to a live
   job (must be 0), restarts, death → Run all.
2. ``keepalive run`` exactly as a user runs it (its own process, config file with no [supervisor] or
   poll settings, so the defaults; headless Chromium) against the Colab simulator, whose runtime
   writes a heartbeat every 30 s (colab_side's default). Between the two sits a model of Google
   Drive for desktop: each version of heartbeat.json reaches the folder the daemon watches 5–120 s
   after it was written (uniform, never an older version over a newer one). Disconnects are injected
   while the job computes, 5–40 s after the daemon has seen that session; printed: death → Run all issued,
   death → the job computing again (the notebook's own heartbeat), median and max; the daemon's RSS
   and CPU (browser excluded).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from colab_side import heartbeat as hb  # noqa: E402
from keepalive.supervisor import SupervisorConfig  # noqa: E402
from keepalive_sim.colab_sim import ColabSimulator  # noqa: E402
from keepalive_sim.sample_job import SampleJob  # noqa: E402
from keepalive_sim.world import Faults, SyncLag, World, run_trace  # noqa: E402

LAG = (5.0, 120.0)
CONFIG = """
[colab]
origin = "{origin}"
[job]
name = "bench"
drive_folder = "{drive}"
[notify]
backend = "record"
[browser]
headless = true
[page.popup]
hosts = {accounts}
[page.signin]
hosts = {accounts}
"""


class DriveForDesktop(threading.Thread):
    """Copies one file from Colab's Drive to the PC's folder, each version ``LAG`` seconds late."""

    def __init__(self, source: Path, target: Path, rng: random.Random):
        super().__init__(daemon=True)
        self.source, self.target, self.rng = source, target, rng
        self.pending: list[tuple[float, int, bytes]] = []  # (arrival, version number, bytes)
        self.stop = threading.Event()

    def run(self) -> None:
        seen, version, delivered = None, 0, 0
        self.target.parent.mkdir(parents=True, exist_ok=True)
        while not self.stop.wait(0.05):
            try:
                data = self.source.read_bytes()
            except OSError:
                data = None
            if data and data != seen:
                seen, version = data, version + 1
                self.pending.append((time.monotonic() + self.rng.uniform(*LAG), version, data))
            due = sorted(item for item in self.pending if item[0] <= time.monotonic())
            self.pending = [item for item in self.pending if item[0] > time.monotonic()]
            for _arrival, number, payload in due:
                if number > delivered:  # Drive keeps the latest version
                    delivered = number
                    temp = self.target.with_name(self.target.name + ".sync")
                    temp.write_bytes(payload)
                    os.replace(temp, self.target)


def beat(path: Path):
    try:
        return hb.read(path)
    except (OSError, hb.HeartbeatError):
        return None


def wait(condition, timeout=400.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    return None


def events(path: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return []


def run_all_after(path: Path, since_wall: float) -> float | None:
    import datetime

    for event in events(path):
        if event.get("event") == "action" and event.get("action") == "run_all":
            at = datetime.datetime.fromisoformat(event["time"]).timestamp()
            if at > since_wall:
                return at
    return None


def daemon_saw(path: Path, session: str) -> bool:
    return any(e.get("event") == "session_seen" and e.get("session") == session for e in events(path))


def proc_usage(pid: int) -> tuple[float, int]:
    """(CPU seconds, RSS bytes) of one process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    return cpu, rss


def summary(label: str, values: list[float]) -> str:
    if not values:
        return f"{label}: no sample"
    return (f"{label}: median {statistics.median(values):5.1f} s, max {max(values):5.1f} s, "
            f"min {min(values):5.1f} s (n={len(values)})")


def bench_browser(faults: int, connect_seconds: float, seed: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-recovery-"))
    job = SampleJob(root, name="bench", images=400, chunk_seconds=10.0, heartbeat_seconds=30.0, gpu=False)
    sim = ColabSimulator(job.command(), env=job.env, workdir=root / "sim", connect_seconds=connect_seconds).start()
    pc_drive = root / "pc-drive"
    sync = DriveForDesktop(job.job_dir / hb.FILENAME, hb.heartbeat_path(pc_drive, "bench"), random.Random(seed))
    sync.start()
    home = root / "home"
    (home / "config").mkdir(parents=True)
    (home / "config" / "config.toml").write_text(CONFIG.format(
        origin=sim.origin, drive=pc_drive,
        accounts=json.dumps(sim.page_overrides()["popup"]["hosts"])))
    env = dict(os.environ, KEEPALIVE_HOME=str(home))
    daemon = subprocess.Popen([sys.executable, "-m", "keepalive", "run", sim.notebook_url], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = home / "state" / "bench" / "events.jsonl"
    truth = job.job_dir / hb.FILENAME
    to_run_all, to_computing, samples, session = [], [], [], None
    rng = random.Random(seed + 1)
    try:
        for _ in range(faults):
            current = wait(lambda: (b := beat(truth)) and b.session != session and b.phase == hb.COMPUTING
                           and sim.state()["running"] and daemon_saw(journal, b.session) and b)
            if current is None:
                print("stopped early: the job did not compute again, or the daemon never saw it")
                break
            samples.append((time.monotonic(), *proc_usage(daemon.pid)))
            session = current.session
            time.sleep(rng.uniform(5.0, 40.0))  # a death at any moment of the daemon's poll, not just after one
            killed_at = time.time()
            sim.kill("disconnect")
            run_all = wait(lambda: run_all_after(journal, killed_at))
            computing = wait(lambda: (b := beat(truth)) and b.session != session and b.phase == hb.COMPUTING)
            if run_all is None or computing is None:
                print("stopped early: a disconnect was not recovered within 400 s")
                break
            to_run_all.append(run_all - killed_at)
            to_computing.append(time.time() - killed_at)
        samples.append((time.monotonic(), *proc_usage(daemon.pid)))
    finally:
        daemon.terminate()
        daemon.wait(30)
        sync.stop.set()
        sim.stop()
    defaults = SupervisorConfig()
    print(f"2. keepalive run with the defaults (poll 10 s, fast poll {defaults.fast_poll_seconds} s, grace "
          f"{defaults.grace_seconds:.0f} s, dead after {defaults.dead_after}), heartbeat every 30 s, "
          f"Drive-for-desktop lag {LAG[0]:.0f}–{LAG[1]:.0f} s, VM allocation {connect_seconds} s")
    print(f"   disconnects injected and recovered: {len(to_computing)}")
    print("   " + summary("death → Run all issued     ", to_run_all))
    print("   " + summary("death → computing again    ", to_computing))
    if len(samples) >= 2:
        period = samples[-1][0] - samples[0][0]
        cpu = samples[-1][1] - samples[0][1]
        print(f"   daemon process: RSS {max(s[2] for s in samples) / 2**20:.0f} MiB max; CPU {cpu:.1f} s over "
              f"{period:.0f} s = {100 * cpu / max(period, 1e-9):.1f}% of one core (browser excluded)")
    print(f"   work folder: {root}")


def bench_days(days: float, seeds: int) -> None:
    hour = 3600.0
    totals = {"deaths": 0, "restarts": 0, "live": 0, "unrecovered": 0, "stalls_told": 0, "stopped": 0}
    delays: list[float] = []
    for seed in range(seeds):
        rng = random.Random(seed)
        span = days * 24 * hour
        deaths = sorted(rng.uniform(0.2 * hour, span - hour) for _ in range(int(10 * days)))
        stalls = [(2 * hour, 3.8 * hour), (15 * hour, 15.5 * hour)]
        offline = [(9 * hour, 9 * hour + 2400)]
        world = World(Faults(deaths=deaths, stalls=stalls, offline=offline),
                      SyncLag(rng, *LAG, blocked=stalls + offline), colab_clock_ahead=rng.uniform(-120, 120))
        result = run_trace(world, SupervisorConfig(), days * 24, 10.0)
        totals["deaths"] += result["deaths"]
        totals["restarts"] += result["restarts"]
        totals["live"] += result["run_all_to_live_jobs"]
        totals["unrecovered"] += result["unrecovered"]
        totals["stalls_told"] += sum(1 for n in result["notices"] if n.value == "source_stalled")
        totals["stopped"] += result["stopped"] is not None
        delays += result["death_to_run_all"]
    print(f"1. simulated {days:g} day(s) x {seeds} seeds (pure supervisor, defaults, poll 10 s): deaths "
          f"{totals['deaths']} (some inside sync pauses and offline periods), restarts {totals['restarts']}, "
          f"Run all to a live job {totals['live']}, unrecovered {totals['unrecovered']}, watch stopped "
          f"{totals['stopped']}, 'heartbeat source stalled' told {totals['stalls_told']} times")
    print("   " + summary("death → Run all (simulated)", delays))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--faults", type=int, default=20)
    parser.add_argument("--connect-seconds", type=float, default=10.0, help="the simulator's VM allocation time")
    parser.add_argument("--days", type=float, default=1.0)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-browser", action="store_true", help="only the simulated days")
    args = parser.parse_args()
    bench_days(args.days, args.seeds)
    if not args.skip_browser:
        bench_browser(args.faults, args.connect_seconds, args.seed)


if __name__ == "__main__":
    main()
