"""The daemon's vocabulary: what it can see on the page, what it can do, and why.

Shared by the page model (which observes), the supervisor (which decides) and the
loop, view and notifications (which act and tell). Plain string enums, so that they
read well in JSON event logs.
"""

from __future__ import annotations

from enum import Enum


class PageState(str, Enum):
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
    UNKNOWN = "unknown"  # cannot tell (page not loaded, browser gone, keys mode)


class Action(str, Enum):
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


class Cause(str, Enum):
    """Named reasons shown in the view, the event log and notifications."""

    GPU_UNAVAILABLE = "GPU_UNAVAILABLE"
    LOGIN_REQUIRED = "LOGIN_REQUIRED"
    CAPTCHA = "CAPTCHA"
    DRIVE_ERROR = "DRIVE_ERROR"
    CODE_ERROR = "CODE_ERROR"
    THRASHING = "THRASHING"
    NO_HEARTBEAT_SOURCE = "NO_HEARTBEAT_SOURCE"
    RUNTIME_LOST = "RUNTIME_LOST"
    JOB_BLOCKED = "JOB_BLOCKED"
    JOB_DONE = "JOB_DONE"
