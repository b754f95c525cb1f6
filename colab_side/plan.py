"""``python -m colab_side plan``: what a job will need, before anything runs.

The forecast replays the job the way a session runs it, chunk by chunk, on estimated sizes and
times (``colab_side.meshroom.estimates``): after each chunk the store keeps what the budget allows
(``colab_side.budget``), and a finished node whose consumers are all stored is pruned. At every
chunk it also asks what a kill there would make the next session redo. The figures are estimates:
the user corrects them with ``--model FILE.json``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from colab_side import budget, policy
from colab_side.meshroom import estimates
from colab_side.settings import GB


@dataclass(frozen=True)
class Step:
    name: str
    node_type: str
    chunks: int
    chunk_bytes: tuple[int, ...]
    chunk_seconds: tuple[float, ...]
    reads: frozenset


@dataclass(frozen=True)
class KillCost:
    """What a kill while one chunk runs makes the next session redo, beyond that chunk."""

    node: str  # the node computing when the kill came
    seconds: float  # how long that chunk runs: the weight of this kill, kills being uniform in time
    extra_nodes: int  # finished nodes other than the live one that must be computed again
    extra_chunks: int
    extra_seconds: float


@dataclass(frozen=True)
class StoreForecast:
    peak_bytes: int
    kills: tuple[KillCost, ...]

    @property
    def worst(self) -> KillCost | None:
        return max(self.kills, key=lambda k: (k.extra_nodes, k.extra_seconds), default=None)

    def share_within(self, extra_nodes: int) -> float:
        """Share of kills (uniform in compute time) that redo at most ``extra_nodes`` finished nodes."""
        total = sum(k.seconds for k in self.kills)
        return sum(k.seconds for k in self.kills if k.extra_nodes <= extra_nodes) / total if total else 1.0


def steps(model: dict, meshroom: str, images: int) -> list[Step]:
    """The pipeline of ``meshroom`` for ``images`` images, with estimated bytes and seconds per chunk."""
    try:
        pipeline = model["pipelines"][meshroom]
    except KeyError:
        raise estimates.ModelError(f"no pipeline for Meshroom {meshroom!r}: use one of "
                                   f"{', '.join(model['pipelines'])}") from None
    result = []
    for name, node_type, block, reads in pipeline:
        chunks = math.ceil(images / block) if block else 1
        sizes = [min(block, images - c * block) for c in range(chunks)] if block else [images]
        total_bytes = estimates.figure(model["bytes"], node_type, images)
        total_seconds = estimates.figure(model["seconds"], node_type, images)
        share = [n / images if images else 1 / chunks for n in sizes]
        result.append(Step(name, node_type, chunks, tuple(int(total_bytes * s) for s in share),
                           tuple(total_seconds * s for s in share), frozenset(reads)))
    return result


def forecast_store(plan: list[Step], drive_budget: int | None, prune: bool = True) -> StoreForecast:
    """Replay an uninterrupted job: the store's peak bytes, and the cost of a kill during each chunk."""
    order = [s.name for s in plan]
    producers = {s.name: set(s.reads) for s in plan}
    consumers = {name: {other for other in order if name in producers[other]} for name in order}
    chunks = {s.name: s.chunks for s in plan}
    computed: dict[tuple[str, int], budget.Archive] = {}
    stored: set[tuple[str, int]] = set()
    pruned: set[str] = set()
    peak, kills = 0, []

    def durable(name: str) -> bool:
        return name in pruned or all((name, c) in stored for c in range(chunks[name]))

    def settle(upcoming: list[str]) -> None:
        nonlocal stored, peak
        candidates = [a for a in computed.values() if a.node not in pruned]
        if drive_budget is None:
            stored = {a.key for a in candidates}
        else:
            groups = budget.protected_nodes(producers, upcoming, pruned)
            stored = set(budget.choose(candidates, drive_budget, groups).keep)
        peak = max(peak, sum(computed[key].size for key in stored))

    def kill_cost(live: str, seconds: float) -> KillCost:
        redo = policy.compute_order(order, producers, {n for n in order if durable(n)})
        finished = {key for key in computed}
        lost = [key for key in finished if key not in stored and key[0] in redo]
        nodes = {node for node, _ in lost if node != live}
        return KillCost(live, seconds, len(nodes), len(lost), sum(computed[key].seconds for key in lost))

    for index, step in enumerate(plan):
        for chunk in range(step.chunks):
            kills.append(kill_cost(step.name, step.chunk_seconds[chunk]))  # a kill while this chunk runs
            computed[step.name, chunk] = budget.Archive(step.name, chunk, step.chunk_bytes[chunk],
                                                        step.chunk_seconds[chunk])
            settle(order[index:])
        if prune:
            pruned |= {n for n in order if n not in pruned and consumers[n] and all(durable(c) for c in consumers[n])}
            settle(order[index + 1:])
    return StoreForecast(peak, tuple(kills))


