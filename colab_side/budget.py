"""What the store keeps on Drive when everything cannot fit: a byte budget (pure decisions).

An archive in the store is worth the time it saves after a kill: without it, its chunk is computed
again. When the store would go over its budget, it keeps the archives that save the most recompute
seconds per byte and drops the others. Dropping never touches the live session's local cache: the
job goes on from local disk, and only a kill makes a dropped chunk cost its recompute time.

Three groups of archives are kept before the others, each whenever all of it fits (see
``protected_nodes``): what the next node reads (mostly the live node's own finished chunks), what
the live node reads, and nodes whose own inputs were pruned (computing them again would first need
the pruned nodes back, a chain of recomputes).

Within the rest, a node's archives share one value per byte (its measured seconds over its bytes),
so the drops gather in the few nodes that are cheapest to redo, and a kill redoes few nodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

TAR_BLOCK = 512
TAR_RECORD = 20 * TAR_BLOCK


@dataclass(frozen=True)
class Archive:
    """One chunk's archive, stored or a candidate for storing."""

    node: str
    chunk: int
    size: int  # bytes on Drive
    seconds: float  # time to compute the chunk again: measured, else estimated

    @property
    def key(self) -> tuple[str, int]:
        return self.node, self.chunk


@dataclass(frozen=True)
class Choice:
    keep: frozenset  # keys (node, chunk) to have in the store
    drop: frozenset  # keys of the candidates not kept
    kept_bytes: int
    dropped_seconds: float  # recompute time a kill right now could cost at most


def archive_bytes(file_sizes: Iterable[int]) -> int:
    """At most the bytes of a tar holding files of these sizes, as ``tarfile`` writes it.

    Each file takes a header block, a possible PAX block pair for names over 100 characters (names
    up to 400 characters), and its data rounded up to blocks; the archive ends with two zero blocks,
    rounded up to a record.
    """
    body = sum(3 * TAR_BLOCK + -(-size // TAR_BLOCK) * TAR_BLOCK for size in file_sizes) + 2 * TAR_BLOCK
    return -(-body // TAR_RECORD) * TAR_RECORD


def density(archives: Iterable[Archive]) -> dict[str, float]:
    """Recompute seconds per byte of each node, over its archives (a node of zero bytes costs nothing to keep)."""
    seconds: dict[str, float] = {}
    size: dict[str, int] = {}
    for archive in archives:
        seconds[archive.node] = seconds.get(archive.node, 0.0) + archive.seconds
        size[archive.node] = size.get(archive.node, 0) + archive.size
    return {node: (seconds[node] / size[node] if size[node] else float("inf")) for node in seconds}


def choose(candidates: Iterable[Archive], budget: int, protected: Sequence[Iterable[str]] = ()) -> Choice:
    """Which archives to keep so that their bytes stay within ``budget``.

    ``protected`` is a list of node groups, most important first: a group's archives go in before
    the others if the whole group fits in what is left. Then nodes by recompute seconds per byte,
    the most valuable first; within a node, chunks in order. An archive that does not fit is
    skipped, and smaller ones after it may still go in.
    """
    candidates = sorted(set(candidates), key=lambda a: (a.node, a.chunk))
    value = density(candidates)
    keep, used = set(), 0

    def take(archives) -> None:
        nonlocal used
        for archive in archives:
            if archive.key not in keep and used + archive.size <= budget:
                keep.add(archive.key)
                used += archive.size

    for group in protected:
        group = set(group)
        members = [a for a in candidates if a.node in group and a.key not in keep]
        if used + sum(a.size for a in members) <= budget:
            take(members)
    take(sorted(candidates, key=lambda a: (-value[a.node], a.node, a.chunk)))
    dropped = [a for a in candidates if a.key not in keep]
    return Choice(frozenset(keep), frozenset(a.key for a in dropped), used, sum(a.seconds for a in dropped))


def protected_nodes(producers: Mapping[str, set[str]], upcoming: Sequence[str], pruned: set[str]) -> list[set[str]]:
    """The groups ``choose`` keeps first, from the nodes still to compute (``upcoming[0]`` is the live one).

    1. what the next node reads (usually the live node's own outputs: a kill then loses no finished chunk);
    2. what the live node reads (a kill then redoes no other node);
    3. the nodes that could not be computed again without a pruned producer.
    """
    reads = [set(producers.get(node, set())) - pruned for node in upcoming[1:2]] or [set()]
    reads.append(set(producers.get(upcoming[0], set())) - pruned if upcoming else set())
    stranded = {node for node, needs in producers.items() if node not in pruned and needs & pruned}
    return [reads[0], reads[1] - reads[0], stranded - reads[0] - reads[1]]


def default_budget(stored_bytes: int, drive_free_bytes: int | None, margin_bytes: int) -> int | None:
    """The budget when the user gave none: what the store holds plus what Drive has free, less the margin.

    None when Drive does not say what is free (then only the margin check guards the store).
    """
    if drive_free_bytes is None:
        return None
    return max(0, stored_bytes + drive_free_bytes - margin_bytes)
