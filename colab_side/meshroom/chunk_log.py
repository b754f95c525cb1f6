"""What a silent chunk is doing: how long it has run, and the last line of its own log file.

Real ``meshroom_compute`` prints two lines when a chunk starts (`` - commandLine: ...``,
`` - logFile: ...``) and then nothing until the chunk ends, hours later: the AliceVision program's
output goes to the chunk's log file in the node folder (``CommandLineNode.processChunk`` in
``meshroom/core/desc.py``, v2019.2.0 and v2023.3.0). So the heartbeat's ``last_log_line`` and the
long-chunk warning (``policy.long_chunk_warning``) are driven by a clock and by that file, never by stdout lines.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from colab_side.meshroom.graph import Node


def log_file(node: Node, cache, chunk: int) -> Path:
    """``log`` beside ``status`` (nodes without blocks) or ``N.log`` beside ``N.status``."""
    status = node.status_file(cache, chunk)
    return status.with_name(status.name.replace("status", "log"))


def last_line(tail: bytes) -> str | None:
    """The last non-blank line of a log's tail (progress bars rewrite with ``\\r``: the latest state wins)."""
    for line in reversed(tail.decode("utf-8", errors="replace").replace("\r", "\n").splitlines()):
        if line.strip():
            return line.strip()[:200]
    return None


def read_tail(path, since: float | None = None, size: int = 8192) -> bytes:
    """The last ``size`` bytes of ``path``; nothing when it is missing or was last written before ``since``
    (a log left by an earlier session is not this chunk's)."""
    try:
        with open(path, "rb") as handle:
            stat = Path(path).stat()
            if since is not None and stat.st_mtime < since:
                return b""
            handle.seek(max(0, stat.st_size - size))
            return handle.read(size)
    except OSError:
        return b""


class ChunkWatch:
    """While a chunk runs, call ``on_tick(elapsed_seconds, last_log_line_or_None)`` every ``every`` seconds.

    Used as a context manager around the compute command; one last tick is given on exit.
    """

    def __init__(self, path, every: float, on_tick, clock=time.monotonic, wall=time.time):
        self.path, self.every, self.on_tick, self.clock = Path(path), every, on_tick, clock
        self._started = clock()
        self._since = wall() - 1.0  # file systems keep coarse mtimes
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="chunk-watch", daemon=True)

    def tick(self) -> None:
        self.on_tick(self.clock() - self._started, last_line(read_tail(self.path, self._since)))

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.tick()

    def __enter__(self) -> ChunkWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.tick()
