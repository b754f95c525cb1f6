"""A chunk that is silent on stdout (as real meshroom_compute is) is watched through its log file and the clock.

The long-chunk warning itself is a pure decision (``policy.long_chunk_warning``, tests/test_policy.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

from colab_side.meshroom import chunk_log
from colab_side.meshroom.graph import Node
from conftest import wait_for
from jobkit import Job


def test_the_log_file_sits_beside_the_status_file():
    plain = Node("Meshing_1", "Meshing", "abc", block_size=0, size=1, split=0)
    chunked = Node("DepthMap_1", "DepthMap", "def", block_size=3, size=7, split=0)
    assert chunk_log.log_file(plain, "/c", 0).as_posix() == "/c/Meshing/abc/log"
    assert chunk_log.log_file(chunked, "/c", 2).as_posix() == "/c/DepthMap/def/2.log"


def test_the_last_line_is_the_latest_non_blank_one():
    assert chunk_log.last_line(b"start\nstep 2/9\n\n  \n") == "step 2/9"
    assert chunk_log.last_line(b"progress 10%\rprogress 20%\rprogress 30%") == "progress 30%"
    assert chunk_log.last_line(b"\xff\xfe broken utf-8 \n") is not None
    assert chunk_log.last_line(b"") is None and chunk_log.last_line(b"\n\n") is None
    assert len(chunk_log.last_line(b"x" * 1000)) == 200


def test_an_old_log_or_a_missing_one_says_nothing(tmp_path):
    log = tmp_path / "0.log"
    assert chunk_log.read_tail(log) == b""
    log.write_bytes(b"a line from an earlier session\n")
    os.utime(log, (1_000_000, 1_000_000))
    assert chunk_log.read_tail(log, since=2_000_000) == b""
    assert chunk_log.read_tail(log, since=None) == b"a line from an earlier session\n"
    log.write_bytes(b"0123456789")
    assert chunk_log.read_tail(log, size=4) == b"6789"


def test_a_program_silent_on_stdout_is_seen_through_its_log(tmp_path):
    log = tmp_path / "0.log"
    go = tmp_path / "go"
    program = ("import pathlib, sys, time\n"
               "log, go = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])\n"
               "log.write_text('estimating depth: view 3 of 40\\n')\n"
               "while not go.exists(): time.sleep(0.01)\n")
    ticks = []
    seen = threading.Event()

    def on_tick(elapsed, line):
        ticks.append((elapsed, line))
        if line:
            seen.set()

    with chunk_log.ChunkWatch(log, 0.05, on_tick):
        proc = subprocess.Popen([sys.executable, "-c", program, str(log), str(go)], stdout=subprocess.PIPE)
        assert seen.wait(60), ticks
        go.touch()
        assert proc.communicate(timeout=60)[0] == b""  # nothing ever came on stdout
    assert ("estimating depth: view 3 of 40" in {line for _, line in ticks})
    assert [e for e, _ in ticks] == sorted(e for e, _ in ticks)


def test_elapsed_time_comes_from_the_clock_even_when_nothing_is_written(tmp_path):
    now = [100.0]
    ticks = []
    watch = chunk_log.ChunkWatch(tmp_path / "0.log", 3600, lambda elapsed, line: ticks.append((elapsed, line)),
                                 clock=lambda: now[0])
    now[0] = 100.0 + 9 * 3600
    with watch:
        pass
    assert ticks == [(9 * 3600, None)]


def test_a_session_reports_a_silent_chunks_own_log_line(tmp_path):
    """The stand-in writes each chunk's log and prints only between chunks, as meshroom_compute does."""
    job = Job(tmp_path, images=3, chunk_seconds=3.0, heartbeat_seconds=0.1)
    proc = subprocess.Popen(job.command(), env=job.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    beats = []

    def shows_the_log_line():
        try:
            beat = json.loads((job.job_dir / "heartbeat.json").read_text())
        except (OSError, ValueError):
            return False
        beats.append(beat)
        return (beat.get("last_log_line") or "").startswith(f"[{beat.get('node')}] chunk ")  # never printed on stdout

    try:
        assert wait_for(shows_the_log_line, timeout=120), (
            {k: beats[-1].get(k) for k in ("phase", "reason", "node", "last_log_line")} if beats else "no heartbeat")
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()
