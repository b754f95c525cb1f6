"""Figures for cli mode on the fake colab (printed, not asserted).

    python bench/bench_cli_mode.py [--cell-seconds 10] [--poll-seconds 2] [--images 8] [--chunk-seconds 0.8]

The daemon runs a job through the fake ``colab`` (keepalive_sim.fake_colab) with one reclaim in the
middle. Printed: how much of the job's time the VM's kernel was busy with an attached cell (what keeps
a runtime from looking idle), the longest gap between cells, the CLI calls per minute by command (the
load keepalive puts on Colab's API), and reclaim → the job computing again. What Colab itself counts as
idle cannot be measured without a Google account; these figures say what keepalive does, not what
Colab concludes.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from cli_stand import CliStand  # noqa: E402
from colab_side import heartbeat as hb  # noqa: E402


def main() -> None:
    options = argparse.ArgumentParser()
    options.add_argument("--cell-seconds", type=float, default=10.0)
    options.add_argument("--poll-seconds", type=float, default=2.0)
    options.add_argument("--images", type=int, default=8)
    options.add_argument("--chunk-seconds", type=float, default=0.8)
    args = options.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as folder:
        stand = CliStand(Path(folder), images=args.images, chunk_seconds=args.chunk_seconds,
                         waiter_cell_seconds=args.cell_seconds)
        daemon = stand.daemon()
        daemon.cfg.poll_seconds = args.poll_seconds
        reclaim = {}

        def inject():
            while not daemon.stopping:
                beat = stand.heartbeat()
                if beat and beat.phase == hb.COMPUTING and beat.chunks_total and beat.chunks_done >= beat.chunks_total // 2:
                    reclaim.update(time=time.time(), session=beat.session)
                    stand.fake.reclaim(stand.endpoint())
                    break
                time.sleep(0.1)
            while not daemon.stopping:
                beat = stand.heartbeat()
                if beat and beat.session != reclaim["session"] and beat.phase == hb.COMPUTING:
                    reclaim["back"] = time.time()
                    return
                time.sleep(0.1)

        threading.Thread(target=inject, daemon=True).start()
        started = time.time()
        code = daemon.run()
        ended = time.time()
        stand.close()
        cells = sorted(stand.fake.cells(), key=lambda c: c[2])
        busy = alive = 0.0
        gaps = []
        for endpoint in dict.fromkeys(c[0] for c in cells):
            mine = [c for c in cells if c[0] == endpoint]
            launched = [c[3] for c in mine if c[1] == "launch.py"]
            waits = [c for c in mine if c[1] == "wait.py"]
            if launched and waits:  # the job ran from its launch to the end of the last attached cell
                alive += waits[-1][3] - launched[0]
                busy += sum(c[3] - c[2] for c in waits)
                gaps += [waits[0][2] - launched[0]] + [b[2] - a[3] for a, b in zip(waits, waits[1:])]
        calls = collections.Counter(command for command, _ in stand.fake.calls())
        minutes = (ended - started) / 60
        print(f"exit {code}; job watched {ended - started:.0f} s; {sum(c[1] == 'wait.py' for c in cells)} attached "
              f"cells of at most {args.cell_seconds:.0f} s")
        print(f"while the job ran on a runtime, its kernel was busy with an attached cell {busy:.0f} s of "
              f"{alive:.0f} s ({100 * busy / max(alive, 1e-9):.0f} %)")
        if gaps:
            print(f"kernel idle between launch/cells: median {sorted(gaps)[len(gaps) // 2]:.2f} s, max {max(gaps):.2f} s")
        if "back" in reclaim:
            print(f"reclaim -> job computing again: {reclaim['back'] - reclaim['time']:.1f} s")
        print("CLI calls per minute: " + ", ".join(f"{c} {n / minutes:.1f}" for c, n in calls.most_common()))


if __name__ == "__main__":
    main()
