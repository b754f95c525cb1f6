"""What a session decides, from facts alone (pure): how it ends, what it warns of, what it computes next, the ETA.

The runner gathers the facts (a node's error history, a Drive error, free space, the GPU, measured
chunk times) and does what these functions say; nothing here reads a file or a clock.

How a session ends: ``done``; ``failed`` or ``blocked`` (a restart cannot fix it: the daemon stops
and tells the human); ``restartable`` (a new session may not have the cause: the daemon restarts
it). ``Verdict`` carries the phase, the named cause and the two lines the human reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from colab_side.heartbeat import Cause, Phase
from colab_side.settings import GB

LONG_CHUNK_SHARE = 0.75  # a chunk running this share of the runtime's lifetime gets a warning
LOCAL_RECOMPUTE_SECONDS = 3600.0  # a step this cheap to compute again leaves local disk until next read


@dataclass(frozen=True)
class Verdict:
    phase: Phase
    cause: Cause
    reason: str
    action: str

    @property
    def final(self) -> bool:
        return self.phase in (Phase.DONE, Phase.FAILED, Phase.BLOCKED)


# --- how a session ends ----------------------------------------------------------------------------

def repeated_errors(errors: Mapping[str, Sequence[str]], max_node_errors: int) -> Verdict | None:
    """The K-sessions rule at the start of a session: a node that ended in ERROR in K sessions fails the job.

    ``errors`` maps a node to the sessions in which it ended in ERROR; the store records only
    errors of the node itself, never a missing input caused by pruning.
    """
    for node, sessions in errors.items():
        if len(sessions) >= max_node_errors:
            return Verdict(Phase.FAILED, Cause.CODE_ERROR,
                           f"{node} ended in ERROR in {len(sessions)} sessions; see logs/ and events.jsonl",
                           f"fix the cause (images, parameters), then remove \"{node}\" from the store's "
                           "manifest errors or start a new job")
    return None


def node_error(node: str, chunk: int, sessions: int, max_node_errors: int, last_line: str = "") -> Verdict:
    """A chunk ended in ERROR; it has now done so in ``sessions`` sessions (this one counted)."""
    if sessions >= max_node_errors:
        return Verdict(Phase.FAILED, Cause.CODE_ERROR,
                       f"{node} chunk {chunk} ended in ERROR in {sessions} sessions: {last_line}".rstrip(": "),
                       f"read logs/ for {node}; fix the images or parameters and start a new job")
    return Verdict(Phase.RESTARTABLE, Cause.CODE_ERROR,
                   f"{node} ended in ERROR (session {sessions} of {max_node_errors})",
                   "nothing: the next session tries it again")


def drive_error(message: str, full: bool, timeout: bool = False) -> Verdict:
    """Drive kept failing after retries and remounts: only a full Drive needs the human."""
    if full:
        return Verdict(Phase.BLOCKED, Cause.DRIVE_FULL, message, "free space on Drive (empty its Trash too), then Run all")
    if timeout:
        return Verdict(Phase.RESTARTABLE, Cause.DRIVE_TIMEOUT, message,
                       "nothing if it passes; if it repeats, open the notebook and answer Drive's consent prompt")
    return Verdict(Phase.RESTARTABLE, Cause.DRIVE_ERROR, message, "nothing: the next session retries Drive")


def no_gpu(gpu: str | None, required: bool) -> Verdict | None:
    if gpu is None and required:
        return Verdict(Phase.BLOCKED, Cause.NO_GPU, "this runtime has no GPU",
                       "choose a GPU runtime (Runtime > Change runtime type > GPU), then Run all")
    return None


def drive_space(free: int | None, margin: int, node: str) -> Verdict | None:
    """Before a node: Drive must keep ``margin`` bytes free (None: Drive does not say, go on)."""
    if free is None or free >= margin:
        return None
    return Verdict(Phase.BLOCKED, Cause.DRIVE_FULL,
                   f"Drive has {free / GB:.2f} GB free, {margin / GB:.2f} GB needed before {node}",
                   f"free at least {(margin - free) / GB:.2f} GB on Drive (empty its Trash too), then Run all")


def disk_full(detail: str) -> Verdict:
    """The runtime's local disk filled up: a new runtime has the same disk, so the human must choose."""
    return Verdict(Phase.BLOCKED, Cause.DISK_FULL, f"the runtime's local disk is full: {detail}",
                   "use a runtime with a larger disk, or fewer or smaller images (see python -m colab_side plan)")


