"""One look at the job: the heartbeat (as the PC's Drive shows it) and the daemon's own record.

``describe`` turns them into the plain dict that every view shows (the live panel, its plain lines,
``keepalive status`` and its ``--json``, the notifications' figures); ``heartbeat_line``, ``headline``
and ``exit_code`` are pure readings of that dict, so no view can contradict another. ``collect``
adds, for ``status``, whether a daemon watches the job (its OS lock and its record of itself).
"""

from __future__ import annotations

import math
import time
import unicodedata

from colab_side import heartbeat as hb
from keepalive import death
from keepalive.drive_store import DurableOnPC
from keepalive.heartbeat_watch import HeartbeatWatch, find_drive_folder
from keepalive.journal import Journal
from keepalive.states import Cause, Verdict

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
    started = hb.timestamp(text(state.get("job_started")))
    ended = hb.timestamp(beat.time) if final else None  # Colab's clock, as the job's first event

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
        "chunks_durable_on_pc": _counted(state.get("chunks_durable_on_pc")),
        "result_files_on_pc": _counted(state.get("result_files_on_pc")),  # verified in result/, once published
        "job_seconds": None if started is None else max(0.0, (ended or wall) - started),  # since its first start
        "last_action": text(state.get("last_action")) or None,
        "last_action_reason": text(state.get("last_reason")) or None,
        "last_action_time": text(state.get("last_action_time")) or None,
        "last_action_age_seconds": _seconds_since(text(state.get("last_action_time")), wall)
        if state.get("last_action_time") else None,
        "note": text(state.get("note")) or None,  # why the daemon waits or acts now, while it has a cause
        "last_death": death_text(state.get("last_death")),
    }


def death_text(found) -> str | None:
    """The last runtime's death certificate as the views say it ("session s2 after 11:52:00: ..."), or None."""
    if not isinstance(found, dict) or not found.get("cause"):
        return None
    lifetime = number(found.get("lifetime_seconds"))
    after = "" if lifetime is None else f" after {clock_text(lifetime)}"
    return f"session {text(found.get('session')) or '?'}{after}: {death.sentence(found)}"


def _counted(value) -> int | None:
    return None if number(value) is None else count(value)


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
    store = DurableOnPC(folder, cfg.job).facts()
    info = describe(view.beat, verdict, age, None, {**state, **store}, wall, view.error)
    info["job"] = cfg.job
    info["drive_folder"] = str(folder) if folder else None
    sessions = journal.sessions()
    info["sessions"], info["sessions_total"] = sessions[-SESSIONS_SHOWN:], len(sessions)
    watcher = journal.watcher()
    info["watched_by"] = None if watcher is None else {
        "pid": watcher.get("pid"), "since": text(watcher.get("since")) or None, "mode": text(watcher.get("mode")) or None,
        "up_seconds": _seconds_since(text(watcher.get("since")), wall) if watcher.get("since") else None}
    info["heartbeat_reading"] = heartbeat_word(info)  # the verdict as the views say it (e.g. "final", "first-seen")
    info["exit_code"] = exit_code(info)
    return info


SESSIONS_SHOWN = 10  # the newest sessions in status's table (all of them are in sessions.json)

# ``keepalive status``'s exit codes (2, a config that cannot be used, is every command's).
EXIT_OK, EXIT_NEEDS_YOU, EXIT_UNWATCHED = 0, 1, 4
EXIT_CODES_HELP = ("exit codes: 0 the job is done, or a daemon watches it; 1 the job failed or is blocked, the "
                   "daemon gave up restarting it, or it waits for you (CAPTCHA, sign-in, Colab's terms, another "
                   "job on the Drive, no Drive folder); 2 the config cannot be used; 4 no daemon watches a job "
                   "that is not finished")
# What the daemon cannot get past without the human: status says "needs you" (1) for these too.
NEEDS_YOU = {Cause.CAPTCHA.value, Cause.LOGIN_REQUIRED.value, Cause.COLAB_POLICY.value,
             Cause.OTHER_JOB.value, Cause.NO_HEARTBEAT_SOURCE.value}


def exit_code(info: dict) -> int:
    """What ``status`` exits with: something is wrong (1), or nothing watches a job that is not done (4)."""
    phase = text(info.get("phase"))
    cause = text(info.get("cause"))
    if (phase in (hb.FAILED, hb.BLOCKED) or cause == Cause.THRASHING.value
            or cause in NEEDS_YOU and info.get("watched_by")):  # (an earlier daemon's cause is no longer true)
        return EXIT_NEEDS_YOU
    if phase != hb.DONE and not info.get("watched_by"):
        return EXIT_UNWATCHED
    return EXIT_OK


