"""Google Drive as Colab mounts it: slow, lazily uploaded, and failing hours into a run.

Every write to Drive goes through ``Drive``: small files are written whole (temp file in the same
folder, fsync, replace, read back), big files are copied the same way and checked by size and
SHA-256. A write that fails with Errno 107 (``Transport endpoint is not connected``) or Errno 5
is retried with backoff after a forced remount; the last error's message is kept verbatim, since
DriveFS puts the reason (``QUOTA_EXCEEDED``) there.

Faults can be injected for tests with ``COLAB_SIDE_FAULTS``: comma-separated ``N:ERRNO`` pairs,
"fail the N-th Drive write of this process with ERRNO" (e.g. ``3:107,8:5``).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

COLAB_MOUNT = "/content/drive"
COLAB_MY_DRIVE = "/content/drive/MyDrive"
RETRYABLE = (errno.ENOTCONN, errno.EIO)
FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", 122))


class DriveError(OSError):
    """Drive kept failing after remounts and retries; ``full`` when it is out of space."""

    def __init__(self, message: str, full: bool = False):
        super().__init__(message)
        self.full = full


def sha256_file(path, block: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for data in iter(lambda: handle.read(block), b""):
            digest.update(data)
    return digest.hexdigest()


def mount_colab(force: bool = False) -> Path:
    """Mount Drive in Colab (asks for consent in the page) and return ``MyDrive``."""
    from google.colab import drive  # only exists inside Colab

    drive.mount(COLAB_MOUNT, force_remount=force)
    return Path(COLAB_MY_DRIVE)


def _fault_plan(text: str) -> dict[int, int]:
    plan = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        nth, _, code = item.partition(":")
        plan[int(nth)] = int(code)
    return plan


class Drive:
    """Resilient writes under one Drive root. ``remount`` is called before each retry."""

    def __init__(self, root, remount=None, retries: int = 5, backoff: float = 1.0, log=print, sleep=time.sleep):
        self.root = Path(root)
        self.remount = remount
        self.retries = retries
        self.backoff = backoff
        self.log = log
        self.sleep = sleep
        self.writes = 0
        self.faults = _fault_plan(os.environ.get("COLAB_SIDE_FAULTS", ""))

    def _attempt(self, what: str, action):
        for attempt in range(self.retries + 1):
            try:
                self.writes += 1
                if self.writes in self.faults:
                    code = self.faults[self.writes]
                    raise OSError(code, f"{os.strerror(code)} (injected)")
                return action()
            except OSError as exc:
                if exc.errno in FULL:
                    raise DriveError(f"Drive is full while writing {what}: {exc}", full=True) from None
                if exc.errno not in RETRYABLE or attempt == self.retries:
                    raise DriveError(f"Drive write of {what} failed: {exc}") from None
                delay = self.backoff * 2 ** attempt
                self.log(f"Drive error on {what}: {exc}; remounting and retrying in {delay:g} s")
                if self.remount:
                    try:
                        self.remount()
                    except Exception as remount_error:  # a failed remount is retried like the write
                        self.log(f"remount failed: {remount_error}")
                self.sleep(delay)

    def write_bytes(self, path, data: bytes) -> None:
        """Write a small file whole: temp in the same folder, fsync, replace, read back."""
        path = Path(path)

        def action():
            path.parent.mkdir(parents=True, exist_ok=True)
            temp = path.with_name(f".{path.name}.tmp")
            with open(temp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
            if path.read_bytes() != data:
                raise OSError(errno.EIO, f"{path.name} reads back different from what was written")

        self._attempt(path.name, action)

    def write_json(self, path, data) -> None:
        self.write_bytes(path, json.dumps(data, indent=1, sort_keys=True).encode())

    def append_line(self, path, line: str) -> None:
        path = Path(path)

        def action():
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(line.rstrip("\n") + "\n")

        self._attempt(path.name, action)

    def copy_file(self, source, dest) -> str:
        """Copy a (big) file to Drive via a temp name; return its SHA-256 once verified."""
        source, dest = Path(source), Path(dest)
        expected = sha256_file(source)

        def action():
            dest.parent.mkdir(parents=True, exist_ok=True)
            temp = dest.with_name(f".{dest.name}.tmp")
            shutil.copyfile(source, temp)
            with open(temp, "rb+") as handle:
                os.fsync(handle.fileno())
            if temp.stat().st_size != source.stat().st_size or sha256_file(temp) != expected:
                raise OSError(errno.EIO, f"copy of {source.name} does not match its source")
            os.replace(temp, dest)

        self._attempt(dest.name, action)
        return expected

    def remove(self, path) -> int:
        """Delete a file; return the bytes freed (0 if it was not there)."""
        path = Path(path)

        def action():
            try:
                size = path.stat().st_size
                path.unlink()
                return size
            except FileNotFoundError:
                return 0

        return self._attempt(path.name, action)

    def free_bytes(self) -> int | None:
        try:
            return shutil.disk_usage(self.root).free
        except OSError:
            return None
