"""One look at the job: the heartbeat (as the PC's Drive shows it) and the daemon's own record."""

from __future__ import annotations

import math
import time
import unicodedata

from colab_side import heartbeat as hb
from keepalive.drive_store import DurableOnPC
from keepalive.heartbeat_watch import HeartbeatWatch, find_drive_folder
from keepalive.journal import Journal
from keepalive.states import Verdict

STATUS_SEEN = "status_seen.json"  # status's own note of when this PC first saw the heartbeat's (session, seq)


def number(value) -> float | None:
    """A finite real number, or None: what a view may do arithmetic on, whatever a file held."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


def text(value, limit: int = 240) -> str:
    """One printable line of at most ``limit`` characters: no control characters, nothing unprintable."""
    if value is None:
        return ""
    value = value if isinstance(value, str) else str(value)
    value = value[:limit].encode("utf-8", "replace").decode("utf-8")
    return "".join(" " if unicodedata.category(ch) in ("Cc", "Cs") else ch for ch in value)


def _seconds_since(stamp: str, wall: float) -> float | None:
    written = hb.timestamp(stamp)
    return None if written is None else max(0.0, wall - written)


def describe(beat: hb.Heartbeat | None, verdict: str, age: float | None, sync_lag: float | None,
             state: dict, wall: float | None = None, error: str | None = None) -> dict:
    """The fields every view of the job shows (live view, plain lines, ``status``).

    ``beat`` comes from the typed reader; ``state`` is the daemon's saved state, which may hold anything.
    """
    wall = time.time() if wall is None else wall
    state = state if isinstance(state, dict) else {}
    final = beat is not None and beat.final

    def rounded(value):
        value = number(value)
        return None if value is None else round(value, 1)

    return {
        "heartbeat": text(verdict), "heartbeat_error": text(error) or None,
        "heartbeat_age_seconds": rounded(age), "sync_lag_seconds": rounded(sync_lag),
        "job": text(beat.job if beat else state.get("job")), "phase": text(beat.phase) if beat else None,
        "node": text(beat.node) if beat and beat.node else None, "chunk": beat.chunk if beat else None,
        "progress": beat.progress if beat else None,
        "chunks_done": beat.chunks_done if beat else None, "chunks_total": beat.chunks_total if beat else None,
        "eta_seconds": beat.eta_seconds if beat else None,
        "session": text(beat.session) if beat else None,
        "session_uptime_seconds": _seconds_since(beat.session_started, wall) if beat else None,
        "drive_free_bytes": beat.drive_free_bytes if beat else None,
        "last_log_line": text(beat.last_log_line) if beat else "",
        "cause": text((final and beat.cause) or state.get("cause")) or None,
        "reason": text(beat.reason) if final and beat.reason else None,
        "what_to_do": text(beat.action) if final and beat.action else None,
        "warnings": [text(w) for w in beat.warnings] if beat else [],
        "history": [text(h) for h in beat.history] if beat else [],  # e.g. which session this one superseded
        "restarts": int(number(state.get("restarts")) or 0),
        "chunks_durable_on_pc": None if number(state.get("chunks_durable_on_pc")) is None
        else count(state.get("chunks_durable_on_pc")),
        "last_action": text(state.get("last_action")) or None,
        "last_action_reason": text(state.get("last_reason")) or None,
        "last_action_time": text(state.get("last_action_time")) or None,
        "note": text(state.get("note")) or None,  # why the daemon waits or acts now, while it has a cause
    }


def heartbeat_key(beat: hb.Heartbeat) -> dict:
    return {"session": beat.session, "seq": beat.seq}


def seen_at(beat: hb.Heartbeat, notes) -> float | None:
    """When this PC first saw ``beat``'s (session, seq), by its own clock, from notes ``{session, seq, pc_time}``."""
    for note in notes:
        if isinstance(note, dict) and {k: note.get(k) for k in ("session", "seq")} == heartbeat_key(beat):
            return number(note.get("pc_time"))
    return None


def collect(cfg, wall: float | None = None) -> dict:
    """For ``keepalive status``: works whether or not a daemon is running.

    The heartbeat's age is judged on this PC's clock only: since the daemon (or an earlier ``status``)
    first saw its (session, seq). A heartbeat seen for the first time counts as a change seen now, as
    the daemon counts it; neither the file's mtime nor the time written in it (Colab's clocks) is used.
    """
    wall = time.time() if wall is None else wall
    folder = cfg.drive_folder or find_drive_folder()
    journal = Journal(cfg.dirs.state, cfg.job)
    state = journal.load_state()
    view = HeartbeatWatch(folder, cfg.job, cfg.supervisor.grace_seconds).poll()
    age, verdict = None, view.verdict
    if view.beat is not None and view.verdict in (Verdict.FRESH, Verdict.STALE):
        first = seen_at(view.beat, [state.get("heartbeat_seen"), journal.load_state(STATUS_SEEN)])
        if first is None:
            journal.save_state({**heartbeat_key(view.beat), "pc_time": wall}, STATUS_SEEN)
        age = None if first is None else max(0.0, wall - first)
        verdict = Verdict.FRESH if age is None or age <= cfg.supervisor.grace_seconds else Verdict.STALE
    durable = DurableOnPC(folder, cfg.job).count()
    info = describe(view.beat, verdict, age, None, {**state, "chunks_durable_on_pc": durable}, wall, view.error)
    info["job"] = cfg.job
    info["drive_folder"] = str(folder) if folder else None
    info["sessions"] = journal.sessions()[-10:]
    return info


def clock_text(seconds) -> str:
    seconds = number(seconds)
    if seconds is None:
        return "-"
    seconds = int(max(0.0, min(seconds, 1e9)))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def render_text(info: dict) -> str:
    progress = number(info.get("progress"))
    chunk = number(info.get("chunk"))
    lines = [
        f"job {text(info.get('job'))}: phase {text(info.get('phase')) or '-'}, node {text(info.get('node')) or '-'}"
        f" chunk {'-' if chunk is None else int(chunk)}",
        f"progress {'-' if progress is None else f'{progress * 100:.1f}%'}"
        f" ({count(info.get('chunks_done'))}/{count(info.get('chunks_total'))} chunks{durable_text(info)}),"
        f" ETA {clock_text(info.get('eta_seconds'))}",
        f"heartbeat {text(info.get('heartbeat'))} (age {clock_text(info.get('heartbeat_age_seconds'))}),"
        f" restarts {count(info.get('restarts'))}",
        f"last action: {text(info.get('last_action')) or '-'} ({text(info.get('last_action_reason')) or '-'})",
    ]
    if info.get("heartbeat_error"):
        lines.append(f"heartbeat unreadable: {text(info['heartbeat_error'])}")
    if info.get("reason"):
        lines.append(f"{text(info.get('cause'))}: {text(info['reason'])} — {text(info.get('what_to_do'))}")
    return "\n".join(lines)


def durable_text(info: dict) -> str:
    """The chunks the PC sees durable in the store's manifest, beside the runtime's own count."""
    durable = number(info.get("chunks_durable_on_pc"))
    return "" if durable is None else f", {count(durable)} durable on this PC's Drive"


def count(value) -> int:
    value = number(value)
    return 0 if value is None else int(max(0.0, min(value, 1e15)))
