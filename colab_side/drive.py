"""Google Drive as Colab mounts it: slow, lazily uploaded, failing hours into a run, and billed for its Trash.

Every read and every write of the job's Drive files goes through ``Drive``. A call that fails with a
transient error (Errno 107 ``Transport endpoint is not connected``, Errno 5 without a quota message,
ETIMEDOUT, ESTALE, ENOENT from a racing replace) is retried with doubling back-off after a forced
remount; the remount itself has a time limit, since with ephemeral credentials ``drive.mount`` waits
for the page's consent without one. When the retries are spent the call raises ``DriveError`` (the
session then ends restartable); a full Drive raises it with ``full`` set (the session is blocked).

Reads tell "missing" (``None``: the file is not there and its folder can be listed) from
"unreadable" (``DriveError``). Deleting or overwriting a file through the mount puts it in Drive's
Trash, which counts against the quota for 30 days, so a file is truncated to zero before it is
removed, and files rewritten often (heartbeat, manifest, lease, session log) are rewritten in place.
Archives are streamed to Drive and hashed while written, never staged whole on local disk.

Faults are injected for tests by a ``FaultPlan`` (or ``COLAB_SIDE_FAULTS``, see ``FaultPlan.parse``).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

COLAB_MOUNT = "/content/drive"
COLAB_MY_DRIVE = "/content/drive/MyDrive"
RETRYABLE = (errno.ENOTCONN, errno.EIO, errno.ETIMEDOUT, errno.ESTALE, errno.ENOENT)
FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", 122))
REMOUNT_LIMIT_SECONDS = 150.0  # drive.mount itself gives up after about 2 min on current builds (colabtools #5028)
BLOCK = 1 << 20


class DriveError(OSError):
    """Drive kept failing after remounts and retries; ``full`` when it is out of space,
    ``timeout`` when a remount did not come back in time."""

    def __init__(self, message: str, full: bool = False, timeout: bool = False):
        super().__init__(message)
        self.full = full
        self.timeout = timeout


def sha256_file(path, block: int = BLOCK) -> str:
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


def _is_quota(exc: OSError) -> bool:
    return exc.errno in FULL or "QUOTA" in str(exc).upper()


@dataclass
class Fault:
    """Fail the ``start``-th call of ``kind`` ("read", "write" or "any") on a file whose name holds
    ``name``; with ``seconds``, every such call from then on fails for that long (an outage)."""

    start: int
    code: int = errno.ENOTCONN
    kind: str = "any"
    seconds: float = 0.0
    name: str = ""
    seen: int = 0
    began: float | None = None

    def hits(self, kind: str, what: str, now: float) -> bool:
        if self.kind not in ("any", kind) or self.name not in what:
            return False
        self.seen += 1
        if not self.seconds:
            return self.seen == self.start
        if self.began is None and self.seen >= self.start:
            self.began = now
        return self.began is not None and now - self.began < self.seconds


class FaultPlan:
    """Drive faults for tests. Outages last by ``clock``: a test passes a fake clock that the
    Drive's back-off sleeps advance, so an outage of minutes takes no time."""

    def __init__(self, faults=(), clock=time.monotonic):
        self.faults = list(faults)
        self.clock = clock
        self.calls = {"any": 0, "read": 0, "write": 0}
        self._lock = threading.Lock()

    @classmethod
    def parse(cls, text: str) -> "FaultPlan":
        """Comma-separated ``[r|w]N[+S]:ERRNO[@NAME]``: fail the N-th read, write or any call (on a
        file whose name holds NAME); with ``+S``, start an outage of S seconds there.
        E.g. ``3:107,r2:5,w3+5:107@manifest``."""
        faults = []
        for item in filter(None, (part.strip() for part in text.split(","))):
            kind = {"r": "read", "w": "write"}.get(item[0], "any")
            item, _, name = item.lstrip("rw").partition("@")
            where, _, code = item.partition(":")
            start, _, seconds = where.partition("+")
            faults.append(Fault(int(start), int(code), kind, float(seconds or 0), name))
        return cls(faults)

    def check(self, kind: str, what: str = "") -> None:
        """Count one call of ``kind`` on ``what`` and raise the OSError planned for it, if any."""
        with self._lock:
            self.calls["any"] += 1
            self.calls[kind] += 1
            now = self.clock()
            codes = [fault.code for fault in self.faults if fault.hits(kind, what, now)]
        if codes:
            raise OSError(codes[0], f"{os.strerror(codes[0])} (injected)")


class _HashingWriter:
    """A write-only file object that hashes and counts what passes through it."""

    def __init__(self, handle):
        self.handle = handle
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:
        self.handle.write(data)
        self.digest.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self.handle.flush()