def heartbeat_line(info: dict, grace: float) -> tuple[str, str]:
    """The heartbeat as it may truthfully be shown, and its tone (``good``, ``warn``, ``bad``, ``plain``).

    "fresh" (green) only while nothing else says the session ended: a final heartbeat is the job's last
    word, not a sign of life; a heartbeat still within its grace while the daemon has found the runtime
    lost is the ended session's last one; one seen for the first time has no age yet.
    """
    word, age = heartbeat_word(info), number(info.get("heartbeat_age_seconds"))
    lag = "" if number(info.get("sync_lag_seconds")) is None else f"  sync lag {clock_text(info['sync_lag_seconds'])}"
    changed = f"last changed {clock_text(age)} ago"
    if word == "final":
        return f"final ({text(info.get('phase'))})" + ("" if age is None else f", {changed}") + lag, "plain"
    if word == "before-loss":
        return f"{changed}, before the runtime was lost (no new session yet){lag}", "warn"
    if word == "first-seen":
        return "seen for the first time now: whether it moves shows on the next look", "warn"
    if word == "none-yet":
        return "none yet (no session of this job has written one)", "warn"
    if word == Verdict.FRESH and (number(info.get("sync_lag_seconds")) or 0.0) > grace:
        return (f"changed {clock_text(age)} ago here, but written {clock_text(info['sync_lag_seconds'])} before this PC "
                "saw it (an old heartbeat, or Drive's sync far behind)"), "warn"
    if word == Verdict.FRESH:
        return f"fresh  age {clock_text(age)}{lag}", "good" if age < grace / 2 else "warn"
    return f"{word or '-'}  age {clock_text(age)}{lag}", "bad"


def heartbeat_word(info: dict) -> str:
    """The heartbeat's verdict in one word, corrected by what else is known (see ``heartbeat_line``)."""
    verdict, age = text(info.get("heartbeat")), number(info.get("heartbeat_age_seconds"))
    if text(info.get("phase")) in hb.FINAL_PHASES:
        return "final"
    if verdict == Verdict.FRESH and text(info.get("cause")) == Cause.RUNTIME_LOST.value:
        return "before-loss"
    if verdict == Verdict.FRESH and age is None:
        return "first-seen"
    if verdict == Verdict.MISSING and not info.get("session"):
        return "none-yet"
    return verdict


def headline(info: dict) -> tuple[str, str] | None:
    """The one line on where the job stands, and its tone; None while it simply computes.

    ``done`` is success, said with the job's wall time, restarts and its result on Drive; a final
    failure or block says what to do; a cause of the daemon's says why it waits or acts.
    """
    phase, cause = text(info.get("phase")), text(info.get("cause"))
    if phase == hb.DONE:
        wall = number(info.get("job_seconds"))
        restarts = count(info.get("restarts"))
        figures = ([f"{clock_text(wall)} from its first start"] if wall is not None else []) + \
            [f"{restarts} restart{'' if restarts == 1 else 's'}"] + ([result_text(info)] if result_text(info) else [])
        return f"DONE: the job finished — {', '.join(figures)}", "good"
    if info.get("reason"):
        to_do = text(info.get("what_to_do"))
        return f"{cause or phase.upper()}: {text(info['reason'])}" + (f" — to do: {to_do}" if to_do else ""), "bad"
    if cause == Cause.RUNTIME_LOST.value and text(info.get("heartbeat")) == Verdict.MISSING \
            and not info.get("session"):
        return f"STARTING: no session of this job runs yet; starting one ({text(info.get('last_action')) or 'wait'})", \
            "plain"
    if cause and info.get("note"):
        return f"{cause}: {text(info['note'])}", "bad" if cause == Cause.THRASHING.value else "warn"
    return None


def result_text(info: dict) -> str:
    """The verified result on Drive, as this PC sees the store's record of it; '' until published."""
    files = number(info.get("result_files_on_pc"))
    if files is None:
        return ""
    where = f"keepalive/{text(info.get('job'))}/result/" if info.get("job") else "result/"
    return f"result: {count(files)} file{'' if count(files) == 1 else 's'} verified in {where} on Drive"


