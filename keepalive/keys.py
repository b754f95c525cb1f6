"""Keys mode: restart the job with real keystrokes in the user's own, non-automated browser.

For users whose Google account refuses sign-in under automation, or whose Chrome policy blocks the
debugging port. It opens the notebook in the default (or a configured) browser, and to recover it
closes the tab it opened, opens the notebook again, presses Run all (Ctrl/Cmd+F9) and answers the
authorship warning and the Drive consent with key sequences from ``keys_sequences.toml``.

It cannot read the page: the heartbeat is its only sign of life, and the only states it can see
are the ones a small reference image matches on screen (idle check, sign-in, GPU limit).

Safety: pyautogui's fail-safe stays on (throw the mouse into a screen corner to stop it); it never
types unless the focused window's title is the notebook's (or Google's pop-up); and it waits while
the user is using the keyboard or mouse.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import tomllib
import webbrowser
from importlib import resources
from pathlib import Path

from keepalive.colab import Observation, merge_tables
from keepalive.states import Action, PageState

IMAGE_STATES = {"captcha": PageState.CAPTCHA, "signed_out": PageState.SIGNED_OUT, "gpu_limit": PageState.GPU_LIMIT}


def load_sequences(overrides: dict | None = None) -> dict:
    text = resources.files("keepalive").joinpath("keys_sequences.toml").read_text(encoding="utf-8")
    return merge_tables(tomllib.loads(text), overrides or {})


def focused_window_title() -> str | None:
    """The focused window's title, where the platform tells; None where it cannot be known."""
    try:
        if sys.platform == "win32":
            import pygetwindow

            return pygetwindow.getActiveWindowTitle()
        if sys.platform == "darwin":
            script = ('tell application "System Events" to tell (first process whose frontmost is true) '
                      'to get name of front window')
            return subprocess.run(["osascript", "-e", script], capture_output=True, text=True, timeout=5).stdout.strip()
        if shutil.which("xdotool"):
            for query in (["getactivewindow"], ["getwindowfocus"]):
                out = subprocess.run(["xdotool", *query, "getwindowname"], capture_output=True, text=True, timeout=5)
                if out.returncode == 0 and out.stdout.strip():
                    return out.stdout.strip()
    except (OSError, subprocess.SubprocessError, ImportError):
        pass
    return None


def input_idle_seconds() -> float | None:
    """Seconds since the last keyboard or mouse input, where the platform tells; None elsewhere."""
    try:
        if sys.platform == "win32":
            import ctypes

            class LastInput(ctypes.Structure):
                _fields_ = [("cbSize", ctypes.c_uint), ("dwTime", ctypes.c_uint)]

            info = LastInput(ctypes.sizeof(LastInput), 0)
            if ctypes.windll.user32.GetLastInputInfo(ctypes.byref(info)):
                return (ctypes.windll.kernel32.GetTickCount() - info.dwTime) / 1000.0
        elif sys.platform == "darwin":
            out = subprocess.run(["ioreg", "-c", "IOHIDSystem"], capture_output=True, text=True, timeout=5).stdout
            for line in out.splitlines():
                if "HIDIdleTime" in line:
                    return int(line.rsplit("=", 1)[1]) / 1e9
        elif shutil.which("xprintidle"):
            out = subprocess.run(["xprintidle"], capture_output=True, text=True, timeout=5)
            if out.returncode == 0:
                return int(out.stdout.strip()) / 1000.0
    except (OSError, ValueError, subprocess.SubprocessError, AttributeError):
        pass
    return None


