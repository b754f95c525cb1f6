"""``python -m colab_side plan``: what a job will need, before anything runs.

The forecast replays the job the way a session runs it, chunk by chunk, on estimated sizes and
times (``colab_side.meshroom.estimates``): after each chunk the store keeps what the budget allows
(``colab_side.budget``), and a node whose consumers are all stored is pruned. At every chunk it
also asks what a kill there would make the next session redo. The figures are estimates:
the user corrects them with ``--model FILE.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from colab_side import budget, pruning, settings
from colab_side import engine as engines
from colab_side.engine import Estimate


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

    def unrecoverable(self, session_seconds: float) -> KillCost | None:
        """The worst kill whose redo and interrupted chunk together outlast a session, if any: a kill
        there in every session would stop the job at that chunk."""
        over = [k for k in self.kills if k.extra_seconds + k.seconds > session_seconds]
        return max(over, key=lambda k: k.extra_seconds + k.seconds, default=None)

    @property
    def worst(self) -> KillCost | None:
        return max(self.kills, key=lambda k: (k.extra_nodes, k.extra_seconds), default=None)

    def share_within(self, extra_nodes: int) -> float:
        """Share of kills (uniform in compute time) that redo at most ``extra_nodes`` finished nodes."""
        total = sum(k.seconds for k in self.kills)
        return sum(k.seconds for k in self.kills if k.extra_nodes <= extra_nodes) / total if total else 1.0


def estimate(model: dict, release: str, images: int, engine: str = "meshroom") -> Estimate:
    """The engine's steps for ``images`` images, with estimated chunk sizes and times (its size model)."""
    return engines.size_model(engine).estimate(model, release, images)


def forecast_store(job: Estimate, drive_budget: int | None, prune: bool = True) -> StoreForecast:
    """Replay an uninterrupted job: the store's peak bytes, and the cost of a kill during each chunk.

    After each chunk the store keeps what ``budget.decide`` says (everything without a budget);
    after each node, nodes whose consumers are all stored are pruned, and the store settles again.
    """
    graph, shape = job.graph, budget.Shape.of(job.graph)
    computed: dict = {}
    stored: frozenset = frozenset()
    pruned: set[str] = set()
    risk = budget.Risk(0, 0.0, frozenset())
    peak, kills = 0, []

    def settle(live: str | None) -> None:
        nonlocal stored, risk, peak
        candidates = [a for key, a in computed.items() if a.node not in pruned]
        if drive_budget is None:
            stored = frozenset(a.key for a in candidates)
        else:
            choice, risk = budget.decide(candidates, drive_budget, shape, live, pruned)
            stored = choice.keep
        peak = max(peak, sum(computed[key].size for key in stored))

    order = list(shape.order)
    for index, name in enumerate(order):
        for chunk in range(shape.chunks[name]):
            kills.append(KillCost(name, job.chunk_seconds[name, chunk], len(risk.nodes - {name}), risk.chunks,
                                  risk.seconds))
            computed[name, chunk] = job.archive(name, chunk)
            settle(name)
        following = order[index + 1] if index + 1 < len(order) else None
        while prune:
            durable = {n for n in order if n in pruned or all((n, c) in stored for c in range(shape.chunks[n]))}
            newly = set(pruning.prunable(graph, durable, pruned))
            if not newly:
                break
            pruned |= newly
            settle(following)
        settle(following)
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
    job = estimate(model, meshroom, images)
    return Forecast(
        images=images, meshroom=meshroom, chunks=job.graph.chunks_total, nodes=len(job.graph.nodes),
        local_peak=sum(job.chunk_bytes.values()) + int(model["install_bytes"]),  # local disk keeps every output
        keep_everything=forecast_store(job, None, prune=False),
        pruned=forecast_store(job, None),
        budgeted=forecast_store(job, drive_budget) if drive_budget is not None else None,
        drive_budget=drive_budget, colab=model["colab"],
    )


def _gb(value: float) -> str:
    return f"{value / settings.GB:.1f} GB"


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
        stuck = f.budgeted.unrecoverable(float(f.colab["session_seconds"]))
        if stuck:
            lines.append(f"    WARNING: after a kill during {stuck.node} the next session redoes "
                         f"{stuck.extra_seconds / 3600:.1f} h before that {stuck.seconds / 3600:.1f} h chunk can run "
                         f"again, more than a {f.colab['session_seconds'] / 3600:g} h session: give a larger "
                         "--drive-budget (or a paid plan's longer sessions) so the job can get past it")
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
    """``args``: images, meshroom, drive_budget_gb (None: a free Drive less the margin), drive_margin_gb, model."""
    checked = settings.make(images=args.images, meshroom=args.meshroom, drive_budget_gb=args.drive_budget_gb,
                            drive_margin_gb=args.drive_margin_gb)
    model = engines.size_model("meshroom").load(args.model)
    images = count_images(checked.images, extensions)
    drive_budget = checked.drive_budget_bytes
    if drive_budget is None:
        drive_budget = budget.default_budget(0, int(model["colab"]["drive_bytes"]), checked.drive_margin_bytes)
    print(render(forecast(model, checked.meshroom, images, drive_budget)))
    return 0