def watcher_text(info: dict) -> str:
    """Whether a daemon watches the job, and the next step when none does."""
    watcher = info.get("watched_by")
    if isinstance(watcher, dict):
        pid = f"pid {count(watcher.get('pid'))}" if number(watcher.get("pid")) is not None else "pid unknown"
        stamp = hb.timestamp(text(watcher.get("since")))
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(stamp)) if stamp is not None else ""
        up = f" ({clock_text(watcher.get('up_seconds'))})" if number(watcher.get("up_seconds")) is not None else ""
        mode = f", {text(watcher.get('mode'))} mode" if watcher.get("mode") else ""
        return f"watched by keepalive {pid}" + (f" since {since}{up}" if since else "") + mode
    if text(info.get("phase")) == hb.DONE:
        return "no daemon watches it (none is needed: the job is done)"
    return f"NOT watched: no keepalive daemon runs for this job; start one: keepalive run --job {text(info.get('job'))}"


def clock_text(seconds) -> str:
    seconds = number(seconds)
    if seconds is None:
        return "-"
    seconds = int(max(0.0, min(seconds, 1e9)))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def eta_text(info: dict) -> str:
    """"ETA 1:02:03", "ETA estimating" while the notebook has too few measured chunk times; "" once the job ended."""
    if text(info.get("phase")) in hb.FINAL_PHASES:
        return ""
    seconds = number(info.get("eta_seconds"))
    return f"ETA {'estimating' if seconds is None else clock_text(seconds)}"


def render_text(info: dict, grace: float = 300.0) -> str:
    progress = number(info.get("progress"))
    chunk = number(info.get("chunk"))
    beat, _tone = heartbeat_line(info, grace)
    eta = f", {eta_text(info)}" if eta_text(info) else ""
    lines = [
        f"job {text(info.get('job'))}: phase {text(info.get('phase')) or '-'}, node {text(info.get('node')) or '-'}"
        f" chunk {'-' if chunk is None else int(chunk)}",
        f"progress {'-' if progress is None else f'{progress * 100:.1f}%'}"
        f" ({count(info.get('chunks_done'))}/{count(info.get('chunks_total'))} chunks{durable_text(info)}){eta}",
        f"heartbeat {beat}",
        f"restarts {count(info.get('restarts'))}; last action: {action_text(info)}",
    ]
    if "watched_by" in info:
        lines.append(watcher_text(info))
    if info.get("heartbeat_error"):
        lines.append(f"heartbeat unreadable: {text(info['heartbeat_error'])}")
    if info.get("last_death"):
        lines.append(f"last runtime lost: {text(info['last_death'], 600)}")
    told = headline(info)
    if told:
        lines.append(told[0])
    lines += sessions_table(info.get("sessions"), info.get("sessions_total"),
                            text(info.get("phase")) if text(info.get("phase")) in hb.FINAL_PHASES else None)
    return "\n".join(lines)


def sessions_table(rows, total=None, final: str | None = None) -> list[str]:
    """The sessions seen, one line each: start, end, lifetime (as this PC saw it), how it ended; no rows, no lines.
    ``final``: the job's last word (done, failed, blocked), which is how its newest session ended."""
    rows = [row for row in rows or [] if isinstance(row, dict)]
    if not rows:
        return []
    total = count(total) if number(total) is not None else len(rows)
    title = f"sessions (the newest {len(rows)} of {total}):" if total > len(rows) else "sessions:"
    lines = [title, f"  {'start (UTC)':<16}  {'end (UTC)':<16}  {'lifetime':>9}  how it ended"]
    for row in rows:
        start, end = hb.timestamp(text(row.get("start"))), hb.timestamp(text(row.get("end")))
        lifetime = clock_text(end - start) if start is not None and end is not None else "-"
        if row.get("cause"):
            ended = death.sentence(row)
        elif end is None:
            ended = final if final and row is rows[-1] else "running"
        else:
            ended = text(row.get("ended_by")) or "-"
        lines.append(f"  {_minute(start):<16}  {_minute(end):<16}  {lifetime:>9}  {text(ended, 400)}")
    return lines


def _minute(stamp: float | None) -> str:
    return "-" if stamp is None else time.strftime("%Y-%m-%d %H:%M", time.gmtime(stamp))


def action_text(info: dict) -> str:
    """The daemon's last action with how long ago it was, so that an old one never reads as current."""
    action = text(info.get("last_action"))
    if not action:
        return "-"
    age = number(info.get("last_action_age_seconds"))
    when = f" {clock_text(age)} ago" if age is not None else ""
    reason = text(info.get("last_action_reason"))
    return f"{action}{when}" + (f" ({reason})" if reason else "")


def durable_text(info: dict) -> str:
    """The chunks the PC sees durable in the store's manifest (kept or pruned), beside the runtime's own count."""
    durable = number(info.get("chunks_durable_on_pc"))
    return "" if durable is None else f", {count(durable)} saved on Drive"


def count(value) -> int:
    value = number(value)
    return 0 if value is None else int(max(0.0, min(value, 1e15)))
