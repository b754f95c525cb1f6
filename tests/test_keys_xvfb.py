"""Keys mode on a virtual screen: a real Chromium window, real keystrokes, the Colab simulator."""

from __future__ import annotations

import shutil
import time

import pytest

from keepalive.demo import Demo, browser_flags
from keepalive.states import PageState

pytestmark = [pytest.mark.xvfb,
              pytest.mark.skipif(not shutil.which("chromium"), reason="needs chromium (Debian: apt-get install chromium)")]


def test_keys_mode_runs_all_answers_the_dialogs_and_recovers_a_disconnect(xvfb_display, tmp_path):
    browser = ["chromium", *browser_flags(), "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'own-browser'}",
               "--window-position=0,0", "--window-size=1200,780", "--new-window", "{url}"]
    keys = {"browser_command": browser, "load_seconds": 4.0, "idle_seconds": 0.3}
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
        deadline = time.monotonic() + 10
        seen = demo.hands.observe().state
        while seen is not PageState.CAPTCHA and time.monotonic() < deadline:
            time.sleep(0.5)
            seen = demo.hands.observe().state
        assert seen is PageState.CAPTCHA
    finally:
        demo.hands.close()
        demo.stop()
