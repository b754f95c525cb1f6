"""Run colab_side against the real Meshroom engine, with stand-in AliceVision executables.

Meshroom's engine is pure Python: its ``meshroom`` package and ``bin/meshroom_*`` scripts run as they
do in a release, and only the AliceVision programs they call are replaced (``alicevision_standin.py``).
Nothing of Meshroom is kept in this repository: give the source tree of a tag (for example from
``git archive v2019.2.0`` of alicevision/Meshroom) with ``--source`` or ``KEEPALIVE_MESHROOM_SOURCE``.

    python tools/real_meshroom.py build  --source DIR --dest DIR          # a release archive, path printed
    python tools/real_meshroom.py verify --source DIR --work DIR --kills 5  # reference run vs a killed run

``build`` copies the source's ``meshroom`` package and ``bin/`` scripts into an archive shaped like a
release (``Meshroom-<version>/meshroom_batch``, ``meshroom_compute``, ``aliceVision/bin/...``), with the
two ``collections.abc`` fixes old releases need on Python 3.10+. colab_side installs it through
``--meshroom-url`` as it would a downloaded release. ``verify`` runs one job uninterrupted and one
SIGKILLed (the whole process group, as a vanishing runtime) at random moments until it is done,
and prints JSON: kills, sessions, and each job's ``result/`` files with size and SHA-256.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

_PYTHON_SHIM = """#!{python}
import os, runpy, sys
here = os.path.dirname(os.path.realpath(__file__))
os.environ["MESHROOM_INSTALL_DIR"] = here
sys.path.insert(0, os.path.join(here, "lib"))
runpy.run_path(os.path.join(here, "lib", "bin", {tool!r} + ".py"), run_name="__main__")
"""

_STANDIN_SHIM = """#!/bin/sh
here="$(dirname "$0")/.."
exec "{python}" "$here/lib/alicevision_standin.py" "$here/share/aliceVision/standin_outputs.json" {tool} "$@"
"""

# Run inside the release's Python path: which AliceVision executables the nodes call, and what they write.
_INTROSPECT = r"""
import json, sys
import meshroom.core
from meshroom.core import desc, graph as mgraph

def relative(value, folder):
    return value.replace(folder, "") if value.startswith(folder) else None

table = {}
for name, node_desc in sorted(meshroom.core.nodesDesc.items()):
    line = getattr(node_desc, "commandLine", "") or ""
    if not line:
        continue
    instance = None
    outputs, declared = {}, []
    for attr in node_desc.outputs:
        value, folder = attr.value, desc.Node.internalFolder
        if callable(value):
            instance = instance or mgraph.Graph("introspect").addNewNode(name)
            value, folder = instance.attribute(attr.name).value, instance.internalFolder
            folder = folder if folder.endswith("/") else folder + "/"
        rel = relative(value, folder) if isinstance(value, str) and value else None
        if rel is None:
            continue
        if attr.group and "{" + attr.group + "}" in line:
            outputs[attr.name] = "folder" if rel == "" or rel.endswith("/") else "file"
        else:
            declared.append(rel)
    tool = line.split()[0]
    entry = table.setdefault(tool, {"outputs": {}, "declared": [], "nodes": []})
    entry["outputs"].update(outputs)
    entry["declared"] += [d for d in declared if d not in entry["declared"]]
    entry["nodes"].append(name)
with open(sys.argv[1], "w") as out:
    json.dump(table, out, indent=1, sort_keys=True)
"""

_ABC_NAMES = "Sequence|Iterable|Mapping|MutableMapping|Iterator|Callable|Set|MutableSet|Hashable|Sized|Container"


def python_compat(text: str) -> str:
    """``collections.Sequence`` → ``collections.abc.Sequence`` (removed from ``collections`` in Python 3.10)."""
    fixed = re.sub(rf"\bcollections\.({_ABC_NAMES})\b", r"collections.abc.\1", text)
    if fixed != text:
        fixed = re.sub(r"^import collections$", "import collections\nimport collections.abc", fixed, flags=re.M)
    return fixed


def source_version(source: Path) -> str:
    """``2019.2`` from the package's ``__version__`` (``2019.2.0``, ``2023.3.0``)."""
    text = (source / "meshroom" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r"""__version__\s*=\s*["'](\d+)\.(\d+)""", text)
    if not match:
        raise SystemExit(f"{source}: no __version__ in meshroom/__init__.py; is this a Meshroom source tree?")
    return f"{match.group(1)}.{match.group(2)}"


