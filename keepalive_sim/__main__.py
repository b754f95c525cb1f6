"""``python -m keepalive_sim``: the Colab simulator on its own, for trying ``keepalive run``, ``status`` and
``doctor`` by hand, without a Google account.

It starts the simulator with a small sample job behind its Run all, writes a keepalive config that points
at it (origin, notebook URL, job, the local "Drive" folder, the simulator's Google pages, short timings) in a
folder of its own, prints the commands to use, and serves until Ctrl+C.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading
from pathlib import Path

import tomlkit

from keepalive.demo import DEMO_SUPERVISOR
from keepalive_sim.colab_sim import LANGUAGES, VARIANTS, ColabSimulator
from keepalive_sim.sample_job import SampleJob

FAULTS = "kill, offline {\"seconds\": 60}, refuse_gpu {\"seconds\": 60}, show_captcha, solve_captcha, sign_out, sign_in"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m keepalive_sim",
                                     description="Serve the Colab simulator until Ctrl+C, with a sample job behind it.")
    parser.add_argument("--workdir", help="where the local Drive, the job and keepalive's config go (default: a new "
                                          "temporary folder)")
    parser.add_argument("--variant", choices=list(VARIANTS), default="m3-2025", help="which Colab build to draw")
    parser.add_argument("--language", choices=list(LANGUAGES), default="en", help="Colab's UI language")
    parser.add_argument("--images", type=int, default=12, help="images of the sample job")
    parser.add_argument("--chunk-seconds", type=float, default=1.0, help="seconds each chunk of the job computes")
    return parser


def write_config(path: Path, sim: ColabSimulator, job: SampleJob) -> Path:
    """A keepalive config for this simulator (tomlkit: values never become TOML syntax)."""
    document = tomlkit.document()
    document.add(tomlkit.comment("written by python -m keepalive_sim: keepalive pointed at the Colab simulator"))
    document["colab"] = {"origin": sim.origin, "url": sim.notebook_url}
    document["job"] = {"name": job.name, "drive_folder": str(job.drive)}
    document["daemon"] = {"poll_seconds": 1.0}
    document["supervisor"] = {"grace_seconds": DEMO_SUPERVISOR.grace_seconds, "dead_after": DEMO_SUPERVISOR.dead_after,
                              "recovery_timeout_seconds": DEMO_SUPERVISOR.recovery_timeout_seconds,
                              "offline_backoff_start": 5.0, "offline_backoff_cap": 30.0}
    document["page"] = sim.page_overrides()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomlkit.dumps(document), encoding="utf-8")
    return path


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="keepalive-sim-"))
    job = SampleJob(workdir / "job", name="demo", images=args.images, chunk_seconds=args.chunk_seconds,
                    heartbeat_seconds=1.0, gpu=False)
    sim = ColabSimulator(job.command(), env=job.env, workdir=workdir / "sim", variant=args.variant,
                         language=args.language)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with sim:
        home = workdir / "home"
        config = write_config(home / "config" / "config.toml", sim, job)
        print(f"Colab simulator: {sim.notebook_url}  ({args.variant}, {args.language}); Ctrl+C stops it.\n"
              f"keepalive's config for it: {config}\n"
              f"In another terminal (Windows: set KEEPALIVE_HOME={home}):\n"
              f"  export KEEPALIVE_HOME={home}\n"
              "  keepalive run --headless     # the URL, job and Drive folder come from the config\n"
              "  keepalive status\n"
              "  keepalive doctor --headless\n"
              f"Faults: POST {sim.origin}/_sim/<name> with Content-Type: application/json, e.g.\n"
              f"  curl -X POST -H 'Content-Type: application/json' -d '{{}}' {sim.origin}/_sim/kill\n"
              f"  names: {FAULTS}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
