"""Keys mode on a virtual screen: a real Chromium window, real keystrokes, the Colab simulator."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from conftest import wait_for
from keepalive import config
from keepalive.hands import keys
from keepalive.demo import Demo
from keepalive.hands.browser import root_flags
from keepalive.hands.keys import KeyHands
from keepalive.states import Action, PageState

pytestmark = [pytest.mark.xvfb,
              pytest.mark.skipif(not shutil.which("chromium"), reason="needs chromium (Debian: apt-get install chromium)")]


def own_browser(tmp_path) -> dict:
    """The keys-mode settings for a user's own (non-automated) Chromium on the virtual screen."""
    browser = ["chromium", *root_flags(), "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'own-browser'}",
               "--window-position=0,0", "--window-size=1200,780", "--new-window", "{url}"]
    # At least 4 s after opening (a window whose title shows is not yet taking keys), then until the title shows.
    # Keys mode types blind: the waits between the dialogs' keys are doubled for a loaded test machine.
    return {"browser_command": browser, "load_seconds": 4.0, "load_max_seconds": 120.0, "idle_seconds": 0.3,
            "after_run_all": ["wait:4", "@authorship", "wait:4", "@drive_consent", "@drive_popup"],
            "drive_popup": ["wait:6", "enter", "wait:6", "space", "tab", "tab", "tab", "tab", "enter"]}


def test_keys_mode_runs_all_answers_the_dialogs_and_recovers_a_disconnect(xvfb_display, tmp_path):
    keys = own_browser(tmp_path)
    demo = Demo(tmp_path / "keys", headless=False, images=6, chunk_seconds=0.3, mode="keys", keys=keys).start()
    try:
        demo.inject_kills(1)
        code = demo.daemon.run()
        state = demo.sim.state()
        assert code == 0
        assert len(demo.kills) == 1 and state["run_all_count"] >= 2
        assert state["consent_granted"] and state["without_gpu_pressed"] == 0
        assert any(e.get("what") == "recovered" for e in demo.journal.events() if e.get("event") == "notification")
        assert demo.job.result_files()
        assert any(line.startswith("key ") for line in demo.hands.log)
        assert demo.hands.gui.FAILSAFE is True

        demo.sim.show_captcha()
        demo.hands.open()  # the daemon closed its browser when the job was done
        # a loaded machine may take long to draw the window: wait for the sight itself, with a deadline
        assert wait_for(lambda: demo.hands.observe().state is PageState.CAPTCHA, timeout=120)
    finally:
        demo.hands.close()
        demo.stop()


def _other_window(title: str):
    """A plain X window, as a terminal would be, that takes the keyboard focus from the browser."""
    from Xlib import X, display

    screen = display.Display()
    window = screen.screen().root.create_window(600, 500, 300, 100, 0, screen.screen().root_depth)
    window.set_wm_name(title)
    window.map()
    screen.sync()
    window.set_input_focus(X.RevertToParent, X.CurrentTime)
    screen.sync()
    return screen


def _notebook_windows(hands: KeyHands) -> list[str]:
    found = subprocess.run(["xdotool", "search", "--onlyvisible", "--pid", str(hands.proc.pid),
                            "--name", hands.title_pattern], capture_output=True, text=True)
    return found.stdout.split()


def test_run_all_takes_the_focus_back_and_leaves_one_notebook_window(xvfb_display, sleeper_sim, tmp_path):
    cfg = config.load(env={"KEEPALIVE_HOME": str(tmp_path / "home")}, origin=sleeper_sim.origin,
                      url=sleeper_sim.notebook_url, mode="keys")
    cfg.keys = own_browser(tmp_path)
    hands = KeyHands(cfg)
    hands.start()
    try:
        terminal = _other_window("me@pc: ~/src/colab-keepalive")
        assert not hands.is_browser_title(keys.focused_window_title())
        assert hands.act(Action.RUN_ALL)
        assert wait_for(lambda: sleeper_sim.state()["running"], timeout=240), sleeper_sim.state()
        state = sleeper_sim.state()
        assert state["run_all_count"] == 1 and state["authorship_accepted"] and state["consent_granted"]
        assert state["running"] and not state["popup_open"]
        assert wait_for(lambda: len(_notebook_windows(hands)) == 1, timeout=120)  # the old tab was closed
        terminal.close()
    finally:
        hands.close()
