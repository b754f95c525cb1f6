"""The one table of Meshroom releases: version → archive → executables, and where each fact was read.

Archive names and URLs come from the release pages (2019.2–2023.3: GitHub releases of
alicevision/meshroom; 2025.1: Zenodo record 16887472, not a GitHub asset). The structure of each
release's graph (nodes, links, block sizes, uid field, cache folder, status fields) was read from
Meshroom's source at the tag named in ``sources``; docs/meshroom.md lists every fact with its file.
Nothing else here depends on that structure: chunks and folders are read from the saved ``.mg``.
Every caller can pass its own URL (``meshroom_url``), and this table is the single place to correct.
"""

from __future__ import annotations

from dataclasses import dataclass, field

GITHUB = "https://github.com/alicevision/meshroom/releases/download"
ZENODO = "https://zenodo.org/records"


@dataclass(frozen=True)
class MeshroomVersion:
    version: str
    archive: str  # file name of the release archive
    url: str
    batch_exe: str  # builds the graph (and computes it, when asked)
    compute_exe: str  # computes a saved graph, node by node
    style: str  # "photogrammetry" (2019.x command line) or "batch" (2021.1 and later)
    sources: dict = field(default_factory=dict, compare=False)  # fact → where it was read


def _sources(tag: str, nodes: str, graph: str, header: str) -> dict:
    return {
        "graph": graph,
        "nodes": nodes,
        "node fields, uid, cache folder": f"{tag}:meshroom/core/node.py (Node.toDict, internalFolder)",
        "header": header,
        "status fields": f"{tag}:meshroom/core/node.py (StatusData)",
        "meshroom_compute --node": f"{tag}:bin/meshroom_compute (RUNNING/SUBMITTED only printed)",
    }


VERSIONS = {
    "2019.2": MeshroomVersion(
        "2019.2", "Meshroom-2019.2.0-linux.tar.gz", f"{GITHUB}/v2019.2.0/Meshroom-2019.2.0-linux.tar.gz",
        "meshroom_photogrammetry", "meshroom_compute", "photogrammetry",
        _sources("v2019.2.0", "v2019.2.0:meshroom/nodes/aliceVision/*.py",
                 "v2019.2.0:meshroom/multiview.py (photogrammetry(output=...) adds Publish)",
                 "v2019.2.0:meshroom/core/graph.py (Graph.save)")),
    "2021.1": MeshroomVersion(
        "2021.1", "Meshroom-2021.1.0-linux-cuda10.tar.gz", f"{GITHUB}/v2021.1.0/Meshroom-2021.1.0-linux-cuda10.tar.gz",
        "meshroom_batch", "meshroom_compute", "batch",
        _sources("v2021.1.0", "v2021.1.0:meshroom/nodes/aliceVision/*.py",
                 "v2021.1.0:meshroom/multiview.py, bin/meshroom_batch",
                 "v2021.1.0:meshroom/core/graph.py (Graph.save)")),
    "2023.3": MeshroomVersion(
        "2023.3", "Meshroom-2023.3.0-linux.tar.gz", f"{GITHUB}/v2023.3.0/Meshroom-2023.3.0-linux.tar.gz",
        "meshroom_batch", "meshroom_compute", "batch",
        _sources("v2023.3.0", "v2023.3.0:meshroom/nodes/aliceVision/*.py",
                 "v2023.3.0:meshroom/pipelines/photogrammetry.mg, bin/meshroom_batch, core/graph.py (publishOutputs)",
                 "v2023.3.0:meshroom/core/graph.py (Graph.save)")),
    "2025.1": MeshroomVersion(
        "2025.1", "Meshroom-2025.1.0-Linux.tar.gz", f"{ZENODO}/16887472/files/Meshroom-2025.1.0-Linux.tar.gz?download=1",
        "meshroom_batch", "meshroom_compute", "batch",
        _sources("v2025.1.0",
                 "alicevision/Meshroom 95ebf83c:meshroom/nodes/aliceVision/*.py (last copy before the move to "
                 "AliceVision's plugin), v2025.1.0:meshroom/nodes/general/Publish.py",
                 "alicevision/Meshroom 09720f6b:meshroom/pipelines/photogrammetry.mg (last copy), bin/meshroom_batch",
                 "v2025.1.0:meshroom/core/graphIO.py (GraphSerializer.serializeHeader)")),
}


def get(version: str) -> MeshroomVersion:
    """The release for ``version``; ValueError naming the known ones otherwise."""
    try:
        return VERSIONS[str(version)]
    except KeyError:
        raise ValueError(
            f"unknown Meshroom version {version!r}: use one of {', '.join(VERSIONS)}"
        ) from None