@dataclass(frozen=True)
class Forecast:
    images: int
    meshroom: str
    chunks: int
    nodes: int
    local_peak: int
    keep_everything: StoreForecast
    pruned: StoreForecast
    budgeted: StoreForecast | None
    drive_budget: int | None
    colab: dict


def forecast(model: dict, meshroom: str, images: int, drive_budget: int | None) -> Forecast:
    plan = steps(model, meshroom, images)
    cache = sum(sum(s.chunk_bytes) for s in plan)
    return Forecast(
        images=images, meshroom=meshroom, chunks=sum(s.chunks for s in plan), nodes=len(plan),
        local_peak=cache + int(model["install_bytes"]),  # the live job keeps every output on local disk
        keep_everything=forecast_store(plan, None, prune=False),
        pruned=forecast_store(plan, None),
        budgeted=forecast_store(plan, drive_budget) if drive_budget is not None else None,
        drive_budget=drive_budget, colab=model["colab"],
    )


def _gb(value: float) -> str:
    return f"{value / GB:.1f} GB"


def _fits(need: int, have: int) -> str:
    return "fits" if need <= have else f"does NOT fit ({_gb(need - have)} short)"


def render(f: Forecast) -> str:
    local_free, drive = f.colab["local_free_bytes"], f.colab["drive_bytes"]
    lines = [
        f"Plan for {f.images} images, Meshroom {f.meshroom} (ESTIMATES from colab_side/meshroom/estimates.py; "
        "correct them with --model FILE.json)",
        f"  chunks: {f.chunks} in {f.nodes} nodes",
        f"  peak local disk: {_gb(f.local_peak)} (cache and Meshroom); a free Colab runtime has about "
        f"{_gb(local_free)} free: {_fits(f.local_peak, local_free)}",
        f"  peak Drive, keeping every archive: {_gb(f.keep_everything.peak_bytes)}",
        f"  peak Drive, pruning (no budget):   {_gb(f.pruned.peak_bytes)}; a free {_gb(drive)} Drive: "
        f"{_fits(f.pruned.peak_bytes, drive)}",
    ]
    if f.budgeted is not None:
        worst = f.budgeted.worst
        lines.append(f"  peak Drive, budget {_gb(f.drive_budget)}:  {_gb(f.budgeted.peak_bytes)}; a free {_gb(drive)} "
                     f"Drive: {_fits(f.budgeted.peak_bytes, drive)}")
        if worst and worst.extra_chunks:
            lines.append(f"    the price: a kill redoes at most {worst.extra_nodes} finished node(s) and "
                         f"{worst.extra_chunks} chunks ({worst.extra_seconds / 3600:.1f} h, worst during {worst.node}); "
                         f"{f.budgeted.share_within(1):.0%} of kills redo at most one node")
        else:
            lines.append("    the budget drops nothing: a kill redoes only the chunk that was running")
    return "\n".join(lines)


def count_images(folder: Path, extensions) -> int:
    """Image files in ``folder``; ValueError (one line) when it is not a folder or holds none."""
    if not folder.is_dir():
        raise ValueError(f"image folder {folder} does not exist: pass the folder that holds the photos")
    count = sum(1 for p in folder.iterdir() if p.is_file() and p.suffix.lower() in extensions)
    if not count:
        raise ValueError(f"image folder {folder} holds no images ({', '.join(extensions)})")
    return count


def main(args, extensions) -> int:
    """``args``: images, meshroom, drive_budget_gb (None: 15 GB Drive less the margin), drive_margin_gb, model."""
    model = estimates.load(args.model)
    images = count_images(Path(args.images), extensions)
    margin = int(args.drive_margin_gb * GB)
    if args.drive_budget_gb is not None:
        drive_budget = int(args.drive_budget_gb * GB)
    else:
        drive_budget = budget.default_budget(0, int(model["colab"]["drive_bytes"]), margin)
    print(render(forecast(model, args.meshroom, images, drive_budget)))
    return 0
