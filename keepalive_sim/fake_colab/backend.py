"""The fake Colab backend behind the fake ``colab`` program: assignments, VMs, Drive, faults.

Everything lives under one root folder, so that every call of the short-lived fake CLI sees the
same "server": ``server.json`` (assignments and faults, under a file lock), ``vm<slot>/`` (a VM's ``/``;
its ``content/`` is ``/content``), and the local Drive folder the VMs mount. Every Colab VM has the same
``/content``: a new VM takes the lowest free slot, so the runtime that replaces a reclaimed one sees the
same paths (a job records its images folder by path). A VM's processes
carry ``FAKE_COLAB_VM=<endpoint>`` in their environment: reclaiming a VM kills every one of them,
including jobs that left its process group with ``start_new_session`` (Linux: found through /proc).

:class:`FakeColab` is the test's side: it installs the ``colab`` wrapper and injects faults.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import sys
from contextlib import contextmanager
from pathlib import Path

import filelock

ROOT_ENV = "FAKE_COLAB_ROOT"
VM_ENV = "FAKE_COLAB_VM"
VERSION = "0.7.5"


class Server:
    def __init__(self, root):
        self.root = Path(root)
        self.path = self.root / "server.json"
        self._lock = filelock.FileLock(str(self.root / "server.lock"))

    @contextmanager
    def state(self):
        """The server's state, read and written back under the lock."""
        with self._lock:
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                data = {}
            data.setdefault("assignments", {})
            data.setdefault("faults", {})
            yield data
            temp = self.path.with_name("server.json.tmp")
            temp.write_text(json.dumps(data, indent=1), encoding="utf-8")
            os.replace(temp, self.path)

    def read(self) -> dict:
        with self.state() as data:
            return json.loads(json.dumps(data))

    def take_fault(self, name: str) -> bool:
        """Use up one injected fault of this kind, if any is left."""
        with self.state() as data:
            left = data["faults"].get(name, 0)
            if left:
                data["faults"][name] = left - 1
            return bool(left)

    def record_call(self, command: str, with_session: bool) -> None:
        with self.state() as data:
            data["calls"] = data.get("calls", []) + [[command, with_session]]

    def record_cell(self, endpoint: str, source: str, started: float, ended: float) -> None:
        """When a VM's kernel was busy with a cell (wall clock), and what it ran."""
        with self.state() as data:
            data["cells"] = data.get("cells", []) + [[endpoint, source, started, ended]]

    def record_ask(self, accelerator: str) -> None:
        with self.state() as data:
            data["asked"] = data.get("asked", []) + [accelerator]

    def issue_token(self, endpoint: str) -> str:
        """The runtime's proxy token: opaque, like Colab's, so that only its place (a URL parameter, a header)
        tells it; the server hands it out again with its list of assignments."""
        token = secrets.token_urlsafe(24)
        with self.state() as data:
            data["tokens"] = data.get("tokens", []) + [token]
            data["assignments"][endpoint]["token"] = token
        return token

    def vm_root(self, endpoint: str) -> Path:
        return self.root / f"vm{self.read()['assignments'][endpoint]['slot']}"

    def allocate(self, accelerator: str) -> str:
        kind = f"gpu-{accelerator.lower()}" if accelerator != "NONE" else "cpu"
        endpoint = f"{kind}-s-{secrets.token_hex(4)}"
        with self.state() as data:
            taken = {info["slot"] for info in data["assignments"].values()}
            slot = min(set(range(len(taken) + 1)) - taken)
            data["assignments"][endpoint] = {"accelerator": accelerator, "slot": slot}
            data["allocated"] = data.get("allocated", []) + [accelerator]
        (self.root / f"vm{slot}" / "content").mkdir(parents=True)
        return endpoint

    def release(self, endpoint: str) -> bool:
        with self.state() as data:
            info = data["assignments"].pop(endpoint, None)
        kill_vm(endpoint)
        if info is None:
            return False
        root = self.root / f"vm{info['slot']}"
        drive = root / "content" / "drive" / "MyDrive"
        if drive.is_symlink():
            drive.unlink()  # the user's Drive outlives the VM
        shutil.rmtree(root, ignore_errors=True)
        return True


def vm_pids(endpoint: str) -> list[int]:
    marker = f"{VM_ENV}={endpoint}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def kill_vm(endpoint: str) -> None:
    for pid in vm_pids(endpoint):
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class FakeColab:
    """The test's handle on the fake: install it on PATH, look at it, break it."""

    def __init__(self, root, drive):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.server = Server(self.root)
        with self.server.state() as data:
            data["drive"] = str(Path(drive).resolve())

    def install(self, bin_dir) -> Path:
        """A ``colab`` program in ``bin_dir`` that runs this fake (put ``bin_dir`` first on PATH)."""
        bin_dir = Path(bin_dir)
        bin_dir.mkdir(parents=True, exist_ok=True)
        program = bin_dir / "colab"
        program.write_text(f"#!/bin/sh\n{ROOT_ENV}='{self.root}' exec '{sys.executable}' -m keepalive_sim.fake_colab "
                           '"$@"\n', encoding="utf-8")
        program.chmod(0o755)
        return program

    def fault(self, name: str, value) -> None:
        """How many calls fail: refuse_new (412), transport_errors (502 from the runtime), stop_errors (502 on
        unassign), download_errors (502, the proxy token in the message), sessions_omit (the server's list leaves
        our runtime out, and the CLI prunes its entry). On or off: login_expired, drive_consent."""
        with self.server.state() as data:
            data["faults"][name] = value

    def asks(self) -> list[str]:
        """The accelerator of every `colab new`, refused ones included ("NONE": a CPU runtime)."""
        return self.server.read().get("asked", [])

    def calls(self) -> list[tuple[str, bool]]:
        """Every command the fake was called with, and whether it was given ``-s NAME``."""
        return [tuple(call) for call in self.server.read().get("calls", [])]

    def cells(self) -> list[tuple[str, str, float, float]]:
        """(endpoint, file run, start, end) of every cell a kernel ran, wall clock."""
        return [tuple(cell) for cell in self.server.read().get("cells", [])]

    def assignments(self) -> dict:
        return self.server.read()["assignments"]

    def allocations(self) -> list[str]:
        """The accelerator of every runtime ever assigned, in order ("NONE": a CPU runtime)."""
        return self.server.read().get("allocated", [])

    def reclaim(self, endpoint: str) -> None:
        """Colab takes the VM back: its processes die, its disk is gone, the CLI is not told."""
        self.server.release(endpoint)

    def tokens(self) -> list[str]:
        """Every runtime-proxy token the fake handed out (a test looks for them where they must not be)."""
        return self.server.read().get("tokens", [])

    def content(self, endpoint: str) -> Path:
        return self.server.vm_root(endpoint) / "content"
