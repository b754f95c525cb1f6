"""The heartbeat reader: typed field by field, and nothing a file holds makes it, or the views, raise."""

from __future__ import annotations

import dataclasses
import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from colab_side import heartbeat as hb
from keepalive.status import describe, render_text
from keepalive.view import plain_line, render

GOOD = {"job": "j", "session": "s", "seq": 3, "time": "2026-01-01T00:00:00+00:00", "phase": "computing"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
field_names = st.sampled_from([f.name for f in dataclasses.fields(hb.Heartbeat) if f.name not in (*GOOD, "schema")])
# Mostly readable heartbeats whose other fields hold anything at all: what reaches the views.
heartbeats = st.builds(lambda extra: {**GOOD, **extra}, st.dictionaries(field_names, json_values, max_size=8))


def text_of(data: dict) -> str:
    return json.dumps(data)


def shown(info: dict) -> str:
    console = Console(file=io.StringIO(), width=100)
    console.print(render(info, 60.0))
    return console.file.getvalue() + plain_line(info) + render_text(info)


def test_every_field_has_a_check():
    assert set(hb._CHECKS) == {f.name for f in dataclasses.fields(hb.Heartbeat)}


def test_a_written_heartbeat_reads_back_equal():
    beat = hb.Heartbeat(job="castle", session="abc", seq=7, time="2026-01-01T00:00:00+00:00", phase=hb.BLOCKED,
                        node="DepthMap_1", chunk=2, progress=0.5, eta_seconds=12.5, cause=hb.DRIVE_FULL,
                        reason="r", action="a", warnings=["12 h"],
                        history=["2026-01-01T00:00:00+00:00 session old superseded by session abc"])
    again = hb.parse(beat.to_json().encode())
    assert again == beat and again.phase is hb.Phase.BLOCKED and again.cause is hb.Cause.DRIVE_FULL


@pytest.mark.parametrize("data,why", [
    (b"\xff\xfe{", "not UTF-8"),
    (b"\x00\x01\x02binary", "not valid JSON"),
    (text_of(GOOD)[:-9].encode(), "half-synced"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"seq": NaN}', "NaN"),
    (b"1" * 5000, "not valid JSON"),
    (b"[]", "not a JSON object"),
    (text_of({**GOOD, "seq": "3"}).encode(), "seq"),
    (text_of({**GOOD, "seq": True}).encode(), "seq"),
    (text_of({**GOOD, "session": 5}).encode(), "session"),
    (text_of({**GOOD, "phase": "dancing"}).encode(), "phase"),
    (text_of({**GOOD, "job": "\ud800"}).encode(), "job"),
    (text_of({**GOOD, "schema": hb.SCHEMA_VERSION + 1}).encode(), "update colab-keepalive"),
    (text_of({**GOOD, "schema": "1"}).encode(), "schema"),
    (text_of({"job": "j"}).encode(), "lacks session, seq, time, phase"),
    (b"x" * (hb.MAX_BYTES + 1), "too big"),
])
def test_what_cannot_be_read_is_one_line_saying_why(data, why):
    with pytest.raises(hb.HeartbeatError) as caught:
        hb.parse(data)
    assert why in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("name,value", [
    ("progress", "50%"), ("progress", 1.5), ("progress", -0.1), ("warnings", 5), ("warnings", ["ok", 3]),
    ("history", "superseded"), ("history", [None]),
    ("chunks_done", -1), ("chunks_done", 2.5), ("chunks_done", True), ("eta_seconds", "soon"), ("node", 7),
    ("cause", "A_CAUSE_FROM_THE_FUTURE"), ("last_log_line", None), ("drive_free_bytes", "7 GB"),
])
def test_a_wrong_optional_field_is_dropped_and_the_rest_kept(name, value):
    beat = hb.parse(text_of({**GOOD, name: value, "chunks_total": 9}))
    default = hb.Heartbeat(**GOOD)
    assert getattr(beat, name) == getattr(default, name)
    assert beat.chunks_total == 9 and beat.seq == 3


def test_unknown_fields_of_an_older_or_same_schema_are_ignored():
    assert hb.parse(text_of({**GOOD, "future_field": {"a": [1]}})).seq == 3


def test_read_tells_a_missing_file_from_a_bad_one(tmp_path):
    with pytest.raises(FileNotFoundError):
        hb.read(tmp_path / "none.json")
    (tmp_path / "bad.json").write_bytes(b"\xff")
    with pytest.raises(hb.HeartbeatError):
        hb.read(tmp_path / "bad.json")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_arbitrary_bytes_read_or_raise_heartbeat_error_only(data):
    try:
        beat = hb.parse(data)
    except hb.HeartbeatError:
        return
    assert isinstance(beat.seq, int) and beat.phase in hb.PHASES


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_arbitrary_json_reads_or_raises_heartbeat_error_only(value):
    try:
        hb.parse(json.dumps(value))
    except hb.HeartbeatError:
        pass


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(heartbeats, st.sampled_from(["fresh", "stale", "missing", "corrupt"]),
       st.none() | st.floats(allow_nan=True, allow_infinity=True))
def test_every_readable_heartbeat_is_typed_and_every_view_shows_it(data, verdict, age):
    beat = hb.parse(text_of(data).encode())
    for name, check in hb._CHECKS.items():
        assert check(getattr(beat, name)), name
    text = shown(describe(beat, verdict, age, age, {"job": "j"}, wall=0.0))
    assert "j" in text


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.text(max_size=12) | st.sampled_from(
    ["job", "phase", "progress", "chunks_done", "chunks_total", "eta_seconds", "heartbeat", "heartbeat_age_seconds",
     "sync_lag_seconds", "restarts", "warnings", "history", "reason", "cause", "chunk", "drive_free_bytes", "last_log_line",
     "session_uptime_seconds", "last_action", "what_to_do"]), json_values, max_size=12))
