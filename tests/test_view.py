"""The live view: what it shows, how heartbeat age is coloured, that it never contradicts itself, that done
looks like success, and plain lines where no terminal is."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from colab_side import heartbeat as hb
from keepalive.status import describe, render_text
from keepalive.view import LiveView, plain_line, render

GRACE = 60.0


def info_for(verdict="fresh", age=5.0, state=None, **beat_fields):
    fields = dict(job="castle", session="s1", seq=12, time="2026-01-01T10:00:00+00:00", phase="computing",
                  session_started="2026-01-01T09:00:00+00:00", node="DepthMap_1", chunk=3, chunks_done=40,
                  chunks_total=160, progress=0.25, eta_seconds=3 * 3600 + 25 * 60, drive_free_bytes=7 * 2**30,
                  last_log_line="DepthMap_1 chunk 3/8 done")
    fields.update(beat_fields)
    state = {"job": "castle", "restarts": 2, "last_action": "run_all",
             "last_reason": "job dead (heartbeat stale); page idle: run_all", **(state or {})}
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
                     "run_all (job dead (heartbeat stale)", "7.0 GB", "DepthMap_1 chunk 3/8 done"):
        assert expected in text, expected


def test_an_eta_not_measured_yet_says_estimating_in_the_panel_and_in_status():
    info = info_for(eta_seconds=None)
    assert "ETA estimating" in shown(render(info, GRACE)) and "ETA -" not in shown(render(info, GRACE))
    assert "ETA estimating" in render_text(info, GRACE)
    assert ", ETA 3:25:00" in render_text(info_for(), GRACE)


def colour_of(info, marker: str) -> str:
    line = next(line for line in shown(render(info, GRACE), color=True).splitlines() if marker in line)
    code = re.search(rf"\x1b\[([0-9;]+)m[^\x1b]*{re.escape(marker)}", line).group(1)  # the style of the value
    return {"31": "red", "32": "green", "33": "yellow", "36": "cyan"}[code.split(";")[-1]]


def heartbeat_line_colour(info) -> str:
    return colour_of(info, "sync lag")


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
    assert "castle" in text and "none yet (no session of this job has written one)" in text
    assert "heartbeat=none-yet" in plain_line(info)


def test_a_heartbeat_within_its_grace_is_not_called_fresh_beside_a_lost_runtime():
    state = {"cause": "RUNTIME_LOST", "note": "job dead (the page showed it gone); page disconnected: reconnect"}
    info = info_for(state=state)
    text = shown(render(info, GRACE))
    assert "fresh" not in text and "last changed 0:00:05 ago, before the runtime was lost (no new session yet)" in text
    assert heartbeat_line_colour(info) == "yellow"
    assert "RUNTIME_LOST: job dead (the page showed it gone)" in text
    assert "heartbeat=before-loss" in plain_line(info) and "heartbeat=fresh" not in plain_line(info)
    assert heartbeat_line_colour(info_for()) == "green"  # no cause: the same heartbeat is fresh


def test_a_heartbeat_written_long_before_this_pc_saw_it_is_not_called_fresh():
    info = describe(hb.Heartbeat(job="castle", session="s1", seq=1, time="2026-01-01T08:00:00+00:00",
                                 phase="computing"), "fresh", 3.0, 2 * 3600.0, {"job": "castle"})
    text = shown(render(info, GRACE))
    assert "changed 0:00:03 ago here, but written 2:00:00 before this PC saw it" in text and "fresh" not in text
    assert colour_of(info, "before this PC saw it") == "yellow"


def test_a_job_that_never_ran_is_being_started_not_dead():
    state = {"job": "castle", "cause": "RUNTIME_LOST", "last_action": "reconnect",
             "note": "job dead (the page showed it gone); page disconnected: reconnect"}
    text = shown(render(describe(None, "missing", 1.0, None, state), GRACE))
    assert "STARTING: no session of this job runs yet; starting one (reconnect)" in text and "job dead" not in text


DONE = dict(phase="done", node=None, chunk=None, chunks_done=16, chunks_total=16, progress=1.0, eta_seconds=0.0,
            cause=None, reason="result published to /content/drive/MyDrive/keepalive/castle/result",
            time="2026-01-02T12:14:03+00:00")
DONE_STATE = {"restarts": 3, "cause": "JOB_DONE", "note": "the job is done", "last_action": "complete_drive_popup",
              "last_reason": "job dead (the page showed it gone); page drive_popup: complete_drive_popup",
              "last_action_time": "2026-01-01T10:25:00+00:00", "job_started": "2026-01-01T10:00:00+00:00",
              "chunks_durable_on_pc": 16, "result_files_on_pc": 3}


def test_done_looks_like_success_with_wall_time_restarts_and_the_result():
    info = info_for(state=DONE_STATE, **DONE)
    assert info["job_seconds"] == 26 * 3600 + 14 * 60 + 3
    text = shown(render(info, GRACE))
    done = ("DONE: the job finished — 26:14:03 from its first start, 3 restarts, "
            "result: 3 files verified in keepalive/castle/result/ on Drive")
    assert done in text and "JOB_DONE" not in text and "ETA" not in text
    assert "16/16 chunks, 16 saved on Drive" in text
    assert colour_of(info, "DONE: the job finished") == "green"
    coloured = shown(render(info, GRACE), color=True)
    assert "\x1b[1;31m" not in coloured  # nothing bold red
    assert "\x1b[32m╭" in coloured  # a green border
    assert "heartbeat=final" in plain_line(info) and f"| {done}" in plain_line(info)


def test_the_last_action_shows_its_age_and_is_not_current_in_plain_lines_once_done():
    info = info_for(state=DONE_STATE, **DONE)
    assert "complete_drive_popup 0:05:00 ago (job dead" in shown(render(info, GRACE))
    assert "action=None" in plain_line(info)
    computing = info_for(state={"last_action_time": "2026-01-01T10:29:30+00:00"})
    assert "run_all 0:00:30 ago (job dead (heartbeat stale)" in shown(render(computing, GRACE))
    assert "action=None" in plain_line(computing)  # the recovery is over: no cause, nothing being done
    acting = info_for(state={"cause": "RUNTIME_LOST", "note": "run_all sent 3 s ago; page idle"})
    assert "action=run_all cause=RUNTIME_LOST" in plain_line(acting)


def test_a_failure_says_what_to_do_in_red():
    info = info_for(phase="failed", cause="CODE_ERROR", reason="DepthMap_1 ended in ERROR in 2 sessions",
                    action="look at logs/ and fix the input", state={"cause": "CODE_ERROR"})
    text = shown(render(info, GRACE))
    assert "CODE_ERROR: DepthMap_1 ended in ERROR in 2 sessions — to do: look at logs/ and fix the input" in text
    assert colour_of(info, "CODE_ERROR: DepthMap_1") == "red"


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
    info = describe(None, "corrupt", None, None, {"job": "castle"}, error="heartbeat is not UTF-8 text")
    assert "heartbeat is not UTF-8 text" in shown(render(info, GRACE))
    assert "heartbeat unreadable: heartbeat is not UTF-8 text" in render_text(info)


@pytest.mark.parametrize("phase,cause,watched,code", [
    ("computing", None, True, 0), ("computing", None, False, 4), (None, None, False, 4),
    ("done", "JOB_DONE", False, 0), ("failed", "CODE_ERROR", True, 1), ("blocked", "DRIVE_FULL", True, 1),
    ("computing", "THRASHING", False, 1), ("computing", "HEARTBEAT_STALLED", True, 0),
    (None, "OTHER_JOB", True, 1), ("computing", "CAPTCHA", True, 1), ("computing", "LOGIN_REQUIRED", True, 1),
    ("computing", "COLAB_POLICY", True, 1), ("computing", "CAPTCHA", False, 4), ("computing", "OFFLINE", True, 0),
])
def test_status_exit_code_says_what_needs_doing(phase, cause, watched, code):
    from keepalive.status import exit_code

    assert exit_code({"phase": phase, "cause": cause, "watched_by": {"pid": 1} if watched else None}) == code


def test_giving_up_is_said_in_red_with_the_reason():
    state = {"cause": "THRASHING", "note": "7 restarts in 3 h without progress: giving up"}
    info = info_for(state=state)
    assert "THRASHING: 7 restarts in 3 h without progress: giving up" in shown(render(info, GRACE))
    assert colour_of(info, "THRASHING: 7 restarts") == "red"
