"""Keys mode: restart the job with real keystrokes in the user's own, non-automated browser.

For users whose Google account refuses sign-in under automation, or whose Chrome policy blocks the
debugging port. It opens the notebook in the default (or a configured) browser, and to recover it
closes the tab it opened, opens the notebook again, presses Run all (Ctrl/Cmd+F9) and answers the
authorship warning and the Drive consent with key sequences from ``keys_sequences.toml``.

It cannot read the page: the heartbeat is its only sign of life, and the only states it can see
are the ones a small reference image matches on screen (idle check, sign-in, GPU limit).

Safety: pyautogui's fail-safe stays on (throw the mouse into a screen corner to stop it); it never
types unless the focused window's title is the notebook's (or Google's pop-up) followed by a browser's
name, bringing that window forward first (xdotool, pygetwindow); it waits while the user is using the
keyboard or mouse, and drops a sequence as soon as the mouse moves.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import time
import tomllib
import webbrowser
from importlib import resources
from pathlib import Path

from keepalive.hands.page import Observation, add_texts, language_texts, merge_tables, shipped_languages
from keepalive.states import Action, PageState

IMAGE_STATES = {"captcha": PageState.CAPTCHA, "signed_out": PageState.SIGNED_OUT, "gpu_limit": PageState.GPU_LIMIT}


def load_sequences(overrides: dict | None = None, language: str = "auto") -> dict:
    """The key sequences, with the ``[keys]`` texts of Colab's ``language`` (``auto``: every shipped language's,
    as keys mode cannot read the page) added, then the user's ``[keys]`` overrides."""
    text = resources.files("keepalive.hands").joinpath("keys_sequences.toml").read_text(encoding="utf-8")
    sequences = tomllib.loads(text)
    codes = shipped_languages() if language == "auto" else [] if language == "en" else [language]
    for code in codes:
        sequences = add_texts(sequences, language_texts(code).get("keys", {}))
    return merge_tables(sequences, overrides or {})


def focused_window_title() -> str | None:
    """The focused window's title (on macOS: "<window> - <application>"); None where it cannot be known."""
    try:
        if sys.platform == "win32":
            import pygetwindow

            return pygetwindow.getActiveWindowTitle()
        if sys.platform == "darwin":
            script = ('tell application "System Events" to tell (first process whose frontmost is true) '
                      'to get (name of front window) & " - " & name')
            return subprocess.run(["osascript", "-e", script], capture_output=True, text=True, timeout=5).stdout.strip()
        if shutil.which("xdotool"):
            for query in (["getactivewindow"], ["getwindowfocus"]):
                out = subprocess.run(["xdotool", *query, "getwindowname"], capture_output=True, text=True, timeout=5)
                if out.returncode == 0 and out.stdout.strip():
                    return out.stdout.strip()
    except (OSError, subprocess.SubprocessError, ImportError):
        pass
    return None


def raise_window(title_pattern: str) -> bool:
    """Bring forward a window whose title matches the regular expression; False where it cannot.

    Linux: xdotool (``windowactivate`` needs a window manager; ``windowfocus`` works without one, as
    under a bare Xvfb). Windows: pygetwindow. macOS: not done (False); the title check before every
    key still keeps it from typing into another application.
    """
    try:
        if sys.platform == "win32":
            import pygetwindow

            found = [w for w in pygetwindow.getAllWindows() if re.search(title_pattern, w.title, re.IGNORECASE)]
            if found:
                found[0].activate()
            return bool(found)
        if sys.platform != "darwin" and shutil.which("xdotool"):
            ids = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", title_pattern],
                                 capture_output=True, text=True, timeout=5).stdout.split()
            for verb in ("windowactivate", "windowfocus"):
                if ids and subprocess.run(["xdotool", verb, "--sync", ids[-1]], capture_output=True,
                                          timeout=5).returncode == 0:
                    return True
    except (OSError, subprocess.SubprocessError, ImportError):
        pass
    return False


