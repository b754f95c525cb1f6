"""The daemon's vocabulary, in one place: what it sees on the page and in the heartbeat, what it can
do, why, and what it tells the human.

Shared by the page model (which observes), the watch (which judges the heartbeat), the supervisor
(which decides) and the loop, view and notifications (which act and tell). String enums that print
and serialise as their plain value, so that they read well in JSON event logs.
"""

from __future__ import annotations

from enum import Enum

from colab_side import heartbeat as hb


class _Named(str, Enum):
    def __str__(self) -> str:
        return self.value


class PageState(_Named):
    """What the Colab tab shows, as far as the page model can tell."""

    RUNNING = "running"  # connected, a cell is executing
    IDLE = "idle"  # connected, nothing executing
    BUSY = "busy"  # the connect button says "Busy": connected, the kernel is executing
    CONNECTING = "connecting"  # Connecting / Allocating / Initializing
    DISCONNECTED = "disconnected"  # Connect / Reconnect, or the "Runtime disconnected" dialog
    GPU_LIMIT = "gpu_limit"  # "Cannot connect to GPU backend" (usage limits)
    BACKEND_UNAVAILABLE = "backend_unavailable"  # "Failed to assign a backend", "no backends available": as GPU_LIMIT
    DRIVE_CONSENT = "drive_consent"  # "Permit this notebook to access your Google Drive files?"
    DRIVE_POPUP = "drive_popup"  # the Google account / consent pop-up window is open
    AUTHORSHIP = "authorship"  # "Warning: This notebook was not authored by Google"
    CAPTCHA = "captcha"  # the idle check ("Are you still there?" + reCAPTCHA)
    SIGNED_OUT = "signed_out"  # the notebook URL went to a sign-in page
    POLICY = "policy"  # Colab stopped the runtime for its terms (disallowed code, a terms notice, an appeal link)
    OFFLINE = "offline"  # Colab cannot be reached
    COLAB_POLICY = "colab_policy"  # Colab stopped the runtime for its terms: the human decides: the browser's error page, or "Unable to connect to the runtime"
    UNKNOWN = "unknown"  # cannot tell (page not loaded, browser gone, keys mode)


class Action(_Named):
    """What the daemon can do next. ``WAIT`` does nothing this round."""

    WAIT = "wait"
    RELOAD = "reload"  # reload the one tab (also the scheduled reopen)
    RECONNECT = "reconnect"  # press Connect / Reconnect
    RUN_ALL = "run_all"  # Ctrl/Cmd+F9, the Runtime menu as fallback
    RUN_ANYWAY = "run_anyway"  # answer the authorship warning
    CONNECT_DRIVE = "connect_drive"  # answer the Drive consent dialog
    COMPLETE_DRIVE_POPUP = "complete_drive_popup"  # account, Select all, Continue/Allow
    DISMISS_GPU_LIMIT = "dismiss_gpu_limit"  # close the GPU-limit or backend dialog, never "without GPU"
    NOTIFY_HUMAN = "notify_human"  # CAPTCHA, sign-in: only a human may
    STOP = "stop"  # done, failed, or giving up


class Cause(_Named):
    """Named reasons shown in the view, the event log and notifications."""

    GPU_UNAVAILABLE = "GPU_UNAVAILABLE"
    LOGIN_REQUIRED = "LOGIN_REQUIRED"
    CAPTCHA = "CAPTCHA"
    COLAB_POLICY = "COLAB_POLICY"  # Colab's terms stopped the runtime: only the human may answer, nothing is rerun
    OFFLINE = "OFFLINE"  # Colab unreachable (this PC offline, DNS, an outage): looked at again with back-off
    DRIVE_ERROR = "DRIVE_ERROR"
    DRIVE_FULL = "DRIVE_FULL"
    DISK_FULL = "DISK_FULL"
    BAD_INPUT = "BAD_INPUT"
    CODE_ERROR = "CODE_ERROR"
    THRASHING = "THRASHING"  # restarts of a dead runtime came too fast without progress: given up
    NO_HEARTBEAT_SOURCE = "NO_HEARTBEAT_SOURCE"  # the PC's Drive folder is not there
    OTHER_JOB = "OTHER_JOB"  # no job of the name watched on this Drive, while another job is active there
    HEARTBEAT_STALLED = "HEARTBEAT_STALLED"  # the page shows the job running, its heartbeat stopped arriving
    HEARTBEAT_UNREADABLE = "HEARTBEAT_UNREADABLE"  # unreadable for longer than the grace: counted as stale
    RUNTIME_LOST = "RUNTIME_LOST"
    JOB_BLOCKED = "JOB_BLOCKED"
    JOB_DONE = "JOB_DONE"


# The notebook's causes (colab_side) as the daemon names them.
HEARTBEAT_CAUSES = {
    hb.Cause.CODE_ERROR: Cause.CODE_ERROR,
    hb.Cause.NO_GPU: Cause.GPU_UNAVAILABLE,
    hb.Cause.DRIVE_ERROR: Cause.DRIVE_ERROR,
    hb.Cause.DRIVE_TIMEOUT: Cause.DRIVE_ERROR,
    hb.Cause.DRIVE_FULL: Cause.DRIVE_FULL,
    hb.Cause.DISK_FULL: Cause.DISK_FULL,
    hb.Cause.BAD_INPUT: Cause.BAD_INPUT,
    hb.Cause.SUPERSEDED: Cause.RUNTIME_LOST,
    hb.Cause.NOTHING_TO_PUBLISH: Cause.CODE_ERROR,  # the graph ran but yields no result: the job's own fault
}


class Verdict(_Named):
    """What the heartbeat says this round, judged on the PC's clock."""

    FRESH = "fresh"  # its (session, seq) changed less than the grace ago
    STALE = "stale"  # it did not change for longer than the grace
    MISSING = "missing"  # no heartbeat file (yet)
    CORRUPT = "corrupt"  # the file is there but cannot be read


class Notice(_Named):
    """What the human is told (each kind rate-limited on its own)."""

    DONE = "done"
    FAILED = "failed"
    BLOCKED = "blocked"
    NEEDS_HUMAN = "needs_human"
    RECOVERED = "recovered"
    GIVING_UP = "giving_up"
    SOURCE_STALLED = "source_stalled"  # the heartbeat stopped arriving while the page shows the job running
    HEARTBEAT_UNREADABLE = "heartbeat_unreadable"
    OFFLINE = "offline"  # Colab cannot be reached
    COLAB_POLICY = "colab_policy"  # Colab stopped the runtime for its terms: the human decides
    OTHER_JOB = "other_job"  # the job watched is not on this Drive, another job is: nothing is pressed
    RUNTIME_ASSIGNED = "runtime_assigned"  # cli mode: a runtime may still be assigned (quota) after the end
    RUNTIME_RELEASED = "runtime_released"  # cli mode: released late, once the login came back
