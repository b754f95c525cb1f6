"""Build a Meshroom release archive whose executables are the stand-in.

The archive has the real release's name and shape (``Meshroom-2019.2.0-linux.tar.gz`` holding
``Meshroom-2019.2.0/meshroom_photogrammetry``, ``meshroom_compute``, ``aliceVision/``), so that
``colab_side`` downloads, verifies, caches and extracts it exactly as it would the real one.
The executables are Python scripts that carry a copy of ``meshroom_standin`` in ``lib/``, with the
byte estimates of ``colab_side.meshroom.estimates`` as its size model.
Names and top folders are those of docs/meshroom.md ("Release archives"); the 2023.3 and 2025.1
top folders are not confirmed.
"""

from __future__ import annotations

import io
import json
import sys
import tarfile
from pathlib import Path

from colab_side.meshroom import estimates
from keepalive_sim import meshroom_standin

# version → (archive name, top folder, batch executable)
RELEASE_LAYOUT = {
    "2019.2": ("Meshroom-2019.2.0-linux.tar.gz", "Meshroom-2019.2.0", "meshroom_photogrammetry"),
    "2021.1": ("Meshroom-2021.1.0-linux-cuda10.tar.gz", "Meshroom-2021.1.0-av2.4.0-centos7-cuda10.2", "meshroom_batch"),
    "2023.3": ("Meshroom-2023.3.0-linux.tar.gz", "Meshroom-2023.3.0", "meshroom_batch"),
    "2025.1": ("Meshroom-2025.1.0-Linux.tar.gz", "Meshroom-2025.1.0", "meshroom_batch"),
}

_SHIM = """#!{python}
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "lib"))
import meshroom_standin
sys.exit(meshroom_standin.main({tool!r}, release={release!r}))
"""


def build_release(dest_dir, version: str = "2019.2") -> Path:
    """Write the stand-in release archive for ``version`` into ``dest_dir`` and return its path."""
    if version not in RELEASE_LAYOUT:
        raise ValueError(f"no stand-in for Meshroom {version}; known: {', '.join(RELEASE_LAYOUT)}")
    archive_name, top, batch_exe = RELEASE_LAYOUT[version]
    release = meshroom_standin.RELEASES[version]["version"]
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    members = {
        f"{top}/lib/meshroom_standin.py": (Path(meshroom_standin.__file__).read_bytes(), 0o644),
        f"{top}/lib/{meshroom_standin.SIZE_MODEL_FILE}": (json.dumps(estimates.DEFAULTS["bytes"]).encode(), 0o644),
        f"{top}/aliceVision/bin/README": (b"AliceVision binaries (stand-in)\n", 0o644),
        f"{top}/aliceVision/share/aliceVision/vlfeat_K80L3.SIFT.tree": (b"\0" * 64, 0o644),
    }
    for tool in (batch_exe, "meshroom_compute"):
        script = _SHIM.format(python=sys.executable, tool=tool, release=release)
        members[f"{top}/{tool}"] = (script.encode(), 0o755)
    path = dest / archive_name
    with tarfile.open(path, "w:gz") as archive:
        for name, (data, mode) in sorted(members.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 0
            archive.addfile(info, io.BytesIO(data))
    return path