def _escape(text: str) -> str:
    """``re.escape`` for a pattern that xdotool's POSIX regex reads too: spaces stay plain."""
    return re.escape(text).replace("\\ ", " ")


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
    """The keys mode's hands (``keepalive.hands.protocol.Hands``): blind but for reference images."""

    sees_page = False

    def __init__(self, cfg, gui=None, clock=time.monotonic, sleep=time.sleep, focus=focused_window_title,
                 idle=input_idle_seconds, raise_window=raise_window):
        self.cfg = cfg
        self.seq = load_sequences(cfg.keys, getattr(cfg, "page", {}).get("language", "auto"))
        self._gui = gui
        self.focus = focus
        self.idle = idle
        self.raise_window = raise_window
        self.clock = clock
        self.sleep = sleep
        self.proc = None
        self.log: list[str] = []  # what it typed, or why it did not
        self._said: set[str] = set()

    @property
    def gui(self):
        if self._gui is None:
            import pyautogui  # connects to the display at import: only when keys mode runs

            pyautogui.FAILSAFE = True
            self._gui = pyautogui
        return self._gui

    # --- the browser window ---------------------------------------------------------------------

    @property
    def title_pattern(self) -> str:
        """A browser window showing the notebook or Google's pop-up: "<page> - <browser>"."""
        pages = "|".join(_escape(w) for w in self.seq["window_titles"])
        browsers = "|".join(_escape(b) for b in self.seq["browser_names"])
        return f"({pages}).*({browsers})\\s*$"

    def is_browser_title(self, title: str) -> bool:
        return re.search(self.title_pattern, title, re.IGNORECASE) is not None

    def start(self) -> None:
        self.open()

    def open(self) -> None:
        command = [arg.replace("{url}", self.cfg.url) for arg in self.seq["browser_command"]]
        if command:
            launched = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if self.proc is None or self.proc.poll() is not None:
                self.proc = launched  # a second launch only hands the URL to the running browser and exits
        else:
            webbrowser.open(self.cfg.url, new=2)
        self._wait_until_loaded()

    def _wait_until_loaded(self) -> bool:
        """Wait ``load_seconds`` (Colab binds its keys a while after its title shows), then until the focused
        window (the one just opened) shows the notebook's title, at most ``load_max_seconds`` in all. A loaded machine or a slow network may
        take long to show it; typing before it would only close the window again next round. Where window
        titles cannot be read, ``load_seconds`` is all it can wait. False if the window never came."""
        started = self.clock()
        self.sleep(float(self.seq["load_seconds"]))
        while True:
            # the window just opened has the focus; raising one by its title could pick the old one, still closing
            if self._focused() is not False:
                return True
            if self.clock() - started >= float(self.seq["load_max_seconds"]):
                self._note("the notebook's window did not show its title in time")
                return False
            self.sleep(0.5)

    def reopen(self) -> bool:
        """Close the tab it opened, then open the notebook again: never a pile of tabs.

        It brings the notebook's window forward first. A notebook window it cannot type into makes
        it open nothing (the next round tries again); no notebook window at all (the user closed
        it) makes it open one. Where titles cannot be read it presses close-tab after the idle wait.
        """
        if self.raise_window(self.title_pattern) or self._focused() is not False:
            if not self.play(self.seq["close_tab"]):
                return False
            self.sleep(1.0)
        self.open()
        return True

    def release_runtime(self) -> bool:
        """Not done in keys mode: a menu it cannot see is not clicked blindly. The user is told instead."""
        self._note("keys mode does not delete the runtime: use Runtime > Disconnect and delete runtime in Colab")
        return False

    def close(self) -> None:
        if self.proc is not None and not self.cfg.browser.keep_open:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def _focused(self) -> bool | None:
        """Whether the notebook's (or the pop-up's) browser window has the focus; None where unknown."""
        title = self.focus()
        return None if title is None else self.is_browser_title(title)

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
        path = Path(image) if Path(image).is_absolute() else Path(str(resources.files("keepalive.hands").joinpath("keys_images", image)))
        if not path.exists():
            return False
        fuzzy = {"confidence": confidence} if importlib.util.find_spec("cv2") else {}  # exact without OpenCV
        try:
            return self.gui.locateOnScreen(str(path), grayscale=True, **fuzzy) is not None
        except self.gui.ImageNotFoundException:
            return False
        except Exception as exc:  # no screenshot tool: keys mode still works on the heartbeat
            if str(exc) not in self._said:
                self._said.add(str(exc))
                self._note(f"screen matching unavailable: {exc}")
            return False

    # --- doing --------------------------------------------------------------------------------------

    def act(self, action: Action) -> bool:
        if action is Action.RUN_ALL:
            return self.reopen() and self.play(self.seq["run_all"]) and self.play(self.seq["after_run_all"])
        if action is Action.RELOAD:
            return self.reopen()
        if action is Action.DISMISS_GPU_LIMIT:
            return self.play(self.seq["dismiss"])
        return False

    def play(self, steps: list[str]) -> bool:
        """Play a key sequence; stop (False) as soon as the mouse moves or it would type into another window."""
        if not self._wait_for_idle_user():
            return False
        mouse = self.gui.position()
        for step in steps:
            if step.startswith("wait:"):
                self.sleep(float(step[5:]))
            elif step.startswith("@"):
                if not self.play(self.seq[step[1:]]):
                    return False
                mouse = self.gui.position()
            elif self.gui.position() != mouse:
                self._note(f"not typing {step!r}: the user moved the mouse")
                return False
            else:
                if not self._focus_for_typing():
                    self._note(f"not typing {step!r}: the focused window is {self.focus()!r}")
                    return False
                self._press(step)
        return True

    def _focus_for_typing(self) -> bool:
        """Whether the focused window is the notebook's or Google's pop-up, waiting for it a while.

        A window just opened (the Drive pop-up) is titled "Untitled" until its page loads: wait for its title,
        at most ``focus_wait_seconds``; then bring the notebook's window forward, or refuse.
        """
        deadline = self.clock() + float(self.seq["focus_wait_seconds"])
        while self._focused() is False:
            if self.clock() >= deadline:
                return bool(self.raise_window(self.title_pattern) and self._focused())
            self.sleep(0.25)
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

