"""Thirty simulated days of a watch in seconds (tests/soak.py): the journal, state.json, sessions.json and the
daemon's memory at the end of each day. Runtimes die after 2-12 h, Drive's sync stalls 2 h every five days, the
PC is offline 6 h once a week, and on day 10 every round fails (10 s rounds).

    python bench/bench_soak.py [--days 30] [--max-bytes 2000000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from keepalive.journal import MAX_BYTES  # noqa: E402
from soak import soak  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--max-bytes", type=int, default=MAX_BYTES, help="the journal's rotation size")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        month = soak(Path(folder), days=args.days, max_bytes=args.max_bytes)
    seconds = time.perf_counter() - started
    print(f"{args.days} days, {month['rounds']} rounds in {seconds:.1f} s; {month['deaths']} runtimes died, "
          f"{month['sessions']} sessions kept, restarts {month['restarts']}; failing day: "
          f"{month['failures_written']} failures written, {month['failures_counted']} counted")
    print("day  journal(B)  state.json(B)  sessions.json(B)  memory(KiB)")
    for day in month["daily"]:
        print(f"{day['day']:>3}  {day['journal']:>10}  {day['state']:>13}  {day['sessions_file']:>16}  "
              f"{day['memory'] // 1024:>11}")


if __name__ == "__main__":
    main()
