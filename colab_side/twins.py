"""A small record kept on Drive as two files, a main and its twin, both rewritten in place (no Trash copy per
rewrite), main first: a kill or a fault while one is written leaves the other whole. Read main, else the twin.

The store's manifest (``manifest.json``, ``manifest.bak.json``), the job's record (``job.json``,
``job.bak.json``) and a ``--replan`` under way (``replan.json``, ``replan.bak.json``) are kept so.
"""

from __future__ import annotations

from pathlib import Path


def twin_of(path: Path) -> Path:
    """``job.json`` → ``job.bak.json``."""
    return path.with_name(f"{path.stem}.bak{path.suffix}")


def read(drive, path: Path, usable, log=lambda _line: None, what: str = "record"):
    """The first of ``path`` and its twin that is JSON and that ``usable`` turns into something (not None); and the
    files that exist but could not be used. ``(None, [])`` when neither exists; DriveError when one cannot be read.
    """
    unusable = []
    for each in (path, twin_of(path)):
        try:
            doc = drive.read_json(each)
        except (ValueError, UnicodeDecodeError):
            log(f"{each.name} is cut or not JSON (a kill mid-write?); trying its twin")
            unusable.append(each)
            continue
        if doc is None:
            continue
        clean = usable(doc)
        if clean is not None:
            return clean, []
        log(f"{each.name} is not a {what}; trying its twin")
        unusable.append(each)
    return None, unusable


def write(drive, path: Path, doc, guard=None) -> None:
    """Main, then its twin, each read back."""
    for each in (path, twin_of(path)):
        drive.rewrite_json(each, doc, guard=guard)


def remove(drive, path: Path) -> None:
    """Main first, then the twin: until the twin is gone, the record still reads."""
    for each in (path, twin_of(path)):
        drive.remove(each)
