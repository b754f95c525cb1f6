"""What the store keeps on Drive when everything cannot fit: a byte budget (pure decisions).

An archive in the store is worth the time it saves after a kill: without it, its chunk is computed
again. When the store would go over its budget, it keeps the archives that save the most recompute
seconds per byte and drops the others. Dropping never touches the live session's local cache: the
job goes on from local disk, and only a kill makes a dropped chunk cost its recompute time.

``decide`` tries a few ways of filling the budget (``alternatives``) and asks of each what a kill
right now would make the next session compute again (``at_risk``). It keeps the one with the
fewest seconds at risk, then the fewest nodes to redo. Seconds come first because a redo has to fit
in one session together with the chunk the kill interrupted, or the job never gets past it (``plan``
warns of that). The ways:

- by value per byte alone (a node's archives share one value: its seconds over its bytes, so the
  drops gather in the few nodes cheapest to redo);
- the live node's inputs first, when they all fit: once a node's consumers are all stored its own
  archives are worth nothing (the next session never reads them; pruning removes them), so keeping
  DepthMapFilter whole can free DepthMap's bytes for everything else;
- for each node, every other node first, when they all fit: the drops fall in that node alone. (In
  2019.2, where Meshing reads DepthMap and DepthMapFilter and Texturing reads PrepareDenseScene,
  only dropping DepthMap would keep a kill during Meshing to one node, at about seven times the
  seconds of dropping part of DepthMapFilter and PrepareDenseScene: the seconds win.)

Archives of nodes whose inputs were pruned always go first when they fit: computing them again
would first need the pruned nodes back, a chain of recomputes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from colab_side import policy

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


def archive_bytes(file_sizes: Iterable[int]) -> int:
    """At most the bytes of a tar holding files of these sizes, as ``tarfile`` writes it.

    Each file takes a header block, a possible PAX block pair for names over 100 characters (names
    up to 400 characters), and its data rounded up to blocks; the archive ends with two zero blocks,
    rounded up to a record.
    """
    body = sum(3 * TAR_BLOCK + -(-size // TAR_BLOCK) * TAR_BLOCK for size in file_sizes) + 2 * TAR_BLOCK
    return -(-body // TAR_RECORD) * TAR_RECORD


@dataclass(frozen=True)
class Candidates:
    """Archives grouped by node, as ``choose`` reads them: each node's chunks in order, their keys, bytes and
    value (recompute seconds per byte; a node of zero bytes costs nothing to keep)."""

    chunks: dict
    keys: dict
    size: dict
    value: dict
    every: frozenset

    @classmethod
    def of(cls, candidates: Iterable[Archive]) -> "Candidates":
        by_node: dict[str, dict[int, Archive]] = {}
        for archive in candidates:
            by_node.setdefault(archive.node, {})[archive.chunk] = archive
        chunks = {node: [found[c] for c in sorted(found)] for node, found in by_node.items()}
        size = {node: sum(a.size for a in archives) for node, archives in chunks.items()}
        value = {node: (sum(a.seconds for a in archives) / size[node] if size[node] else float("inf"))
                 for node, archives in chunks.items()}
        keys = {node: [(node, chunk) for chunk in sorted(found)] for node, found in by_node.items()}
        return cls(chunks, keys, size, value, frozenset(key for found in keys.values() for key in found))


def choose(candidates: Iterable[Archive] | Candidates, budget: int, protected: Sequence[Iterable[str]] = (),
           unavailable: frozenset = frozenset()) -> Choice:
    """Which archives to keep so that their bytes stay within ``budget``.

    ``protected`` is a list of node groups, most important first: a group's archives go in before
    the others if the whole group fits in what is left. Then nodes by recompute seconds per byte
    (over all their archives; a node of zero bytes costs nothing to keep), the most valuable first;
    within a node, chunks in order. An archive that does not fit is skipped, and smaller ones after
    it may still go in. ``unavailable`` keys cannot go in (their files left the local disk unstored).
    """
    found = candidates if isinstance(candidates, Candidates) else Candidates.of(candidates)
    chunks, size = found.chunks, found.size
    keep: set[tuple[str, int]] = set()
    used = 0
    seen: set[str] = set()

    def take(node: str) -> None:
        nonlocal used
        seen.add(node)
        keys = found.keys[node]
        if used + size[node] <= budget and not (unavailable and any(key in unavailable for key in keys)):
            keep.update(keys)
            used += size[node]
            return
        for archive in chunks[node]:
            if used + archive.size <= budget and archive.key not in unavailable:
                keep.add(archive.key)
                used += archive.size

    for group in protected:
        members = sorted(set(group) & set(chunks) - seen)
        if used + sum(size[node] for node in members) <= budget:
            for node in members:
                take(node)
    for node in sorted(set(chunks) - seen, key=lambda n: (-found.value[n], n)):
        take(node)
    return Choice(frozenset(keep), found.every - keep, used)


@dataclass(frozen=True)
class Shape:
    """The graph as the budget sees it: graph order, who reads whom, chunks per node."""

    order: tuple[str, ...]
    producers: Mapping[str, frozenset]
    chunks: Mapping[str, int]
    results: frozenset = frozenset()  # nodes whose files are published (Texturing under Publish)

    @classmethod
    def of(cls, graph) -> "Shape":
        """From a ``colab_side.meshroom.graph.Graph``."""
        return cls(tuple(graph.order()), {n: frozenset(graph.dependencies(n)) for n in graph.nodes},
                   {n: node.chunk_count for n, node in graph.nodes.items()}, frozenset(graph.publish_nodes()))


@dataclass(frozen=True)
class Risk:
    """What a kill now would make the next session compute again, beyond the chunk that was running."""

    chunks: int
    seconds: float
    nodes: frozenset  # the nodes those chunks belong to


def at_risk(candidates: Iterable[Archive], keep, shape: Shape, pruned: set[str]) -> Risk:
    """Finished chunks not kept whose node the next session must compute again (``policy.compute_order``)."""
    done = {n for n in shape.order if n in pruned or all((n, c) in keep for c in range(shape.chunks[n]))}
    redo = set(policy.compute_order(shape.order, shape.producers, done, shape.results))
    lost = [a for a in candidates if a.node in redo and (a.node, a.chunk) not in keep]
    return Risk(len(lost), sum(a.seconds for a in lost), frozenset(a.node for a in lost))


def alternatives(nodes: set[str], stranded: set[str], inputs: set[str]) -> list[list[set[str]]]:
    """The ways ``decide`` tries, as ``choose``'s protected groups (see the module's docstring)."""
    ways = [[stranded]] + ([[stranded, inputs]] if inputs else [])
    return ways + [[stranded, nodes - {node}] for node in sorted(nodes)]


def decide(candidates: Iterable[Archive], budget: int, shape: Shape, live: str | None,
           pruned: set[str], unavailable: frozenset = frozenset()) -> tuple[Choice, Risk]:
    """The archives to keep within ``budget`` while ``live`` computes (None: between nodes), and their risk:
    of the ``alternatives``, the fewest seconds at risk, then the fewest extra nodes. ``unavailable``: chunks
    not stored whose files the session no longer has (they can only be lost)."""
    candidates = [a for a in candidates if a.node not in pruned]
    stranded = {n for n in shape.order if n not in pruned and shape.producers[n] & pruned}
    inputs = set(shape.producers.get(live, ())) - pruned if live else set()
    best = None
    tried: set[frozenset] = set()
    grouped = Candidates.of(candidates)
    for groups in alternatives(set(grouped.chunks), stranded, inputs):
        choice = choose(grouped, budget, groups, unavailable)
        if choice.keep in tried:
            continue
        tried.add(choice.keep)
        risk = at_risk(candidates, choice.keep, shape, pruned)
        rank = (risk.seconds, len(risk.nodes - {live}))
        if best is None or rank < best[0]:
            best = rank, choice, risk
    return best[1], best[2]


def default_budget(stored_bytes: int, drive_free_bytes: int | None, margin_bytes: int) -> int | None:
    """The budget when the user gave none: what the store holds plus what Drive has free, less twice the margin.

    One margin stays free for the check before each node (``policy.drive_space``), the other for
    what else the job writes (logs, events, the result). None when Drive does not say what is free
    (then only the margin check guards the store).
    """
    if drive_free_bytes is None:
        return None
    return max(0, stored_bytes + drive_free_bytes - 2 * margin_bytes)
