"""A stand-in for every AliceVision executable, for running the real Meshroom engine without AliceVision.

Installed as ``aliceVision/bin/<executable>`` in a release built by ``tools/real_meshroom.py``. It is
called by Meshroom exactly as the real program is (``aliceVision_texturing --input ... --output ...``)
and writes the outputs the node declares. Which arguments are outputs, and which files a node
declares inside its output folder, come from ``standin_outputs.json``: a table that
``real_meshroom.py`` reads from the node descriptions of the Meshroom source it builds from.

Every written file holds bytes derived from the executable, the file name, the chunk's range and the
contents of every input file or folder named on the command line (paths and Meshroom's own status,
log and statistics files left out), so a result depends on the whole chain and is the same in every
run of the same job. ``ALICEVISION_STANDIN_SECONDS`` makes each call take that long; while it runs it
prints to its stdout, which Meshroom sends to the chunk's log file. ``ALICEVISION_STANDIN_BYTES`` makes one
executable's files larger (``aliceVision_texturing=50000000``), so that publishing them takes a while.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path

_META = re.compile(r"^(\d+\.)?(status|log|statistics)$")
_BYTES = 512


def parse_arguments(argv: list[str]) -> dict[str, list[str]]:
    """``--key v1 v2 --other=v`` → ``{"key": ["v1", "v2"], "other": ["v"]}``; ``-1`` and the like stay values."""
    found: dict[str, list[str]] = {}
    key = None
    for token in argv:
        if token.startswith("--"):
            key, _, value = token[2:].partition("=")
            found[key] = [value] if value else []
        elif key is not None:
            found[key].append(token)
    return found


def _digest_path(digest, path: Path) -> None:
    if path.is_file():
        if not _META.match(path.name) and ".writing." not in path.name:
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    elif path.is_dir():
        for child in sorted(path.rglob("*")):
            if child.is_file():
                digest.update(child.relative_to(path).as_posix().encode() + b"\0")
                _digest_path(digest, child)


def input_digest(arguments: dict[str, list[str]], outputs: set[str]) -> str:
    digest = hashlib.sha256()
    for key in sorted(arguments):
        if key in outputs or key in ("rangeStart", "rangeSize", "maxMemory", "maxCores"):
            continue
        for value in arguments[key]:
            path = Path(value)
            if value and path.exists():
                _digest_path(digest, path)
            else:
                digest.update(f"{key}={value}".encode())
    return digest.hexdigest()


def view_ids(arguments: dict[str, list[str]]) -> list[str]:
    """The views of this chunk: its range, or a single view for nodes without chunks."""
    if "rangeStart" in arguments and "rangeSize" in arguments:
        start, size = int(arguments["rangeStart"][0]), int(arguments["rangeSize"][0])
        return [str(10000 + i) for i in range(start, start + size)]
    return ["10000"]


def declared_names(template: str, arguments: dict[str, list[str]]) -> list[str]:
    """File names of a declared output (``texture_*.{outputTextureFileTypeValue}``) for this call."""
    def value(match):
        return (arguments.get(match.group(1)) or ["exr"])[0]

    name = re.sub(r"\{(\w+)Value\}", value, template)
    name = name.replace("*", "<VIEW_ID>" if "rangeStart" in arguments else "1001")  # one file per view, or a UDIM tile
    if "<" in name:
        return [re.sub(r"<\w+>", view, name) for view in view_ids(arguments)]
    return [name]


def file_size(tool: str) -> int:
    """Bytes per written file: 512, or as ``ALICEVISION_STANDIN_BYTES="aliceVision_texturing=50000000,..."`` says."""
    for item in os.environ.get("ALICEVISION_STANDIN_BYTES", "").split(","):
        name, _, size = item.partition("=")
        if name.strip() == tool and size.strip().isdigit():
            return int(size)
    return _BYTES


def content(tool: str, name: str, digest: str, arguments) -> bytes:
    seed = f"{tool}\0{name}\0{digest}\0{arguments.get('rangeStart')}".encode()
    block, size = hashlib.sha256(seed).digest(), file_size(tool)
    return (block * (size // len(block) + 1))[:size]


def camera_init(arguments: dict[str, list[str]], output: Path) -> None:
    """``aliceVision_cameraInit``: the views of ``--input`` with ids, and one intrinsic, as Meshroom reads them back."""
    source = json.loads(Path(arguments["input"][0]).read_text(encoding="utf-8")) if arguments.get("input") else {}
    views = []
    for view in source.get("views", []):
        number = int(hashlib.sha256(os.path.basename(view["path"]).encode()).hexdigest()[:7], 16)
        views.append({"viewId": number, "poseId": number, "path": view["path"], "intrinsicId": 1,
                      "rigId": -1, "subPoseId": -1, "metadata": view.get("metadata") or {}})
    intrinsic = {"intrinsicId": 1, "pxInitialFocalLength": 1000.0, "pxFocalLength": 1000.0, "type": "radial3",
                 "width": 640, "height": 480, "serialNumber": "standin", "principalPoint": [0.0, 0.0],
                 "initializationMode": "unknown", "distortionParams": [0.0, 0.0, 0.0], "locked": False}
    output.parent.mkdir(parents=True, exist_ok=True)
    sfm = {"version": [1, 0, 0], "views": sorted(views, key=lambda v: v["path"]), "intrinsics": [intrinsic]}
    output.write_text(json.dumps(sfm, indent=4), encoding="utf-8")


def main(tool: str, argv: list[str], table: dict) -> int:
    spec = table.get(tool)
    if spec is None:
        print(f"{tool}: not in the stand-in's table of AliceVision executables", file=sys.stderr)
        return 2
    arguments = parse_arguments(argv)
    outputs = {name for name in spec["outputs"] if name in arguments}
    print(f"{tool} (stand-in) {' '.join(argv)}", flush=True)
    seconds = float(os.environ.get("ALICEVISION_STANDIN_SECONDS", "0"))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        print(f"{tool}: working, {deadline - time.monotonic():.1f} s left", flush=True)
        time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
    digest = input_digest(arguments, outputs)
    for name in sorted(outputs):
        target = Path(arguments[name][0])
        if spec["outputs"][name] == "folder":
            target.mkdir(parents=True, exist_ok=True)
            files = [file for template in spec["declared"] for file in declared_names(template, arguments)]
            for file in files or [f"{view}.bin" for view in view_ids(arguments)]:
                (target / file).write_bytes(content(tool, file, digest, arguments))
        elif tool == "aliceVision_cameraInit":
            camera_init(arguments, target)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content(tool, target.name, digest, arguments))
    print(f"{tool}: done", flush=True)
    return 0


if __name__ == "__main__":
    _table = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    sys.exit(main(sys.argv[2], sys.argv[3:], _table))
