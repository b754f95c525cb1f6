"""``python -m colab_side plan``: what a job will need, before anything runs.

The forecast replays the job the way a session runs it, chunk by chunk, on estimated sizes and
times (``colab_side.meshroom.estimates``): after each chunk the store keeps what the budget allows
(``colab_side.budget``), and a node whose consumers are all stored is pruned. At every chunk it
also asks what a kill there would make the next session redo. The figures are estimates:
the user corrects them with ``--model FILE.json``.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

from colab_side import budget, policy, pruning, settings
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
    local_peak: int = 0  # the work files on the runtime's local disk at most (the program itself not counted)
    recompute_seconds: float = 0.0  # steps computed again to save local disk (once, not per kill)
    session_drive_bytes: int = 0  # the most bytes written to or restored from Drive within one session's time

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


class ModelError(ValueError):
    """A user's model file cannot be used: one line naming what is wrong."""


def load_model(defaults: dict, path, validate) -> dict:
    """An engine's size model: ``defaults`` with the top-level keys of a user's JSON file (``path``) put over them;
    ``validate(model)`` says in one phrase what is wrong, or None."""
    model = copy.deepcopy(defaults)
    if path is None:
        return model
    try:
        user = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"model file {path} cannot be read: {exc}") from None
    except ValueError as exc:
        raise ModelError(f"model file {path} is not valid JSON ({exc})") from None
    if not isinstance(user, dict) or set(user) - set(defaults):
        raise ModelError(f"model file {path} must be a JSON object with keys among {', '.join(defaults)}")
    for key, value in user.items():
        if isinstance(model[key], dict) and isinstance(value, dict):
            model[key].update(value)
        else:
            model[key] = value
    problem = validate(model)
    if problem:
        raise ModelError(f"model file {path}: {problem}")
    return model


def estimate(model: dict, release: str, images: int, engine: str = "meshroom") -> Estimate:
    """The engine's steps for ``images`` images, with estimated chunk sizes and times (its size model)."""
    return engines.size_model(engine).estimate(model, release, images)


def forecast_store(job: Estimate, drive_budget: int | None, prune: bool = True,
                   session_seconds: float = 12 * 3600) -> StoreForecast:
    """Replay an uninterrupted job as the runner computes it: the store's peak bytes, the local disk's
    peak (work files only), and the cost of a kill during each chunk.

    Steps come in ``policy.compute_order``. After each chunk the store keeps what ``budget.decide``
    says (everything without a budget); after each step, steps whose consumers are all stored are
    pruned and the store settles again, then ``policy.local_drops`` says which steps' files leave
    the local disk (restored from the store, or computed again, when next read).
    """
    graph, shape = job.graph, budget.Shape.of(job.graph)
    producers = {name: set(graph.dependencies(name)) for name in graph.nodes}
    results = graph.publish_nodes()
    computed: dict = {}
    stored: frozenset = frozenset()
    pruned: set[str] = set()
    finished: set[str] = set()
    local: dict[str, int] = {}  # step -> bytes of its files on local disk
    risk = budget.Risk(0, 0.0, frozenset())
    peak = local_peak = 0
    recomputed = clock = 0.0
    kills = []
    traffic: list[tuple[float, int]] = []  # (compute seconds so far, bytes written to or read from Drive)

    def has(name: str, chunk: int) -> bool:
        return name in pruned or (name, chunk) in stored

    def durable(name: str) -> bool:
        return all(has(name, c) for c in range(shape.chunks[name]))

    def settle(live: str | None) -> None:
        nonlocal stored, risk, peak
        candidates = [a for key, a in computed.items() if a.node not in pruned]
        before = stored
        if drive_budget is None:
            stored = frozenset(a.key for a in candidates)
        else:
            gone = frozenset(a.key for a in candidates if a.node not in local) - stored
            choice, risk = budget.decide(candidates, drive_budget, shape, live, pruned, gone)
            stored = choice.keep
        traffic.append((clock, sum(computed[key].size for key in stored - before)))
        peak = max(peak, sum(computed[key].size for key in stored))

    def todo(computed_here: set[str] | None = None) -> list[str]:
        done = {n for n in shape.order if durable(n)} | (finished if computed_here is None else computed_here)
        return policy.compute_order(shape.order, producers, done, results)

    def reads(name: str | None) -> set[str]:
        return {name, *producers[name]} if name else set(results)

    while True:
        steps = todo()
        for name in reads(steps[0] if steps else None) - set(local):  # restored from the store
            local[name] = sum(job.chunk_bytes[name, c] for c in range(shape.chunks[name]) if has(name, c))
            traffic.append((clock, local[name]))
        local_peak = max(local_peak, sum(local.values()))
        if not steps:
            break
        name = steps[0]
        for chunk in range(shape.chunks[name]):
            if has(name, chunk):
                continue
            kills.append(KillCost(name, job.chunk_seconds[name, chunk], len(risk.nodes - {name}), risk.chunks,
                                  risk.seconds))
            if name in finished:
                recomputed += job.chunk_seconds[name, chunk]
            clock += job.chunk_seconds[name, chunk]
            computed[name, chunk] = job.archive(name, chunk)
            local[name] = local.get(name, 0) + job.chunk_bytes[name, chunk]
            local_peak = max(local_peak, sum(local.values()))
            settle(name)
        finished.add(name)
        following = todo()
        while prune:
            newly = set(pruning.prunable(graph, {n for n in shape.order if durable(n)}, pruned))
            if not newly:
                break
            pruned |= newly
            settle(following[0] if following else None)
        settle(following[0] if following else None)
        later = set(following) | set(results)
        for step in following:
            later |= producers[step]
        seconds = {n: sum(job.chunk_seconds[n, c] for c in range(shape.chunks[n]) if not has(n, c)) for n in local}
        stored_inputs = {n for n in local if all(durable(p) for p in producers[n])}
        gone, recompute = policy.local_drops(set(local), reads(following[0] if following else None), later,
                                              {n for n in local if durable(n)}, seconds,
                                              policy.LOCAL_RECOMPUTE_SECONDS, stored_inputs)
        if recompute and todo(finished - recompute)[:1] != following[:1]:
            gone -= recompute  # they would come straight back: keep them
        for step in gone:
            del local[step]
            finished.discard(step)
    window, start, heaviest = 0, 0, 0
    for time, size in traffic:  # sliding window of one session's compute time
        window += size
        while traffic[start][0] < time - session_seconds:
            window -= traffic[start][1]
            start += 1
        heaviest = max(heaviest, window)
    return StoreForecast(peak, tuple(kills), local_peak, recomputed, heaviest)


