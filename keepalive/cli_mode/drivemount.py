"""``colab drivemount`` under a pseudo-terminal.

The CLI reads its "Press Enter after you have granted access..." from ``/dev/tty``; without a
terminal it would go on at once, before anyone granted anything. So it runs with a pty as its
controlling terminal. When it prints "Please visit:" and a consent URL, the human is told once
(``on_consent``) and Enter is pressed after ``consent_wait`` seconds; whatever it prints, the mount is
confirmed on the VM afterwards, never trusted from the exit code.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from dataclasses import dataclass

from keepalive.cli_mode.runner import stop_group

# Makes the pty (its stdin) the controlling terminal, then becomes the CLI: no preexec_fn in a threaded daemon.
_SHIM = "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); os.execvp(sys.argv[1], sys.argv[1:])"


@dataclass(frozen=True)
class MountAnswer:
    text: str
    consent_url: str | None
    code: int | None  # None: ended by our time limit


def consent_url(text: str, phrase: str = "Please visit:") -> str | None:
    """Pure: the consent URL the CLI asks the human to open, if it printed one."""
    match = re.search(re.escape(phrase) + r"\s*(https://[^\s\"'<>]+)\s", text)
    return match.group(1) if match else None


def drivemount(program: str, session: str, env: dict, timeout: float, consent_wait: float, on_consent,
               answers: dict, clock=time.monotonic) -> MountAnswer:
    said = answers["answers"]
    master, slave = os.openpty()
    proc = subprocess.Popen([sys.executable, "-c", _SHIM, program, "drivemount", "-s", session],
                            stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True, close_fds=True)
    os.close(slave)
    text, url, enter_at, prompted = "", None, None, False
    deadline = clock() + timeout
    try:
        while clock() < deadline:
            if enter_at is not None and clock() >= enter_at:
                os.write(master, b"\n")
                enter_at = None
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the CLI closed its terminal
                    chunk = b""
                if not chunk:
                    break
                text += chunk.decode("utf-8", "replace")
                if url is None and consent_url(text, said["drive_consent"]):
                    url = consent_url(text, said["drive_consent"])
                    on_consent(url)
                if not prompted and said["drive_press_enter"] in text:
                    prompted = True
                    enter_at = clock() + (consent_wait if url else 0.0)
            elif proc.poll() is not None:
                break
        else:
            stop_group(proc)
            proc.wait()
            return MountAnswer(text, url, None)
        return MountAnswer(text, url, proc.wait())
    finally:
        if proc.poll() is None:
            stop_group(proc)
            proc.wait()
        os.close(master)