def batch_tool(source: Path) -> str:
    for name in ("meshroom_batch", "meshroom_photogrammetry"):
        if (source / "bin" / name).is_file():
            return name
    raise SystemExit(f"{source}/bin holds neither meshroom_batch nor meshroom_photogrammetry")


def build_release(source, dest, python: str = sys.executable) -> Path:
    """A release-shaped archive of the Meshroom source ``source`` with stand-in AliceVision; returns its path."""
    source, dest = Path(source).resolve(), Path(dest)
    version = source_version(source)
    top = f"Meshroom-{version}.0"
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / top
        shutil.copytree(source / "meshroom", root / "lib" / "meshroom",
                        ignore=shutil.ignore_patterns("__pycache__", "ui", "*.qml"))
        for py in (root / "lib" / "meshroom").rglob("*.py"):
            text = py.read_text(encoding="utf-8")
            if python_compat(text) != text:
                py.write_text(python_compat(text), encoding="utf-8")
        (root / "lib" / "bin").mkdir()
        for script in (source / "bin").iterdir():  # as .py: no other file in the tree named like an executable
            shutil.copyfile(script, root / "lib" / "bin" / f"{script.name}.py")
        for tool in (batch_tool(source), "meshroom_compute"):
            _write(root / tool, _PYTHON_SHIM.format(python=python, tool=tool), 0o755)
        share = root / "aliceVision" / "share" / "aliceVision"
        share.mkdir(parents=True)
        (share / "cameraSensors.db").write_text("standin;standin;6.17\n")
        (share / "vlfeat_K80L3.SIFT.tree").write_bytes(b"\0" * 64)
        table = introspect(root / "lib", python)
        (share / "standin_outputs.json").write_text(json.dumps(table, indent=1, sort_keys=True))
        (root / "aliceVision" / "lib").mkdir()
        shutil.copyfile(HERE / "alicevision_standin.py", root / "aliceVision" / "lib" / "alicevision_standin.py")
        for tool in table:
            _write(root / "aliceVision" / "bin" / tool, _STANDIN_SHIM.format(python=python, tool=tool), 0o755)
        archive = dest / f"{top}-standin-alicevision.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(root, arcname=top)
    return archive


def _write(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)


