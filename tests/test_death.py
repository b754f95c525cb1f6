"""The death certificate's rules, from recorded heartbeat sequences: one sequence per cause."""

import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from colab_side import heartbeat as hb
from keepalive.death import infer

GIB = 1 << 30
START = datetime.datetime(2026, 11, 2, 8, 0, tzinfo=datetime.timezone.utc)


def beats(minutes, **vitals):
    """A session's beats at these minutes after its start; ``vitals`` give each field per beat (a list) or for all."""
    out = []
    for i, minute in enumerate(minutes):
        fields = {k: (v[i] if isinstance(v, list) else v) for k, v in vitals.items()}
        fields.setdefault("uptime_seconds", 120 + minute * 60)
        out.append(hb.Heartbeat(job="seed", session="s1", seq=i + 1, phase=fields.pop("phase", "computing"),
                                time=(START + datetime.timedelta(minutes=minute)).isoformat(),
                                session_started=START.isoformat(), **fields))
    return out


HEALTHY = dict(ram_used_bytes=4 * GIB, ram_total_bytes=12 * GIB, gpu_utilization=0.8)


def test_uptime_near_twelve_hours_is_the_lifetime():
    death = infer(beats([700, 705, 710], **HEALTHY, uptime_seconds=[42_100, 42_400, 42_700]))
    assert (death.cause, death.certainty) == ("lifetime", "likely")
    assert "11h51" in death.evidence and "12 h" in death.evidence


def test_uptime_near_twenty_four_hours_is_the_lifetime():
    assert infer(beats([1430], **HEALTHY, uptime_seconds=86_000)).cause == "lifetime"


def test_ram_near_full_in_the_last_beats_is_out_of_memory():
    death = infer(beats([60, 65, 70], ram_used_bytes=[9 * GIB, 11 * GIB, int(11.8 * GIB)], ram_total_bytes=12 * GIB,
                        gpu_utilization=0.9))
    assert (death.cause, death.certainty) == ("out_of_memory", "likely")
    assert "98%" in death.evidence
    assert infer(beats([60], ram_used_bytes=int(11 * GIB), ram_total_bytes=12 * GIB)).certainty == "possible"


def test_a_gpu_idle_for_long_before_the_end_is_idle_reclaim():
    death = infer(beats([100, 120, 140, 160], **{**HEALTHY, "gpu_utilization": [0.0, 0.01, 0.0, 0.0]}))
    assert (death.cause, death.certainty) == ("idle_reclaim", "possible")
    assert "1h00" in death.evidence
    assert infer(beats([100, 120, 140, 160], **{**HEALTHY, "gpu_utilization": [0.0, 0.6, 0.0, 0.0]})).cause \
        == "unknown"  # busy in between: not idle for long


def test_the_gpu_limit_dialog_at_the_next_connect_is_the_usage_limit():
    death = infer(beats([200, 205], **HEALTHY), pages_after=["disconnected", "gpu_limit"])
    assert (death.cause, death.certainty) == ("usage_limit", "likely")
    assert "GPU usage-limit dialog" in death.evidence


def test_the_notebooks_own_drive_end_is_a_drive_outage():
    last = beats([300], **HEALTHY, phase="restartable", cause="DRIVE_TIMEOUT", reason="the mount hung")
    death = infer(beats([295], **HEALTHY) + last, pages_after=["gpu_limit"])  # its own word comes first
    assert (death.cause, death.certainty) == ("drive_outage", "certain")
    assert "DRIVE_TIMEOUT" in death.evidence and "the mount hung" in death.evidence
    assert infer(beats([1], phase="failed", cause="CODE_ERROR")).cause == "notebook"


def test_a_captcha_or_a_sign_out_is_a_human_state():
    assert infer(beats([50], **HEALTHY), pages_after=["captcha"]).cause == "human"
    death = infer(beats([50], **HEALTHY), pages_after=["signed_out", "gpu_limit"])
    assert (death.cause, death.certainty) == ("human", "likely") and "signed out" in death.evidence


def test_nothing_telling_is_unknown_with_what_was_seen():
    death = infer(beats([130, 135], **HEALTHY), pages_after=["disconnected", "idle", "drive_popup", "running"])
    assert (death.cause, death.certainty) == ("unknown", "unknown")
    assert death.evidence == "last beat computing; uptime 2h17; RAM 33%; GPU 80%; page disconnected"
    assert infer([]).evidence == "no heartbeat of this session was read"


optional_int = st.one_of(st.none(), st.integers(min_value=-(1 << 62), max_value=1 << 62))
beat = st.builds(
    hb.Heartbeat, job=st.just("j"), session=st.just("s"), seq=st.integers(0, 10), phase=st.sampled_from(list(hb.Phase)),
    time=st.one_of(st.text(max_size=5), st.datetimes().map(lambda d: d.isoformat())),
    session_started=st.one_of(st.text(max_size=5), st.datetimes().map(lambda d: d.isoformat())),
    cause=st.one_of(st.none(), st.sampled_from(list(hb.Cause)), st.text(max_size=5)),
    reason=st.one_of(st.none(), st.text(max_size=8)),
    ram_used_bytes=optional_int, ram_total_bytes=optional_int, uptime_seconds=optional_int,
    gpu_utilization=st.one_of(st.none(), st.floats(allow_nan=True)))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(beat, st.none(), st.text(max_size=3)), max_size=6), st.lists(st.text(max_size=12), max_size=4))
def test_any_sequence_gets_exactly_one_cause_with_evidence(seq, pages):
    death = infer(seq, pages_after=pages)
    assert death.cause in {"lifetime", "out_of_memory", "idle_reclaim", "usage_limit", "drive_outage", "notebook",
                           "human", "unknown"}
    assert death.certainty in {"certain", "likely", "possible", "unknown"}
    assert death.evidence and "\n" not in death.evidence
