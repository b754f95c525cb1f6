"""Google Drive as Colab mounts it: slow, lazily uploaded, failing hours into a run, and billed for its Trash.

Every read and every write of the job's Drive files goes through ``Drive``. A call that fails with a
transient error (Errno 107 ``Transport endpoint is not connected``, Errno 5 without a quota message,
ETIMEDOUT, ESTALE, ENOENT from a racing replace) is retried with doubling back-off after a forced
remount. When the retries are spent the call raises ``DriveError`` (the session then ends
restartable); a full Drive raises it with ``full`` set (the session is blocked).

A FUSE call can also hang for ever, and with ephemeral credentials ``drive.mount`` waits for the
page's consent without a limit. So every call, the remount included, runs in a daemon thread of
its own (``run_with_limit``) and raises ``DriveError`` with ``timeout`` set when it passes its limit:
for streams (archives of many GB) the limit is on no progress (no block moved for that long), for
any other call on its whole time. The abandoned thread is never joined: the process can exit while
it is stuck in the kernel.

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
CALL_LIMIT_SECONDS = 120.0  # a Drive call that moves nothing for this long is hung (setting drive_call_limit_seconds)
AFTER_HANG_LIMIT_SECONDS = 10.0  # once a call hung, the mount is known to hang: the session's closing writes wait this
BLOCK = 1 << 20


class DriveError(OSError):
    """Drive kept failing after remounts and retries; ``full`` when it is out of space,
    ``timeout`` when a call or a remount did not come back in time."""

    def __init__(self, message: str, full: bool = False, timeout: bool = False):
        super().__init__(message)
        self.full = full
        self.timeout = timeout


def mount_colab(force: bool = False) -> Path:
    """Mount Drive in Colab (asks for consent in the page) and return ``MyDrive``."""
    from google.colab import drive  # only exists inside Colab

    drive.mount(COLAB_MOUNT, force_remount=force)
    return Path(COLAB_MY_DRIVE)


def _is_quota(exc: OSError) -> bool:
    return exc.errno in FULL or "QUOTA" in str(exc).upper()


class Progress:
    """How far one call is: a stream ticks it at every block moved. ``stall`` (a planned hang)
    makes the next tick wait until it is set."""

    def __init__(self):
        self._changed = threading.Condition()
        self._ticks = 0
        self._done = False
        self.stall: threading.Event | None = None

    def tick(self) -> None:
        if self.stall is not None:
            self.stall.wait()
        with self._changed:
            self._ticks += 1
            self._changed.notify_all()

    def finish(self) -> None:
        with self._changed:
            self._done = True
            self._changed.notify_all()

    def wait(self, limit: float) -> bool:
        """True once the call finished; False as soon as ``limit`` seconds pass without a tick."""
        with self._changed:
            while not self._done:
                seen = self._ticks
                if not self._changed.wait_for(lambda: self._done or self._ticks != seen, limit):
                    return False
            return True


def run_with_limit(action, limit: float, what: str, progress: Progress | None = None):
    """``action()`` in a daemon thread: its result, or its exception raised here; DriveError(timeout)
    when ``limit`` seconds pass without it ending (with ``progress``: without a tick). The thread
    left behind is never joined."""
    progress = progress or Progress()
    outcome = []

    def call():
        try:
            outcome.append((True, action()))
        except BaseException as exc:  # handed to the caller
            outcome.append((False, exc))
        finally:
            progress.finish()

    threading.Thread(target=call, name=f"drive-call {what}", daemon=True).start()
    if not progress.wait(limit):
        raise DriveError(f"{what} did not come back within {limit:g} s", timeout=True)
    done, value = outcome[0]
    if done:
        return value
    raise value


HANG = 0  # the code of a fault that makes the call hang instead of failing


@dataclass
class Fault:
    """Fail the ``start``-th call of ``kind`` ("read", "write" or "any") on a file whose name holds
    ``name``; with ``seconds``, every such call from then on fails for that long (an outage).
    With ``code`` HANG the call hangs until the plan is released: a stream after its first block
    (mid-stream), any other call at once."""

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
        self.released = threading.Event()  # set it to let hung calls go on (a test's clean-up)
        self._lock = threading.Lock()

    @classmethod
    def parse(cls, text: str) -> "FaultPlan":
        """Comma-separated ``[r|w]N[+S]:ERRNO[@NAME]``: fail the N-th read, write or any call (on a
        file whose name holds NAME); with ``+S``, start an outage of S seconds there. ERRNO ``hang``
        makes that call hang instead (for ever, in a process that sets no ``released``).
        E.g. ``3:107,r2:5,w3+5:107@manifest,w2:hang@.tar``."""
        faults = []
        for item in filter(None, (part.strip() for part in text.split(","))):
            kind = {"r": "read", "w": "write"}.get(item[0], "any")
            item, _, name = item.lstrip("rw").partition("@")
            where, _, code = item.partition(":")
            start, _, seconds = where.partition("+")
            code = HANG if code.strip() == "hang" else int(code)
            faults.append(Fault(int(start), code, kind, float(seconds or 0), name))
        return cls(faults)

    def check(self, kind: str, what: str = "") -> bool:
        """Count one call of ``kind`` on ``what`` and raise the OSError planned for it, if any;
        True when the call is to hang."""
        with self._lock:
            self.calls["any"] += 1
            self.calls[kind] += 1
            now = self.clock()
            codes = [fault.code for fault in self.faults if fault.hits(kind, what, now)]
        if codes and codes[0] != HANG:
            raise OSError(codes[0], f"{os.strerror(codes[0])} (injected)")
        return bool(codes)


class _HashingWriter:
    """A write-only file object that hashes and counts what passes through it, and ticks ``tick``."""

    def __init__(self, handle, tick=lambda: None):
        self.handle = handle
        self.tick = tick
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:
        self.handle.write(data)
        self.digest.update(data)
        self.size += len(data)
        self.tick()
        return len(data)

    def flush(self) -> None:
        self.handle.flush()


class _TickingReader:
    """A read-only file object that ticks ``tick`` at every block read (a whole read goes by blocks)."""

    def __init__(self, handle, tick):
        self.handle = handle
        self.tick = tick

    def read(self, size: int = -1) -> bytes:
        if size is not None and size >= 0:
            data = self.handle.read(size)
            self.tick()
            return data
        return b"".join(iter(lambda: self.read(BLOCK), b""))


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
    """Resilient reads and writes under one Drive root. ``remount`` is called before each retry;
    ``call_limit`` is how long a call may go without progress, ``remount_limit`` how long a remount may take;
    after a call or a remount hung, every later call gets at most ``after_hang_limit`` (the session is ending:
    its closing writes should not each wait out the full limit on a mount that hangs) until one call succeeds."""

    def __init__(self, root, remount=None, retries: int = 5, backoff: float = 1.0, log=print, sleep=time.sleep,
                 faults: FaultPlan | None = None, remount_limit: float = REMOUNT_LIMIT_SECONDS,
                 call_limit: float = CALL_LIMIT_SECONDS, after_hang_limit: float = AFTER_HANG_LIMIT_SECONDS):
        self.root = Path(root)
        self.remount = remount
        self.retries = retries
        self.backoff = backoff
        self.log = log
        self.sleep = sleep
        self.remount_limit = remount_limit
        self.call_limit = call_limit
        self.after_hang_limit = after_hang_limit
        self.hung = False  # a call or a remount passed its limit
        self.faults = faults if faults is not None else FaultPlan.parse(os.environ.get("COLAB_SIDE_FAULTS", ""))
        self._remount_lock = threading.Lock()
        self._remounts = 0

    # --- retrying ---------------------------------------------------------------------------------

    def _attempt(self, what: str, action, kind: str = "write", stream: bool = False, guard=None):
        """``action()`` (a stream's ``action(tick)``) within ``call_limit``, retried after transient errors;
        ``guard()`` (the lease check) runs right before every attempt and raises to stop it."""
        verb = "read" if kind == "read" else "write"
        for attempt in range(self.retries + 1):
            progress = Progress()

            def call():
                if self.faults.check(kind, what):  # a planned hang: a stream's after its first block
                    progress.stall = self.faults.released
                    if not stream:
                        self.faults.released.wait()
                return action(progress.tick) if stream else action()

            try:
                if guard is not None:
                    guard()
                return self._within(call, self._limit, f"Drive {verb} of {what}", progress)
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

    @property
    def _limit(self) -> float:
        return min(self.call_limit, self.after_hang_limit) if self.hung else self.call_limit

    def _within(self, action, limit: float, what: str, progress: Progress | None = None):
        """``run_with_limit``, remembering a call that passed its limit (later calls then get the short one)."""
        try:
            outcome = run_with_limit(action, limit, what, progress)
        except DriveError as exc:
            self.hung = self.hung or exc.timeout
            raise
        self.hung = False  # the mount answers again: the mark decays, later calls get the full limit
        return outcome

    def _remount(self) -> None:
        """Call ``remount`` in a thread with a time limit; DriveError(timeout) if it does not return.

        One remount at a time: a thread whose call failed while another thread was remounting uses
        that remount instead of starting its own (the heartbeat and the job share the mount).
        """
        if not self.remount:
            return
        seen = self._remounts
        if not self._remount_lock.acquire(timeout=self.remount_limit):
            self.hung = True
            raise DriveError(f"Drive remount did not come back within {self.remount_limit:g} s", timeout=True)
        try:
            if self._remounts == seen:
                self._remount_now()
                self._remounts += 1
        finally:
            self._remount_lock.release()

    def _remount_now(self) -> None:
        try:
            self._within(self.remount, self.remount_limit, "Drive remount (it may be waiting for consent in the page)")
        except DriveError:
            raise
        except Exception as exc:  # a failed remount is retried like the call it serves
            self.log(f"remount failed: {exc}")

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

        def action(tick):
            try:
                handle = open(path, "rb")
            except FileNotFoundError:
                self._confirm_missing(path)
                return None
            with handle:
                return (consume(_TickingReader(handle, tick)),)

        result = self._attempt(path.name, action, kind="read", stream=True)
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

    def rewrite_bytes(self, path, data: bytes, guard=None) -> None:
        """Rewrite a file that is rewritten often, in place (no Trash copy per rewrite), and read it back;
        ``guard`` runs right before every attempt (see ``_attempt``).

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

        self._attempt(path.name, action, guard=guard)

    def rewrite_json(self, path, data, guard=None) -> None:
        self.rewrite_bytes(path, _json(data), guard)

    def write_at(self, path, offset: int, data: bytes) -> bool:
        """Write ``data`` at ``offset`` of an existing file, cutting what follows, and read it back; False (nothing
        written) when the file is missing or shorter than ``offset``. Written again after a fault, it is the same."""
        path = Path(path)

        def action():
            try:
                handle = open(path, "r+b")
            except FileNotFoundError:
                return False
            with handle:
                if handle.seek(0, os.SEEK_END) < offset:
                    return False
                handle.seek(offset)
                handle.write(data)
                handle.truncate()
                handle.flush()
                os.fsync(handle.fileno())
            with open(path, "rb") as check:
                check.seek(offset)
                if check.read() != data:
                    raise OSError(errno.EIO, f"{path.name} reads back different from what was written")
            return True

        return self._attempt(path.name, action)

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

        def action(tick):
            dest.parent.mkdir(parents=True, exist_ok=True)
            with open(dest, "wb") as handle:
                writer = _HashingWriter(handle, tick)
                produce(writer)
                handle.flush()
                os.fsync(handle.fileno())
            expected = writer.digest.hexdigest()
            with open(dest, "rb") as handle:
                same = dest.stat().st_size == writer.size and _digest_of(_TickingReader(handle, tick)) == expected
            if not same:
                raise OSError(errno.EIO, f"{dest.name} reads back different from what was written")
            return writer.size, expected

        return self._attempt(dest.name, action, stream=True)

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
        tree = self._attempt(folder.name, lambda: list(os.walk(folder, topdown=False)) if folder.is_dir() else None,
                             kind="read")
        if tree is None:
            return 0
        for root, dirs, files in tree:
            for name in files:
                freed += self.remove(Path(root) / name)
            for name in dirs:
                self._attempt(name, lambda d=Path(root) / name: _rmdir(d))
        self._attempt(folder.name, lambda: _rmdir(folder))
        return freed

    def call(self, what: str, action, kind: str = "read"):
        """Any other access to files on Drive (a listing, a stat): ``action()`` with the time limit and
        the retries of every call; what it raises other than an OSError passes through."""
        return self._attempt(what, action, kind)

    def find(self, folder, pattern: str) -> list[Path]:
        """The files below ``folder`` that match ``pattern`` (as ``Path.rglob``), sorted."""
        folder = Path(folder)
        return self._attempt(folder.name, lambda: sorted(folder.rglob(pattern)), kind="read")

    def free_bytes(self) -> int | None:
        """What Drive itself reports as free under the mount (Trash included in what is used); None if
        it does not say, DriveError(timeout) if it does not answer."""

        def free():
            try:
                return shutil.disk_usage(self.root).free
            except OSError:
                return None

        return self._within(free, self._limit, "Drive free space")


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
