"""The one table of Meshroom releases: version → archive → executables.

Release archives come from the GitHub releases page of alicevision/meshroom. Only the 2019.2
archive name is confirmed; the later names are the usual pattern and may differ, so every caller
can pass its own URL (``meshroom_url``) and the table stays the single place to correct.
"""

from __future__ import annotations

from dataclasses import dataclass

RELEASES = "https://github.com/alicevision/meshroom/releases/download"


@dataclass(frozen=True)
class MeshroomVersion:
    version: str
    archive: str  # file name of the release archive
    url: str
    batch_exe: str  # builds the graph (and computes it, when asked)
    compute_exe: str  # computes a saved graph, node by node
    style: str  # "photogrammetry" (2019.x command line) or "batch" (2021.1 and later)


def _release(version: str, tag: str, archive: str, batch_exe: str, style: str) -> MeshroomVersion:
    return MeshroomVersion(version, archive, f"{RELEASES}/{tag}/{archive}", batch_exe, "meshroom_compute", style)


VERSIONS = {
    "2019.2": _release("2019.2", "v2019.2.0", "Meshroom-2019.2.0-linux.tar.gz", "meshroom_photogrammetry", "photogrammetry"),
    "2021.1": _release("2021.1", "v2021.1.0", "Meshroom-2021.1.0-linux-cuda10.tar.gz", "meshroom_batch", "batch"),
    "2023.3": _release("2023.3", "v2023.3.0", "Meshroom-2023.3.0-linux.tar.gz", "meshroom_batch", "batch"),
    "2025.1": _release("2025.1", "v2025.1.0", "Meshroom-2025.1.0-linux.tar.gz", "meshroom_batch", "batch"),
}


def get(version: str) -> MeshroomVersion:
    """The release for ``version``; ValueError naming the known ones otherwise."""
    try:
        return VERSIONS[str(version)]
    except KeyError:
        raise ValueError(
            f"unknown Meshroom version {version!r}: use one of {', '.join(VERSIONS)}"
        ) from None
