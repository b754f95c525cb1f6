"""Command line: ``python -m colab_side run ...`` and ``python -m colab_side progress ...``."""

from __future__ import annotations

import argparse
import sys

from colab_side import progress_cli
from colab_side.meshroom.graph import GraphError
from colab_side.runner import GB, run


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m colab_side", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run or resume the job")
    r.add_argument("--images", required=True, help="folder of input images (on Drive)")
    r.add_argument("--job", default="meshroom", help="job name: its folder is <drive>/keepalive/<job>")
    r.add_argument("--drive-root", default=None, help="a plain folder instead of mounting Colab's Drive")
    r.add_argument("--meshroom", default="2019.2", help="Meshroom version (2019.2, 2021.1, 2023.3, 2025.1)")
    r.add_argument("--meshroom-url", default=None, help="where to fetch the release archive (URL or path)")
    r.add_argument("--local-dir", default=None, help="the runtime's fast local disk")
    r.add_argument("--heartbeat-seconds", type=float, default=30.0)
    r.add_argument("--max-node-errors", type=int, default=2)
    r.add_argument("--no-prune", dest="prune", action="store_false", help="keep every archive on Drive")
    r.add_argument("--drive-margin-gb", type=float, default=2.0, help="free Drive space needed before a node")
    r.add_argument("--remove-store", dest="keep_store", action="store_false",
                   help="remove the store once the result is published and verified")
    r.add_argument("--lifetime-hours", type=float, default=12.0)
    r.add_argument("--adopt-cache", default=None, help="a seed-style Meshroom cache folder to take over")
    r.add_argument("--no-gpu-required", dest="gpu_required", action="store_false")
    r.add_argument("--drive-backoff-seconds", type=float, default=2.0, help="first wait before retrying Drive")
    r.add_argument("--replan", action="store_true",
                   help="the job's image set changed on purpose: keep the old records aside and start over")
    r.add_argument("--pipeline", default=None, help="your own Meshroom pipeline (.mg), as Meshroom's --pipeline")
    r.add_argument("--param", dest="params", action="append", default=[], metavar="NODE.ATTR=VALUE",
                   help="set one parameter of the saved graph, e.g. DepthMap_1.downscale=4 (repeatable)")
    r.add_argument("--overrides", default=None, help='a JSON file {"Node_1": {"attribute": value}}, as Meshroom\'s')
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
        except GraphError as exc:
            print(f"colab_side progress: {exc}", file=sys.stderr)
            return 2
    options = vars(args)
    options.pop("command")
    options["drive_margin_bytes"] = int(options.pop("drive_margin_gb") * GB)
    return run(**options)


if __name__ == "__main__":
    sys.exit(main())
