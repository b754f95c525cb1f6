"""What engines keep once per Drive in its install folder (Meshroom's release, pycolmap's wheel, COLMAP's
vocabulary tree), checked by SHA-256 before every use.

A file downloaded once has its SHA-256 recorded beside it (``<name>.sha256``); a copy that does not match (a
download cut short, a Drive fault) is moved aside (``<name>.corrupt-<time>``), never used, and fetched again.
"""

from __future__ import annotations

import time
from pathlib import Path

from colab_side.drive import Drive


def _record_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def verified(drive: Drive, path: Path) -> bool:
    """Whether ``path`` is on Drive with the SHA-256 recorded beside it."""
    record = drive.read_bytes(_record_path(path))
    words = record.decode("ascii", "replace").split() if record else []
    return bool(words) and drive.sha256(path) == words[0]


def record(drive: Drive, path: Path, digest: str) -> None:
    """Write ``path``'s SHA-256 beside it, as ``sha256sum`` does."""
    drive.write_bytes(_record_path(path), f"{digest}  {path.name}\n".encode())


def set_aside(drive: Drive, path: Path, log=print, expected: str = "its recorded SHA-256") -> None:
    """Move a copy that does not match ``expected`` aside, kept under another name, and say so."""
    aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d%H%M%S')}")
    log(f"{path.name} on Drive does not match {expected}; moved aside as {aside.name}")
    drive.rename(path, aside)
