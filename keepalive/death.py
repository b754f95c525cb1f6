"""A death certificate for one runtime: the most likely cause of a session's end, with its evidence.

Pure: from what the daemon saw of the session (its last heartbeats with the VM's vital signs) and what the page
showed at or after its end. The rules, first match wins, each with how sure it is:

- the notebook's own end (``restartable``/``failed``/``blocked`` with a cause): ``drive_outage`` for ``DRIVE_*``,
  else ``notebook`` — certain, the job said so;
- a human state on the page (CAPTCHA, sign-out): ``human`` — likely;
- the GPU-limit / no-backend dialog at the next connect: ``usage_limit`` — likely;
- the VM's uptime (or the session's own age) near 12 h or 24 h: ``lifetime`` — likely;
- RAM near full in the last beats: ``out_of_memory`` — likely from 95 %, possible from 90 %;
- the GPU idle in every last beat over at least ``IDLE_SECONDS``: ``idle_reclaim`` — possible;
- otherwise ``unknown``, with what was seen.
"""

from __future__ import annotations

from dataclasses import dataclass

from colab_side import heartbeat as hb

CERTAIN, LIKELY, POSSIBLE, UNKNOWN = "certain", "likely", "possible", "unknown"
LIFETIMES = (12 * 3600, 24 * 3600)  # Colab's runtime lifetimes (free / paid)
LIFETIME_MARGIN = 30 * 60  # uptime at least this close below a lifetime (beats come every few minutes)
RAM_LIKELY, RAM_POSSIBLE = 0.95, 0.90
IDLE_UTILIZATION = 0.05  # nvidia-smi's utilisation at or below this counts as idle
IDLE_SECONDS = 30 * 60
HUMAN_PAGES = {"captcha": "the CAPTCHA (idle check)", "signed_out": "a sign-in page (signed out)"}
LIMIT_PAGES = {"gpu_limit": "the GPU usage-limit dialog", "backend_unavailable": "no backend available"}
ENDED_PHASES = (hb.Phase.RESTARTABLE, hb.Phase.FAILED, hb.Phase.BLOCKED)
# pages of the daemon's own recovery (reconnect, Run all, its dialogs, the new session): no evidence of a cause
RECOVERY_PAGES = {"idle", "connecting", "busy", "running", "authorship", "drive_consent", "drive_popup", "unknown"}
CAUSES = {  # cause -> how the views and notifications say it
    "lifetime": "Colab's runtime lifetime (12 h free, 24 h paid)",
    "out_of_memory": "out of memory",
    "idle_reclaim": "reclaimed by Colab as idle",
    "usage_limit": "Colab's GPU usage limit",
    "drive_outage": "a Drive outage (the notebook ended restartable)",
    "notebook": "the notebook's own end",
    "human": "a check only a human can answer",
    "unknown": "unknown",
}


@dataclass(frozen=True)
class Death:
    cause: str  # lifetime, out_of_memory, idle_reclaim, usage_limit, drive_outage, notebook, human, unknown
    certainty: str  # certain, likely, possible, unknown
    evidence: str  # one line: what was seen

    def to_dict(self) -> dict:
        return {"cause": self.cause, "certainty": self.certainty, "evidence": self.evidence}


def sentence(found) -> str:
    """A certificate (``Death.to_dict()`` as stored; any dict) as the views say it: cause (how sure: evidence)."""
    found = found if isinstance(found, dict) else {}
    cause, certainty, evidence = (" ".join(str(found.get(key) or "").split())[:300]
                                  for key in ("cause", "certainty", "evidence"))
    said = CAUSES.get(cause, cause or "unknown")
    how = f"{certainty}: {evidence}" if certainty and certainty != UNKNOWN and evidence else evidence
    return f"{said} ({how})" if how else said