def test_the_views_show_any_dict_of_json_values(info):
    shown(info)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6), json_values)
def test_describe_takes_any_saved_daemon_state(state, verdict):
    shown(describe(None, verdict, None, None, state, wall=0.0))


def test_control_characters_from_the_notebook_do_not_reach_the_terminal():
    beat = hb.parse(text_of({**GOOD, "last_log_line": "done\x1b[2J\nnext", "node": "Depth\rMap"}))
    info = describe(beat, "fresh", 1.0, 1.0, {})
    line = plain_line(info)
    assert "\x1b" not in line and "\n" not in line and "\r" not in line and "Depth" in line


class Clocks:
    """The loop's clock and the PC's wall clock, moved together by the test."""

    def __init__(self, offset=0.0):
        self.now, self.offset = 1000.0, offset

    def mono(self):
        return self.now

    def wall(self):
        return 1_700_000_000.0 + self.now + self.offset


def write_beat(path, seq, written_wall):
    import datetime

    stamp = datetime.datetime.fromtimestamp(written_wall, datetime.timezone.utc).isoformat()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(hb.Heartbeat(job="j", session="s", seq=seq, time=stamp, phase=hb.COMPUTING).to_json())


@pytest.mark.parametrize("offset", [-90.0, 0.0, 240.0])  # the PC's clock behind, right, ahead of Colab's
def test_the_watch_never_dates_a_beat_earlier_than_it_was_written(tmp_path, offset):
    from keepalive.heartbeat_watch import HeartbeatWatch

    clocks = Clocks(offset)
    watch = HeartbeatWatch(tmp_path, "j", 60.0, clock=clocks.mono, wall=clocks.wall)
    path = hb.heartbeat_path(tmp_path, "j")
    for seq, lag in enumerate([40.0, 5.0, 110.0, 70.0, 5.0, 120.0], start=1):
        written = clocks.now  # on the loop's clock
        write_beat(path, seq, clocks.wall() - offset)  # Colab's clock
        clocks.now += lag
        seen = watch.poll()
        assert seen.written_at >= written and seen.written_at <= clocks.now
        assert seen.sync_lag == pytest.approx(max(0.0, lag + offset))
        clocks.now += 1


def test_the_watch_says_how_long_the_heartbeat_has_been_unreadable_and_why(tmp_path):
    from keepalive.heartbeat_watch import HeartbeatWatch
    from keepalive.states import Verdict

    clocks = Clocks()
    watch = HeartbeatWatch(tmp_path, "j", 60.0, clock=clocks.mono, wall=clocks.wall)
    path = hb.heartbeat_path(tmp_path, "j")
    write_beat(path, 1, clocks.wall())
    assert watch.poll().verdict is Verdict.FRESH
    path.write_bytes(b"\xff")
    first = watch.poll()
    clocks.now += 100
    later = watch.poll()
    assert first.verdict is later.verdict is Verdict.CORRUPT and "UTF-8" in later.error
    assert first.unreadable_for == 0 and later.unreadable_for == 100 and later.beat.seq == 1
    write_beat(path, 2, clocks.wall())
    assert watch.poll().unreadable_for is None
