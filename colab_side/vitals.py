"""The runtime's vital signs for the heartbeat, read with the standard library only: RAM used and total
(``/proc/meminfo``: MemTotal minus MemAvailable), this process's resident memory (``/proc/self/status`` VmRSS),
the VM's uptime (``/proc/uptime``), and the GPU's memory and utilisation where ``nvidia-smi`` answers within its
time limit. Whatever cannot be read is left out (None): a sign missing is never an error."""

from __future__ import annotations

import subprocess
from pathlib import Path

NVIDIA_SMI = ["nvidia-smi", "--query-gpu=memory.used,memory.total,utilization.gpu", "--format=csv,noheader,nounits"]
NVIDIA_SMI_SECONDS = 5.0
MIB = 1 << 20
KIB = 1 << 10


def read(proc=Path("/proc"), run=subprocess.run) -> dict:
    """The heartbeat's vital-sign fields, each an int (bytes, seconds) or a fraction, or None when unknown."""
    rss = _kib_field(_text(proc / "self" / "status"), "VmRSS")
    return {**memory(_text(proc / "meminfo")), "process_rss_bytes": rss, "uptime_seconds": uptime(_text(proc / "uptime")),
            **gpu(run)}


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""


def _kib_field(text: str, name: str) -> int | None:
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            number = value.split()[0] if value.split() else ""
            return int(number) * KIB if number.isdecimal() else None
    return None


def memory(meminfo: str) -> dict:
    total, available = _kib_field(meminfo, "MemTotal"), _kib_field(meminfo, "MemAvailable")
    used = total - available if total is not None and available is not None and available <= total else None
    return {"ram_used_bytes": used, "ram_total_bytes": total}


def uptime(text: str) -> int | None:
    try:
        return int(float(text.split()[0]))
    except (IndexError, ValueError):
        return None


def gpu(run=subprocess.run) -> dict:
    """The first GPU's memory used and total (bytes) and utilisation (0..1); None each where nvidia-smi does not
    answer (no GPU, no driver, hung past its limit) or says something else."""
    unknown = {"gpu_memory_used_bytes": None, "gpu_memory_total_bytes": None, "gpu_utilization": None}
    try:
        answer = run(NVIDIA_SMI, capture_output=True, text=True, timeout=NVIDIA_SMI_SECONDS, check=False)
    except (OSError, subprocess.SubprocessError):
        return unknown
    lines = answer.stdout.splitlines() if answer.returncode == 0 else []
    fields = [part.strip() for part in lines[0].split(",")] if lines else []
    if len(fields) != 3 or not all(part.isdecimal() for part in fields):
        return unknown
    used, total, busy = (int(part) for part in fields)
    return {"gpu_memory_used_bytes": used * MIB, "gpu_memory_total_bytes": total * MIB,
            "gpu_utilization": min(busy, 100) / 100}