def infer(beats, pages_after=()) -> Death:
    """The most likely cause of the end of the session whose last heartbeats are ``beats`` (oldest first), given
    the page states (values of ``PageState``) seen at or after its last beat."""
    beats = [b for b in beats if isinstance(b, hb.Heartbeat)]
    pages = {str(p) for p in pages_after}
    last = beats[-1] if beats else None
    for rule in (_own_end, _human, _limit, _lifetime, _memory, _idle):
        found = rule(beats, last, pages)
        if found is not None:
            break
    else:
        found = Death("unknown", UNKNOWN, _seen(beats, last, pages))
    return Death(found.cause, found.certainty, " ".join(found.evidence.split()))  # one line


def _own_end(beats, last, pages):
    if last is None or last.phase not in ENDED_PHASES or not last.cause:
        return None
    said = f"the notebook ended {last.phase} {last.cause}" + (f": {last.reason}" if last.reason else "")
    return Death("drive_outage" if str(last.cause).startswith("DRIVE_") else "notebook", CERTAIN, said)


def _human(beats, last, pages):
    seen = [text for page, text in HUMAN_PAGES.items() if page in pages]
    return Death("human", LIKELY, f"the page showed {' and '.join(seen)}") if seen else None


def _limit(beats, last, pages):
    seen = [text for page, text in LIMIT_PAGES.items() if page in pages]
    return Death("usage_limit", LIKELY, f"the next connect showed {' and '.join(seen)}") if seen else None


def _age(last) -> float | None:
    """The VM's uptime at the last beat, else the session's age then."""
    if last is None:
        return None
    if last.uptime_seconds is not None:
        return float(last.uptime_seconds)
    start, end = hb.timestamp(last.session_started), hb.timestamp(last.time)
    return None if start is None or end is None else max(0.0, end - start)


def _lifetime(beats, last, pages):
    age = _age(last)
    if age is None:
        return None
    for limit in LIFETIMES:
        if limit - LIFETIME_MARGIN <= age <= limit + LIFETIME_MARGIN:
            return Death("lifetime", LIKELY, f"uptime {_hours(age)} at the last beat, near the {limit // 3600} h limit")
    return None


def _ram(beat) -> float | None:
    used, total = beat.ram_used_bytes, beat.ram_total_bytes
    return used / total if used is not None and total else None


def _memory(beats, last, pages):
    shares = [s for s in (_ram(b) for b in beats[-3:]) if s is not None]
    if not shares:
        return None
    top = max(shares)
    certainty = LIKELY if top >= RAM_LIKELY else POSSIBLE if top >= RAM_POSSIBLE else None
    if certainty is None:
        return None
    return Death("out_of_memory", certainty, f"RAM {top * 100:.0f}% used in the last beats")


def _idle(beats, last, pages):
    use = [(hb.timestamp(b.time), b.gpu_utilization) for b in beats if b.gpu_utilization is not None]
    use = [(t, u) for t, u in use if t is not None]
    if len(use) < 2 or any(u > IDLE_UTILIZATION for _t, u in use):
        return None
    span = use[-1][0] - use[0][0]
    if span < IDLE_SECONDS:
        return None
    return Death("idle_reclaim", POSSIBLE, f"GPU idle (≤{IDLE_UTILIZATION * 100:.0f}%) for {_hours(span)} before the end")


def _seen(beats, last, pages) -> str:
    if last is None:
        return "no heartbeat of this session was read"
    parts = [f"last beat {last.phase}", f"uptime {_hours(_age(last))}" if _age(last) is not None else "uptime ?"]
    share = _ram(last)
    if share is not None:
        parts.append(f"RAM {share * 100:.0f}%")
    if last.gpu_utilization is not None:
        parts.append(f"GPU {last.gpu_utilization * 100:.0f}%")
    told = sorted(pages - RECOVERY_PAGES)
    if told:
        parts.append("page " + ", ".join(told))
    return "; ".join(parts)


def _hours(seconds: float) -> str:
    seconds = int(max(0.0, min(seconds, 1e9)))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}"