@dataclass(frozen=True)
class Forecast:
    images: int
    program: str  # e.g. "Meshroom 2019.2"
    engine: str
    chunks: int
    nodes: int
    local_peak: int
    keep_everything: StoreForecast
    pruned: StoreForecast
    budgeted: StoreForecast | None
    drive_budget: int | None
    colab: dict


def forecast(model: dict, release: str, images: int, drive_budget: int | None, engine: str = "meshroom",
             program: str | None = None) -> Forecast:
    """``program``: how the plan names what computes (default: Meshroom and the release)."""
    job = estimate(model, release, images, engine)
    pruned = forecast_store(job, None)
    budgeted = forecast_store(job, drive_budget) if drive_budget is not None else None
    return Forecast(
        images=images, program=program or f"Meshroom {release}", engine=engine, chunks=job.graph.chunks_total, nodes=len(job.graph.nodes),
        local_peak=(budgeted or pruned).local_peak + int(model["install_bytes"]),
        keep_everything=forecast_store(job, None, prune=False), pruned=pruned, budgeted=budgeted,
        drive_budget=drive_budget, colab=model["colab"],
    )


def _gb(value: float) -> str:
    return f"{value / settings.GB:.1f} GB"


def _fits(need: int, have: int) -> str:
    return "fits" if need <= have else f"does NOT fit ({_gb(need - have)} short)"


def render(f: Forecast) -> str:
    local_free, drive = f.colab["local_free_bytes"], f.colab["drive_bytes"]
    lines = [
        f"Plan for {f.images} images, {f.program}, the settings as given (ESTIMATES from "
        f"colab_side/{f.engine}/estimates.py; correct them with --model FILE.json)",
        f"  chunks: {f.chunks} in {f.nodes} nodes",
        f"  peak local disk: {_gb(f.local_peak)} (cache and the program); a free Colab runtime has about "
        f"{_gb(local_free)} free: {_fits(f.local_peak, local_free)}",
        f"    not counted: Drive's own cache on the runtime may keep what a session writes to and restores from "
        f"Drive, up to {_gb((f.budgeted or f.pruned).session_drive_bytes)} (colabtools #659, #960, #2147; "
        "see docs/drive-budget.md)",
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