def introspect(lib: Path, python: str) -> dict:
    """The stand-in's table, read from the node descriptions (Meshroom prints to stdout, so a file carries it)."""
    env = {**os.environ, "PYTHONPATH": str(lib)}
    out = lib / "standin_outputs.json"
    proc = subprocess.run([python, "-c", _INTROSPECT, str(out)], env=env, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise SystemExit(f"the Meshroom package does not import: {proc.stderr.strip().splitlines()[-1:]}")
    table = json.loads(out.read_text(encoding="utf-8"))
    out.unlink()
    return table


# --- running colab_side against it -------------------------------------------------------------------


def make_images(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"IMG_{i:04d}.jpg").write_bytes(hashlib.sha256(f"image {i}".encode()).digest() * 16)
    return folder


def job_command(drive: Path, images: Path, job: str, version: str, archive: Path, local: Path, extra=()) -> list[str]:
    return [sys.executable, "-m", "colab_side", "run", "--images", str(images), "--job", job,
            "--drive-root", str(drive), "--meshroom", version, "--meshroom-url", str(archive),
            "--local-dir", str(local), "--heartbeat-seconds", "0.5", "--no-gpu-required", *extra]


def job_env(seconds: float, code: Path, sizes: str = "") -> dict:
    env = {**os.environ, "ALICEVISION_STANDIN_SECONDS": str(seconds), "ALICEVISION_STANDIN_BYTES": sizes}
    env["PYTHONPATH"] = os.pathsep.join([str(code), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def snapshot_colab_side(dest: Path) -> dict:
    """Copy colab_side as it is now, so that every session of a run uses the same code; say which code."""
    shutil.copytree(REPO / "colab_side", dest / "colab_side", ignore=shutil.ignore_patterns("__pycache__"))
    git = ["git", "-C", str(REPO)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    changed = subprocess.run([*git, "status", "--porcelain", "--", "colab_side"], capture_output=True, text=True)
    return {"commit": head.stdout.strip() or None,
            "uncommitted": [line[3:] for line in changed.stdout.splitlines()]}


def session(command: list[str], env: dict, kill_after: float | None, log, cwd: Path, kill_when=None) -> int | None:
    """One session; SIGKILL its whole process group after ``kill_after`` seconds, or ``kill_after`` seconds after
    ``kill_when()`` first holds when it is given. None when killed.

    ``cwd`` must not be the repository: ``python -m`` would import colab_side from there, not the snapshot.
    """
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=cwd)
    deadline = None if kill_after is None or kill_when else time.monotonic() + kill_after
    while proc.poll() is None:
        if deadline is None and kill_when is not None and kill_when():
            deadline = time.monotonic() + (kill_after or 0.0)
        if deadline is not None and time.monotonic() >= deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return None
        time.sleep(0.05)
    return proc.returncode


def event_appears(job_dir: Path, target: str):
    """A test for ``event[:node]`` (``node_start:Texturing_1``, ``published``) among events written from now on."""
    event, _, node = target.partition(":")
    seen = len(events(job_dir))

    def appeared() -> bool:
        return any(e.get("event") == event and (not node or e.get("node") == node) for e in events(job_dir)[seen:])
    return appeared


def listing(folder: Path) -> dict[str, list]:
    """relative path → [size, SHA-256] of every file below ``folder``."""
    if not folder.is_dir():
        return {}
    return {p.relative_to(folder).as_posix(): [p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest()]
            for p in sorted(folder.rglob("*")) if p.is_file()}


def meshroom_published(job_dir: Path) -> dict[str, list]:
    """What Meshroom's own Publish nodes wrote (their ``output`` folders, named in the saved project)."""
    project = _read_json(job_dir / "project.mg") or {}
    found: dict[str, list] = {}
    for node in (project.get("graph") or {}).values():
        if node.get("nodeType") == "Publish" and node.get("inputs", {}).get("output"):
            found.update(listing(Path(node["inputs"]["output"])))
    return found


def events(job_dir: Path) -> list[dict]:
    path = job_dir / "events.jsonl"
    if not path.exists():
        return []
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            found.append(json.loads(line))
        except ValueError:
            pass
    return found


def verify(source, work, kills: int = 5, images: int = 12, seconds: float = 0.3, seed: int | None = None,
           max_delay: float = 20.0, extra=(), targets=(), sizes: str = "") -> dict:
    """Reference run and killed run of the same job on the real engine; a report of both.

    After the ``kills`` random kills, one session per ``targets`` entry (``event:node``) is killed 0–0.2 s after
    that event, e.g. ``node_start:Publish_1`` or ``published``.
    """
    work = Path(work)
    version = source_version(Path(source))
    archive = build_release(source, work / "release")
    drive = work / "drive"
    pictures = make_images(drive / "images", images)
    code = work / "code"
    report_code = snapshot_colab_side(code)
    env = job_env(seconds, code, sizes)
    seed = random.randrange(1 << 30) if seed is None else seed
    rng = random.Random(seed)
    report: dict = {"version": version, "seed": seed, "images": images, "standin_seconds": seconds,
                    "standin_bytes": sizes, "colab_side": report_code}
    with open(work / "sessions.log", "w") as log:
        started = time.monotonic()
        reference = job_command(drive, pictures, "reference", version, archive, work / "local-ref", extra)
        code = session(reference, env, None, log, work)
        report["reference"] = {"exit": code, "seconds": round(time.monotonic() - started, 1)}
        killed, codes, hit = 0, [], []
        pending = list(targets)
        while True:
            delay, kill_when = (rng.uniform(1.0, max_delay) if killed < kills else None), None
            if delay is None and pending:
                hit.append(pending.pop(0))
                delay, kill_when = rng.uniform(0.0, 0.2), event_appears(drive / "keepalive" / "killed", hit[-1])
            local = work / "local-killed"  # like /content on Colab: the same path, wiped for each new runtime
            shutil.rmtree(local, ignore_errors=True)
            killed_session = job_command(drive, pictures, "killed", version, archive, local, extra)
            code = session(killed_session, env, delay, log, work, kill_when)
            codes.append(code)
            if code is None:
                killed += 1
            elif kill_when is not None:
                hit[-1] += " (not reached: the session ended first)"
            if code is not None and (code == 0 or len(codes) > kills + len(targets) + 5):
                hit += [f"{target} (not reached: the job ended first)" for target in pending]
                break  # a finished job never reaches a pending target: each later session would just exit 0
    report["killed"] = {"kills": killed, "sessions": len(codes), "exits": codes, "targets": hit}
    for job in ("reference", "killed"):
        job_dir = drive / "keepalive" / job
        done = [e for e in events(job_dir) if e.get("event") == "chunk_done"]
        keys = [f"{e['node']}:{e['chunk']}" for e in done]
        report[job].update(result=listing(job_dir / "result"), chunks_done=len(keys),
                           chunks_redone=sorted({k for k in keys if keys.count(k) > 1}),
                           heartbeat=_read_json(job_dir / "heartbeat.json"))
    report["reference"]["meshroom_published"] = meshroom_published(drive / "keepalive" / "reference")
    expected = report["reference"]["result"]
    report["identical"] = bool(expected) and expected == report["killed"]["result"]
    return report


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def main(argv=None) -> int:
    top = argparse.ArgumentParser(prog="real_meshroom.py", description=__doc__.split("\n\n")[0])
    sub = top.add_subparsers(dest="command", required=True)
    source_help = "Meshroom source tree of one tag (default: $KEEPALIVE_MESHROOM_SOURCE)"
    b = sub.add_parser("build", help="write a release-shaped archive with stand-in AliceVision")
    b.add_argument("--source", default=os.environ.get("KEEPALIVE_MESHROOM_SOURCE"), help=source_help)
    b.add_argument("--dest", required=True)
    v = sub.add_parser("verify", help="reference run vs a run killed at random moments; JSON report")
    v.add_argument("--source", default=os.environ.get("KEEPALIVE_MESHROOM_SOURCE"), help=source_help)
    v.add_argument("--work", required=True, help="an empty folder for the drive, runtimes and release")
    v.add_argument("--kills", type=int, default=5)
    v.add_argument("--images", type=int, default=12)
    v.add_argument("--seconds", type=float, default=0.3, help="time each AliceVision call takes")
    v.add_argument("--max-delay", type=float, default=20.0, help="longest time before a kill")
    v.add_argument("--seed", type=int, default=None)
    v.add_argument("--kill-at", action="append", default=[], metavar="EVENT[:NODE]",
                   help="after the random kills, kill one session as this event appears (repeatable), "
                        "e.g. node_start:Publish_1 or published")
    v.add_argument("--bytes", default="", metavar="TOOL=N,...",
                   help="larger files for some executables, e.g. aliceVision_texturing=50000000")
    v.add_argument("extra", nargs="*", help="more colab_side run options, after --")
    args = top.parse_args(argv)
    if not args.source or not (Path(args.source) / "meshroom").is_dir():
        print("real_meshroom.py: give --source DIR (or KEEPALIVE_MESHROOM_SOURCE), a Meshroom source tree of one tag")
        return 2
    if args.command == "build":
        print(build_release(args.source, args.dest))
        return 0
    report = verify(args.source, args.work, args.kills, args.images, args.seconds, args.seed, args.max_delay,
                    args.extra, args.kill_at, args.bytes)
    print(json.dumps(report, indent=1))
    return 0 if report["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
