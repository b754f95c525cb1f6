"""Command line: ``python -m colab_side run|plan|progress ...``."""

from __future__ import annotations

import argparse
import sys

from colab_side import progress_cli, settings
from colab_side.colmap import advice as colmap_advice
from colab_side.drive import DriveError
from colab_side.meshroom import advice
from colab_side.meshroom.graph import GraphError
from colab_side.runner import IMAGE_EXTENSIONS, run


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m colab_side", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)
    settings.add_arguments(sub.add_parser("run", help="run or resume the job"))
    f = sub.add_parser("plan", help="what the job will need (disk, Drive, chunks), before anything runs")
    for name in ("images", "engine", "meshroom", "drive_budget_gb", "drive_margin_gb", "params"):
        settings.add_argument(f, settings.BY_NAME[name])
    f.add_argument("--model", default=None, help="a JSON file correcting the estimates (see docs/drive-budget.md)")
    p = sub.add_parser("progress", help="how far a job or a Meshroom cache is")
    p.add_argument("job_dir", nargs="?", help="the job folder (<drive>/keepalive/<job>)")
    p.add_argument("--graph", help="a .mg file, with --cache")
    p.add_argument("--cache", help="a plain Meshroom cache folder, with --graph")
    p.add_argument("--json", action="store_true")
    return top


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.command == "progress":
        if bool(args.graph) != bool(args.cache) or (not args.graph and not args.job_dir):
            print("colab_side progress: give a job folder, or both --graph FILE.mg and --cache DIR", file=sys.stderr)
            return 2
        try:
            return progress_cli.main(args)
        except (GraphError, DriveError) as exc:  # DriveError: the store's manifest cannot be read now
            print(f"colab_side progress: {exc}", file=sys.stderr)
            return 2
    if args.command == "plan":
        try:
            if args.engine == "colmap":
                return colmap_advice.main(args, IMAGE_EXTENSIONS)
            return advice.main(args, IMAGE_EXTENSIONS)
        except ValueError as exc:  # the model file, the images, the settings: one line each
            print(f"colab_side plan: {exc}", file=sys.stderr)
            return 2
    options = vars(args)
    options.pop("command")
    return run(**options)


if __name__ == "__main__":
    sys.exit(main())