class HashingReader:
    """A read-only file object that hashes and counts what is read through it."""

    def __init__(self, handle):
        self.handle = handle
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.digest.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(BLOCK):
            pass


class Drive:
    """Resilient reads and writes under one Drive root. ``remount`` is called before each retry."""

    def __init__(self, root, remount=None, retries: int = 5, backoff: float = 1.0, log=print, sleep=time.sleep,
                 faults: FaultPlan | None = None, remount_limit: float = REMOUNT_LIMIT_SECONDS):
        self.root = Path(root)
        self.remount = remount
        self.retries = retries
        self.backoff = backoff
        self.log = log
        self.sleep = sleep
        self.remount_limit = remount_limit
        self.faults = faults if faults is not None else FaultPlan.parse(os.environ.get("COLAB_SIDE_FAULTS", ""))
        self._remount_lock = threading.Lock()
        self._remounts = 0

    # --- retrying ---------------------------------------------------------------------------------

    def _attempt(self, what: str, action, kind: str = "write"):
        verb = "read" if kind == "read" else "write"
        for attempt in range(self.retries + 1):
            try:
                self.faults.check(kind, what)
                return action()
            except DriveError:
                raise
            except OSError as exc:
                if _is_quota(exc):
                    raise DriveError(f"Drive is full while writing {what}: {exc}", full=True) from None
                if exc.errno not in RETRYABLE:
                    raise DriveError(f"Drive {verb} of {what} failed: {exc}") from None
                if attempt == self.retries:
                    raise DriveError(f"Drive {verb} of {what} failed {attempt + 1} times: {exc}") from None
                delay = self.backoff * 2 ** attempt
                self.log(f"Drive error on {what}: {exc}; remounting and retrying in {delay:g} s")
                self._remount()
                self.sleep(delay)

    def _remount(self) -> None:
        """Call ``remount`` in a thread with a time limit; DriveError(timeout) if it does not return.

        One remount at a time: a thread whose call failed while another thread was remounting uses
        that remount instead of starting its own (the heartbeat and the job share the mount).
        """
        if not self.remount:
            return
        seen = self._remounts
        if not self._remount_lock.acquire(timeout=self.remount_limit):
            raise DriveError(f"Drive remount did not come back within {self.remount_limit:g} s", timeout=True)
        try:
            if self._remounts == seen:
                self._remount_now()
                self._remounts += 1
        finally:
            self._remount_lock.release()

    def _remount_now(self) -> None:
        failure = []

        def call():
            try:
                self.remount()
            except Exception as exc:  # a failed remount is retried like the call it serves
                failure.append(exc)

        worker = threading.Thread(target=call, name="drive-remount", daemon=True)
        worker.start()
        worker.join(self.remount_limit)
        if worker.is_alive():
            raise DriveError(f"Drive remount did not come back within {self.remount_limit:g} s "
                             "(it may be waiting for consent in the page)", timeout=True)
        if failure:
            self.log(f"remount failed: {failure[0]}")

    # --- reading ----------------------------------------------------------------------------------

    def _confirm_missing(self, path: Path) -> None:
        """Return if ``path`` is really absent (its nearest existing folder lists without it);
        raise the OSError that says the mount is not answering otherwise."""
        if os.path.lexists(path):
            raise OSError(errno.ENOENT, f"{path.name} vanished and came back (a racing replace)")
        folder = path.parent
        while not os.path.isdir(folder) and folder != folder.parent:
            folder = folder.parent
        os.listdir(folder)

    def read_stream(self, path, consume):
        """Open ``path`` for reading and return ``consume(handle)``; None when the file is missing.

        ``consume`` is called again from the start after a transient error.
        """
        path = Path(path)

        def action():
            try:
                handle = open(path, "rb")
            except FileNotFoundError:
                self._confirm_missing(path)
                return None
            with handle:
                return (consume(handle),)

        result = self._attempt(path.name, action, kind="read")
        return None if result is None else result[0]

    def read_bytes(self, path) -> bytes | None:
        """The whole file, or None when it is missing; DriveError when it cannot be read."""
        return self.read_stream(path, lambda handle: handle.read())

    def read_json(self, path):
        """The parsed file, None when missing; ValueError when it is not JSON (cut by a kill)."""
        data = self.read_bytes(path)
        return None if data is None else json.loads(data.decode("utf-8"))

    def sha256(self, path) -> str | None:
        return self.read_stream(path, lambda handle: _digest_of(handle))

    def listdir(self, folder) -> list[str]:
        """Names in ``folder``; [] when it is missing."""
        folder = Path(folder)
        return self._attempt(folder.name, lambda: sorted(os.listdir(folder)) if folder.is_dir() else [], kind="read")

    # --- writing ----------------------------------------------------------------------------------

    def write_bytes(self, path, data: bytes) -> None:
        """Write a file that is written once: temp in the same folder, fsync, replace, read back."""
        path = Path(path)

        def action():
            path.parent.mkdir(parents=True, exist_ok=True)
            temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
            try:
                with open(temp, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                _truncate(path)
                os.replace(temp, path)
            finally:
                _truncate_and_unlink(temp)
            _read_back(path, data)

        self._attempt(path.name, action)

    def write_json(self, path, data) -> None:
        self.write_bytes(path, _json(data))

    def rewrite_bytes(self, path, data: bytes) -> None:
        """Rewrite a file that is rewritten often, in place (no Trash copy per rewrite), and read it back.

        A kill mid-write can leave it cut: callers keep a twin or read it forgivingly.
        """
        path = Path(path)

        def action():
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "r+b" if path.exists() else "wb") as handle:
                handle.write(data)
                handle.truncate()
                handle.flush()
                os.fsync(handle.fileno())
            _read_back(path, data)

        self._attempt(path.name, action)

    def rewrite_json(self, path, data) -> None:
        self.rewrite_bytes(path, _json(data))

    def append_line(self, path, line: str) -> None:
        path = Path(path)

        def action():
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(line.rstrip("\n") + "\n")

        self._attempt(path.name, action)

    def write_stream(self, dest, produce) -> tuple[int, str]:
        """Write ``dest`` in place from ``produce(writer)``, hashing while writing; verify it by
        reading it back; return (size, SHA-256). ``produce`` runs again from the start after a fault."""
        dest = Path(dest)

        def action():
            dest.parent.mkdir(parents=True, exist_ok=True)
            with open(dest, "wb") as handle:
                writer = _HashingWriter(handle)
                produce(writer)
                handle.flush()
                os.fsync(handle.fileno())
            expected = writer.digest.hexdigest()
            if dest.stat().st_size != writer.size or sha256_file(dest) != expected:
                raise OSError(errno.EIO, f"{dest.name} reads back different from what was written")
            return writer.size, expected

        return self._attempt(dest.name, action)

    def copy_file(self, source, dest) -> str:
        """Copy a local file to Drive (streamed, verified); return its SHA-256."""
        source = Path(source)

        def produce(writer):
            with open(source, "rb") as handle:
                for data in iter(lambda: handle.read(BLOCK), b""):
                    writer.write(data)

        return self.write_stream(dest, produce)[1]

    def rename(self, source, dest) -> None:
        """Give a file another name in the same folder (nothing goes to the Trash)."""
        self._attempt(Path(source).name, lambda: os.replace(source, dest))

    def remove(self, path) -> int:
        """Truncate to zero, then delete (the Trash keeps nothing large); return the bytes it held."""
        path = Path(path)

        def action():
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                return 0
            _truncate_and_unlink(path)
            return size

        return self._attempt(path.name, action)

    def remove_tree(self, folder) -> int:
        """Remove every file below ``folder`` as ``remove`` does, then the folders; return bytes."""
        folder = Path(folder)
        freed = 0
        if not folder.is_dir():
            return 0
        for root, dirs, files in os.walk(folder, topdown=False):
            for name in files:
                freed += self.remove(Path(root) / name)
            for name in dirs:
                self._attempt(name, lambda d=Path(root) / name: _rmdir(d))
        self._attempt(folder.name, lambda: _rmdir(folder))
        return freed

    def free_bytes(self) -> int | None:
        """What Drive itself reports as free under the mount (Trash included in what is used)."""
        try:
            return shutil.disk_usage(self.root).free
        except OSError:
            return None


def _json(data) -> bytes:
    return json.dumps(data, indent=1, sort_keys=True).encode()


def _digest_of(handle) -> str:
    reader = HashingReader(handle)
    reader.drain()
    return reader.digest.hexdigest()


def _read_back(path: Path, data: bytes) -> None:
    if path.read_bytes() != data:
        raise OSError(errno.EIO, f"{path.name} reads back different from what was written")


def _truncate(path: Path) -> None:
    try:
        os.truncate(path, 0)
    except FileNotFoundError:
        pass


def _truncate_and_unlink(path: Path) -> None:
    try:
        os.truncate(path, 0)
        os.unlink(path)
    except FileNotFoundError:
        pass


def _rmdir(folder: Path) -> None:
    try:
        os.rmdir(folder)
    except FileNotFoundError:
        pass