STALLED_SESSIONS = 3  # sessions in a row that only redid finished chunks before the job is blocked


def stalled(sessions: Sequence[Mapping[tuple, int]], budget: int | None,
            limit: int = STALLED_SESSIONS) -> Verdict | None:
    """Kills keep redoing more than a session finishes: blocked, with the budget that would keep that work.

    ``sessions``: per session that computed anything, in order, the chunks it finished (key → archive
    bytes). When each of the last ``limit`` such sessions finished only chunks finished before (their
    archives dropped by the Drive budget), restarting again cannot help: the job needs a budget that
    keeps them, at least the current one plus their bytes.
    """
    if budget is None or len(sessions) < limit:
        return None
    seen: set = set()
    for done in sessions[:-limit]:
        seen.update(done)
    redone: dict = {}
    for done in sessions[-limit:]:
        if not done or set(done) - seen:
            return None
        seen.update(done)
        redone.update(done)
    need = budget + sum(redone.values())
    return Verdict(Phase.BLOCKED, Cause.DRIVE_FULL,
                   f"the last {limit} sessions only computed again {len(redone)} chunks whose archives the Drive "
                   f"budget ({budget / GB:.1f} GB) had dropped: kills undo more than a session finishes",
                   f"give a Drive budget of at least {need / GB:.1f} GB (--drive-budget; a larger Drive plan if "
                   "needed), or fewer photos per job or DepthMap downscale (python -m colab_side plan), then Run all")


def budget_too_small(worst, session_seconds: float, drive_budget: int, plan_command: str) -> Verdict | None:
    """Before a job starts: by the engine's size model, with this Drive budget, a kill during ``worst`` (a
    ``plan.KillCost``, or None) makes the next session redo more than a session holds, so the job could never get
    past it: blocked, with the command that prints the settings that fit."""
    if worst is None or worst.extra_seconds + worst.seconds <= session_seconds:
        return None
    return Verdict(Phase.BLOCKED, Cause.DRIVE_FULL,
                   f"with a Drive budget of {drive_budget / GB:.1f} GB, by the size model a kill during {worst.node} "
                   f"would make the next session redo {worst.extra_seconds / 3600:.1f} h before its "
                   f"{worst.seconds / 3600:.1f} h chunk, more than a {session_seconds / 3600:g} h session: the job "
                   "could never finish",
                   f"run '{plan_command}' for the settings that fit (a DepthMap downscale, a Drive budget, fewer "
                   "photos per job), then make the notebook again with them (keepalive notebook) and Run all")


def local_drops(local: Iterable[str], next_reads: set[str], later: set[str], durable: set[str],
                recompute_seconds: Mapping[str, float], limit: float,
                inputs_stored: set[str] = frozenset()) -> tuple[set[str], set[str]]:
    """Which steps' files leave the runtime's local disk before the next step: ``(gone, recompute)``.

    The next step keeps what it reads (``next_reads``, itself included). Any other step's files go
    when no step still to compute reads them (``later``), or when the store holds them all (they are
    restored when next read), or when computing the missing chunks again costs at most ``limit``
    seconds and the steps they read are all in the store (``inputs_stored``: computing them again
    starts no chain of recomputes) (``recompute``: done once, just before their next reader, e.g.
    PrepareDenseScene before Texturing, instead of keeping its images on disk through DepthMapFilter
    and Meshing).
    """
    gone, recompute = set(), set()
    for name in local:
        if name in next_reads:
            continue
        if name not in later or name in durable:
            gone.add(name)
        elif name in inputs_stored and recompute_seconds.get(name, float("inf")) <= limit:
            gone.add(name)
            recompute.add(name)
    return gone, recompute


# --- warnings --------------------------------------------------------------------------------------

