"""Figures for stopping (printed, not asserted): how long ``keepalive run`` takes to end after Ctrl+C or SIGTERM,
and whether any browser process outlives it, in each state.

    python bench/bench_stop.py [--rounds 1]

``keepalive run --headless`` runs as a user runs it (its own process, a config of its own) against the Colab
simulator (the page shown: "Connect") and against a closed port (Colab unreachable: OFFLINE); once the daemon
has decided in that state, the signal is sent. Printed per state and signal: seconds from the signal to the
exit, its exit code, the browser processes it had (chromium, chromedriver) and how many were left after it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from keepalive_sim.colab_sim import ColabSimulator  # noqa: E402


def closed_port_origin() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def decided(state: Path, field: str, value: str) -> bool:
    events = state / "demo" / "events.jsonl"
    if not events.exists():
        return False
    return any(json.loads(line).get(field) == value for line in events.read_text().splitlines() if line.strip())


def browsers(pid: int) -> list[psutil.Process]:
    try:
        return [p for p in psutil.Process(pid).children(recursive=True) if "chrom" in p.name().lower()]
    except psutil.NoSuchProcess:
        return []


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def one(origin: str, field: str, value: str, how: signal.Signals) -> str:
    home = Path(tempfile.mkdtemp(prefix="bench-stop-"))
    (home / "config").mkdir()
    (home / "drive").mkdir()
    (home / "config" / "config.toml").write_text(
        f'[job]\nname = "demo"\ndrive_folder = "{home / "drive"}"\n[notify]\nbackend = "record"\n'
        '[daemon]\nkeep_awake = false\npoll_seconds = 0.5\n', encoding="utf-8")
    env = dict(os.environ, KEEPALIVE_HOME=str(home), KEEPALIVE_COLAB_ORIGIN=origin)
    proc = subprocess.Popen([sys.executable, "-m", "keepalive", "run", f"{origin}/drive/demo", "--headless"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not until(lambda: decided(home / "state", field, value), 180):
            return "never reached the state"
        started = browsers(proc.pid)
        sent = time.monotonic()
        proc.send_signal(how)
        code = proc.wait(120)
        seconds = time.monotonic() - sent
        until(lambda: not any(alive(p) for p in started), 10)
        left = sum(alive(p) for p in started)
        return f"exit {code} after {seconds:.1f} s; {len(started)} browser processes, {left} left"
    finally:
        if proc.poll() is None:
            proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    command = [sys.executable, "-c", "import time; time.sleep(3600)"]
    with ColabSimulator(command, workdir=tempfile.mkdtemp(prefix="bench-stop-sim-"), connect_seconds=0.3) as sim:
        states = {"page shown": (sim.origin, "page", "disconnected"), "offline": (None, "cause", "OFFLINE")}
        for _ in range(args.rounds):
            for name, (origin, field, value) in states.items():
                for how in (signal.SIGINT, signal.SIGTERM):
                    print(f"{name:10} {how.name:7} {one(origin or closed_port_origin(), field, value, how)}", flush=True)


if __name__ == "__main__":
    main()
