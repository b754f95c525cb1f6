"""One look at the job: the heartbeat (as the PC's Drive shows it) and the daemon's own record."""

from __future__ import annotations

import time

from colab_side import heartbeat as hb
from keepalive.heartbeat_watch import HeartbeatWatch, find_drive_folder
from keepalive.journal import Journal
from keepalive.supervisor import CORRUPT, FRESH, MISSING, STALE


def _seconds_since(text: str, wall: float) -> float | None:
    written = hb.timestamp(text)
    return None if written is None else max(0.0, wall - written)


def describe(beat: hb.Heartbeat | None, verdict: str, age: float | None, sync_lag: float | None,
             state: dict, wall: float | None = None) -> dict:
    """The fields every view of the job shows (live view, plain lines, ``status``)."""
    wall = time.time() if wall is None else wall
    info = {
        "heartbeat": verdict, "heartbeat_age_seconds": None if age is None else round(age, 1),
        "sync_lag_seconds": None if sync_lag is None else round(sync_lag, 1),
        "job": beat.job if beat else state.get("job"), "phase": beat.phase if beat else None,
        "node": beat.node if beat else None, "chunk": beat.chunk if beat else None,
        "progress": beat.progress if beat else None,
        "chunks_done": beat.chunks_done if beat else None, "chunks_total": beat.chunks_total if beat else None,
        "eta_seconds": beat.eta_seconds if beat else None,
        "session": beat.session if beat else None,
        "session_uptime_seconds": _seconds_since(beat.session_started, wall) if beat else None,
        "drive_free_bytes": beat.drive_free_bytes if beat else None,
        "last_log_line": beat.last_log_line if beat else "",
        "cause": (beat.cause if beat and beat.final else None) or state.get("cause"),
        "reason": beat.reason if beat and beat.final else None,
        "what_to_do": beat.action if beat and beat.final else None,
        "warnings": list(beat.warnings) if beat else [],
        "restarts": state.get("restarts", 0),
        "last_action": state.get("last_action"), "last_action_reason": state.get("last_reason"),
        "last_action_time": state.get("last_action_time"),
    }
    return info


def collect(cfg, wall: float | None = None) -> dict:
    """For ``keepalive status``: works whether or not a daemon is running."""
    folder = cfg.drive_folder or find_drive_folder()
    journal = Journal(cfg.dirs.state, cfg.job)
    state = journal.load_state()
    watch = HeartbeatWatch(folder, cfg.job, cfg.supervisor.grace_seconds)
    view = watch.poll()
    age = watch.file_age()
    if view.verdict in (FRESH, STALE):
        verdict = FRESH if age is not None and age <= cfg.supervisor.grace_seconds else STALE
    else:
        verdict = view.verdict if view.verdict in (MISSING, CORRUPT) else MISSING
    info = describe(view.beat, verdict, age, None, state, wall)
    info["job"] = cfg.job
    info["drive_folder"] = str(folder) if folder else None
    info["sessions"] = journal.sessions()[-10:]
    return info


def clock_text(seconds) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def render_text(info: dict) -> str:
    progress = "-" if info.get("progress") is None else f"{info['progress'] * 100:.1f}%"
    lines = [
        f"job {info.get('job')}: phase {info.get('phase') or '-'}, node {info.get('node') or '-'}"
        f" chunk {info.get('chunk') if info.get('chunk') is not None else '-'}",
        f"progress {progress} ({info.get('chunks_done') or 0}/{info.get('chunks_total') or 0} chunks),"
        f" ETA {clock_text(info.get('eta_seconds'))}",
        f"heartbeat {info.get('heartbeat')} (age {clock_text(info.get('heartbeat_age_seconds'))}),"
        f" restarts {info.get('restarts', 0)}",
        f"last action: {info.get('last_action') or '-'} ({info.get('last_action_reason') or '-'})",
    ]
    if info.get("reason"):
        lines.append(f"{info.get('cause')}: {info['reason']} — {info.get('what_to_do') or ''}")
    return "\n".join(lines)