def disk_warning(free: int, need: int) -> str | None:
    """Say before it fails when the local cache may not fit."""
    if need <= free:
        return None
    return f"local disk has {free / GB:.1f} GB free; the cache may need {need / GB:.1f} GB (DISK_FULL risk)"


def long_chunk_warning(node: str, elapsed: float, lifetime_hours: float) -> str | None:
    """A chunk still running after most of the runtime's lifetime may never finish on this plan."""
    if elapsed <= LONG_CHUNK_SHARE * lifetime_hours * 3600:
        return None
    return (f"{node} has run {elapsed / 3600:.1f} h of the runtime's {lifetime_hours:g} h "
            "lifetime in one chunk: it may never finish on this plan")


def history_warnings(durations: Mapping[str, Sequence[float]], unfinished: Iterable[str],
                     lifetime_hours: float) -> list[str]:
    """Unfinished nodes whose chunks, measured in earlier sessions, took longer than a runtime lives."""
    warnings = []
    for node in unfinished:
        times = durations.get(node)
        if times and max(times) > lifetime_hours * 3600:
            warnings.append(f"a chunk of {node} took {max(times) / 3600:.1f} h, more than the runtime's "
                            f"{lifetime_hours:g} h lifetime: it may never finish")
    return warnings


# --- what to compute, and when it ends -------------------------------------------------------------

def compute_order(order: Sequence[str], producers: Mapping[str, set[str]], done: set[str],
                  results: Iterable[str] = ()) -> list[str]:
    """The nodes still to compute, each as late as its first consumer allows.

    Like Meshroom, a node is computed only when a node still to compute reads it, or when it is a
    result: nothing reads it, or it is in ``results`` (the nodes whose files are published, such as
    Texturing under Publish); ``done`` nodes stop the walk. A node that was pruned or dropped and is
    needed again only at the end (PrepareDenseScene for Texturing) is computed just before that
    consumer, so a kill meanwhile does not redo it twice.
    """
    consumers: dict[str, set[str]] = {name: set() for name in order}
    for name in order:
        for producer in producers.get(name, ()):
            consumers[producer].add(name)
    results = set(results)
    needed: set[str] = set()
    for name in reversed(order):
        if name not in done and (not consumers[name] or name in results or consumers[name] & needed):
            needed.add(name)
    position = {name: index for index, name in enumerate(order)}
    placed: list[str] = []
    waiting = set(needed)
    while waiting:
        ready = [n for n in waiting if not (consumers[n] & waiting)]
        latest = min(ready, key=lambda n: position[n])  # placed from the end: the earliest goes last
        placed.append(latest)
        waiting.remove(latest)
    return placed[::-1]


MEASURED_ETA_SHARE = 0.5  # the ETA is given once measured chunk times make at least this share of it


def eta_seconds(remaining: Mapping[str, int], durations: Mapping[str, Sequence[float]],
                estimates: Mapping[str, float] | None = None) -> float | None:
    """Seconds left, or None while the ETA is still estimating.

    A node with measured chunks counts its remaining chunks at its own mean measured chunk time. A node
    not measured yet uses ``estimates`` (seconds per chunk) scaled by how measured nodes compared with
    their estimates, else the mean of all measured chunks. The engine's estimates can be far off (a GPU
    of another speed; a first node whose time is all start-up): until the nodes measured in this job
    carry at least ``MEASURED_ETA_SHARE`` of what is left, the answer is None ("estimating").
    """
    if not any(remaining.values()):
        return 0.0
    measured = [t for times in durations.values() for t in times]
    if not measured:
        return None
    overall = sum(measured) / len(measured)
    estimates = estimates or {}
    known = [node for node in durations if durations[node] and estimates.get(node)]
    scale = (sum(sum(durations[n]) for n in known) / sum(estimates[n] * len(durations[n]) for n in known)
             if known else None)
    total = from_measured = 0.0
    for node, chunks in remaining.items():
        times = durations.get(node)
        if times:
            per_chunk = sum(times) / len(times)
            from_measured += chunks * per_chunk
        elif scale is not None and estimates.get(node):
            per_chunk = estimates[node] * scale
        else:
            per_chunk = overall
        total += chunks * per_chunk
    return total if from_measured >= MEASURED_ETA_SHARE * total else None
