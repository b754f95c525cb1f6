"""The estimate of when the latest heartbeat was written is never earlier than the truth, whatever the clocks do:
the PC's wall clock stepping either way, a new VM whose clock is behind or ahead, a VM's clock stepping."""

import dataclasses
import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from colab_side import heartbeat as hb
from keepalive.heartbeat_watch import BeatTracker

EPOCH = 1_790_000_000.0


def stamp(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat(timespec="microseconds")


@dataclasses.dataclass
class Clocks:
    """The truth a trace is made of: loop time of each write, the VM's and the PC's wall clocks' offsets."""
    t: float = 0.0  # when the beat is written, on the PC's loop clock
    seen: float = 0.0  # when the PC first sees it
    vm: float = 0.0  # the VM's clock minus the truth
    pc: float = 0.0  # the PC's wall clock minus the loop clock
    session: int = 1
    written: float = EPOCH


steps = st.fixed_dictionaries({
    "gap": st.floats(0.5, 300),  # since the previous write
    "delay": st.floats(0, 900),  # Drive's sync delay for this beat
    "pc_step": st.one_of(st.just(0.0), st.floats(-86_400, 86_400)),  # the PC's wall clock set
    "vm": st.sampled_from(["same", "new_session", "forward", "back"]),
    "amount": st.floats(0, 86_400),
})


@settings(max_examples=300, deadline=None)
@given(st.lists(steps, min_size=1, max_size=60))
def test_written_at_is_never_earlier_than_the_truth_under_clock_steps(trace):
    tracker, clocks = BeatTracker(grace_seconds=300), Clocks()
    for seq, step in enumerate(trace, start=1):
        clocks.t += step["gap"]
        clocks.pc += step["pc_step"]
        if step["vm"] == "new_session":
            clocks.session += 1
            clocks.vm = step["amount"] - 43_200  # a new VM's clock, behind or ahead
        elif step["vm"] == "forward":
            clocks.vm += step["amount"]
        elif step["vm"] == "back":  # stepped back: the beat's time is before the previous beat's
            clocks.vm -= step["gap"] + 1 + step["amount"]
        written = EPOCH + clocks.t + clocks.vm
        clocks.seen = max(clocks.seen + 0.01, clocks.t + step["delay"])  # Drive shows beats in order
        beat = hb.Heartbeat(job="j", session=f"s{clocks.session}", seq=seq, time=stamp(written),
                            phase=hb.COMPUTING)
        view = tracker.seen(beat, clocks.seen, EPOCH + clocks.seen + clocks.pc)
        assert clocks.t - 1e-3 <= view.written_at <= clocks.seen + 1e-3


def test_without_steps_the_floor_still_cancels_a_constant_offset():
    tracker = BeatTracker(grace_seconds=300)
    offset = 3_600  # the PC's clock an hour ahead of the VM's
    tracker.seen(hb.Heartbeat(job="j", session="s", seq=1, time=stamp(EPOCH + 100), phase=hb.COMPUTING),
                 105, EPOCH + 105 + offset)  # 5 s of sync delay: the floor
    view = tracker.seen(hb.Heartbeat(job="j", session="s", seq=2, time=stamp(EPOCH + 130), phase=hb.COMPUTING),
                        200, EPOCH + 200 + offset)  # 70 s late
    assert abs(view.written_at - 135) < 1e-3  # 130 written + the 5 s floor, never earlier than the truth (130)
