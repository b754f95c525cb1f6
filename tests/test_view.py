"""The live view: what it shows, how heartbeat age is coloured, and plain lines where no terminal is."""

from __future__ import annotations

import io
import re

from rich.console import Console

from colab_side import heartbeat as hb
from keepalive.status import describe
from keepalive.view import LiveView, plain_line, render

GRACE = 60.0


def info_for(verdict="fresh", age=5.0, **beat_fields):
    fields = dict(job="castle", session="s1", seq=12, time="2026-01-01T10:00:00+00:00", phase="computing",
                  session_started="2026-01-01T09:00:00+00:00", node="DepthMap_1", chunk=3, chunks_done=40,
                  chunks_total=160, progress=0.25, eta_seconds=3 * 3600 + 25 * 60, drive_free_bytes=7 * 2**30,
                  last_log_line="DepthMap_1 chunk 3/8 done")
    fields.update(beat_fields)
    state = {"job": "castle", "restarts": 2, "last_action": "run_all",
             "last_reason": "job dead (heartbeat stale); page idle: run_all"}
    wall = hb.timestamp("2026-01-01T10:30:00+00:00")
    return describe(hb.Heartbeat(**fields), verdict, age, 4.2, state, wall=wall)


def shown(renderable, color=False) -> str:
    console = Console(file=io.StringIO(), width=140, force_terminal=color, color_system="standard" if color else None)
    console.print(renderable)
    return console.file.getvalue()


def test_the_panel_shows_everything_the_user_watches():
    text = shown(render(info_for(), GRACE))
    for expected in ("castle", "computing", "DepthMap_1", "chunk 3", "25.0%", "40/160 chunks", "ETA 3:25:00",
                     "fresh", "age 0:00:05", "sync lag 0:00:04", "up 1:30:00", "restarts 2",
                     "run_all: job dead (heartbeat stale)", "7.0 GB", "DepthMap_1 chunk 3/8 done"):
        assert expected in text, expected


def heartbeat_line_colour(info) -> str:
    line = next(line for line in shown(render(info, GRACE), color=True).splitlines() if "sync lag" in line)
    code = re.search(r"\x1b\[([0-9;]+)m[^\x1b]*sync lag", line).group(1)  # the style of the value itself
    return {"31": "red", "32": "green", "33": "yellow"}[code.split(";")[-1]]


def test_heartbeat_age_turns_yellow_then_red():
    assert heartbeat_line_colour(info_for(age=5.0)) == "green"
    assert heartbeat_line_colour(info_for(age=GRACE * 0.8)) == "yellow"
    assert heartbeat_line_colour(info_for(verdict="stale", age=GRACE * 2)) == "red"
    assert heartbeat_line_colour(info_for(verdict="corrupt", age=None)) == "red"


def test_the_sessions_history_is_shown_and_in_status():
    entry = "2026-01-01T09:00:05+00:00 session a1 superseded by session s1"
    info = info_for(history=[entry])
    assert info["history"] == [entry]
    assert f"history: {entry}" in shown(render(info, GRACE))


def test_a_final_word_is_shown_with_what_to_do():
    info = info_for(phase="blocked", cause="NO_GPU", reason="the runtime has no GPU",
                    action="Runtime > Change runtime type > GPU")
    text = shown(render(info, GRACE))
    assert "NO_GPU: the runtime has no GPU" in text and "Change runtime type" in text


def test_nothing_known_yet_still_renders():
    info = describe(None, "missing", None, None, {"job": "castle"})
    text = shown(render(info, GRACE))
    assert "castle" in text and "missing" in text
    assert "heartbeat=missing" in plain_line(info)


def test_without_a_terminal_one_plain_line_per_change():
    stream = io.StringIO()
    with LiveView(stream=stream) as view:
        view.update(info_for())
        view.update(info_for())  # nothing changed: no new line
        view.update(info_for(chunk=4, chunks_done=41, progress=0.26))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert "\x1b" not in stream.getvalue()
    assert "phase=computing" in lines[0] and "node=DepthMap_1" in lines[0] and "chunk=3" in lines[0]
    assert "progress=25.0%" in lines[0] and "chunk=4" in lines[1] and "restarts=2" in lines[1]


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_on_a_terminal_the_live_panel_refreshes_at_most_twice_a_second():
    stream = FakeTerminal()
    view = LiveView(stream=stream)
    assert view.live is not None and 1 <= view.live.refresh_per_second <= 2
    with view:
        view.update(info_for())
    assert "DepthMap_1 chunk 3/8 done" in stream.getvalue() and "phase=" not in stream.getvalue()


def test_why_the_daemon_waits_is_shown_while_it_has_a_cause():
    state = {"job": "castle", "cause": "HEARTBEAT_STALLED",
             "note": "heartbeat source stalled: the page shows the job running, but no new heartbeat for 900 s"}
    info = describe(hb.Heartbeat(job="castle", session="s1", seq=1, time="t", phase="computing"), "stale", 900.0,
                    42.0, state)
    text = shown(render(info, GRACE))
    assert "HEARTBEAT_STALLED: heartbeat source stalled" in text
    assert "cause=HEARTBEAT_STALLED" in plain_line(info)


def test_an_unreadable_heartbeat_says_why():
    from keepalive.status import render_text

    info = describe(None, "corrupt", None, None, {"job": "castle"}, error="heartbeat is not UTF-8 text")
    assert "heartbeat is not UTF-8 text" in shown(render(info, GRACE))
    assert "heartbeat unreadable: heartbeat is not UTF-8 text" in render_text(info)