class KeyHands:
    def __init__(self, cfg, gui=None, clock=time.monotonic, sleep=time.sleep, focus=focused_window_title,
                 idle=input_idle_seconds):
        self.cfg = cfg
        self.seq = load_sequences(cfg.keys)
        self._gui = gui
        self.focus = focus
        self.idle = idle
        self.clock = clock
        self.sleep = sleep
        self.proc = None
        self.log: list[str] = []  # what it typed, or why it did not

    @property
    def gui(self):
        if self._gui is None:
            import pyautogui  # connects to the display at import: only when keys mode runs

            pyautogui.FAILSAFE = True
            self._gui = pyautogui
        return self._gui

    # --- the browser window ---------------------------------------------------------------------

    def start(self) -> None:
        self.open()

    def open(self) -> None:
        command = [arg.replace("{url}", self.cfg.url) for arg in self.seq["browser_command"]]
        if command:
            self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        else:
            webbrowser.open(self.cfg.url, new=2)
        self.sleep(float(self.seq["load_seconds"]))

    def reopen(self) -> None:
        """Close the tab it opened, then open the notebook again: never a pile of tabs."""
        if self.play(self.seq["close_tab"]):
            self.sleep(1.0)
        self.open()

    def close(self) -> None:
        if self.proc is not None and not self.cfg.browser.keep_open:
            self.proc.terminate()

    # --- seeing -------------------------------------------------------------------------------------

    def observe(self) -> Observation:
        images = self.seq["images"]
        found = {}
        for name, state in IMAGE_STATES.items():
            found[f"image:{name}"] = self._on_screen(images.get(name), float(images.get("confidence", 0.8)))
            if found[f"image:{name}"]:
                return Observation(state, found, f"reference image {name} on screen")
        return Observation(PageState.UNKNOWN, found, "keys mode sees only the heartbeat")

    def _on_screen(self, image: str | None, confidence: float) -> bool:
        if not image:
            return False
        path = Path(image) if Path(image).is_absolute() else Path(str(resources.files("keepalive").joinpath("keys_images", image)))
        if not path.exists():
            return False
        try:
            return self.gui.locateOnScreen(str(path), confidence=confidence, grayscale=True) is not None
        except self.gui.ImageNotFoundException:
            return False
        except Exception as exc:  # no screenshot tool, no OpenCV: keys mode still works on the heartbeat
            self._note(f"screen matching unavailable: {exc}")
            return False

    # --- doing --------------------------------------------------------------------------------------

    def act(self, action: Action) -> bool:
        if action is Action.RUN_ALL:
            self.reopen()
            return self.play(self.seq["run_all"]) and self.play(self.seq["after_run_all"])
        if action is Action.RELOAD:
            self.reopen()
            return True
        if action is Action.DISMISS_GPU_LIMIT:
            return self.play(self.seq["dismiss"])
        return False

    def play(self, steps: list[str]) -> bool:
        """Play a key sequence; stop (False) as soon as it would type into the wrong window."""
        if not self._wait_for_idle_user():
            return False
        for step in steps:
            if step.startswith("wait:"):
                self.sleep(float(step[5:]))
            elif step.startswith("@"):
                if not self.play(self.seq[step[1:]]):
                    return False
            else:
                title = self.focus()
                if title is not None and not any(w.lower() in title.lower() for w in self.seq["window_titles"]):
                    self._note(f"not typing {step!r}: the focused window is {title!r}")
                    return False
                self._press(step)
        return True

    def _press(self, step: str) -> None:
        modifier = "command" if sys.platform == "darwin" else "ctrl"
        keys = step.replace("{mod}", modifier).split("+")
        self._note(f"key {step}")
        if len(keys) > 1:
            self.gui.hotkey(*keys)
        else:
            self.gui.press(keys[0])

    def _wait_for_idle_user(self) -> bool:
        """Wait while the user types or moves the mouse; False after the max wait.

        The system's input idle time is used where the platform gives it (keyboard and mouse);
        elsewhere, mouse movement between samples.
        """
        idle = float(self.seq["idle_seconds"])
        deadline = self.clock() + float(self.seq["idle_max_wait_seconds"])
        position = self.gui.position()
        quiet_since = self.clock()
        while True:
            system_idle = self.idle()
            quiet = system_idle if system_idle is not None else self.clock() - quiet_since
            if quiet >= idle:
                return True
            if self.clock() > deadline:
                self._note("the user kept using the keyboard or mouse: not typing this round")
                return False
            self.sleep(min(0.25, idle))
            now = self.gui.position()
            if now != position:
                position, quiet_since = now, self.clock()

    def _note(self, text: str) -> None:
        self.log.append(text)
        print(f"keepalive keys: {text}", file=sys.stderr)

