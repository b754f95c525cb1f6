"""The supervisor over simulated days: sync stalls, offline periods, unreadable files and dead runtimes.

Pure: the real rules and the real heartbeat judge, driven through ``keepalive_sim.world`` on a
simulated clock (a day takes a second). What must hold: no Run all ever reaches a live job, every
dead runtime is restarted, a stall is told once and never restarted, THRASHING only for real crash loops.
"""

from __future__ import annotations

import random

import pytest

from keepalive.states import Notice
from keepalive.supervisor import SupervisorConfig
from keepalive_sim.world import Faults, SyncLag, World, run_trace

HOUR = 3600.0
DEFAULTS = SupervisorConfig()
POLL = 10.0  # the default poll_seconds


def day(seed: int, colab_clock_ahead: float = 0.0, **faults) -> dict:
    rng = random.Random(seed)
    faults = Faults(**faults)
    world = World(faults, SyncLag(rng, blocked=faults.stalls + faults.offline), colab_clock_ahead)
    return run_trace(world, DEFAULTS, 24, POLL)


# Drive for desktop paused 1.8 h (the case) and 30 min; the PC offline 40 min; deaths, some in them.
STALLS = [(2 * HOUR, 3.8 * HOUR), (15 * HOUR, 15.5 * HOUR)]
OFFLINE = [(9 * HOUR, 9 * HOUR + 2400)]
DEATHS = [1 * HOUR, 3 * HOUR, 5.5 * HOUR, 9.2 * HOUR, 12 * HOUR, 15.2 * HOUR, 18 * HOUR, 21 * HOUR, 23 * HOUR]


@pytest.mark.parametrize("seed,colab_clock_ahead", [(1, 0.0), (2, -300.0), (3, 300.0)])
def test_a_day_with_stalls_offline_periods_and_deaths(seed, colab_clock_ahead):
    result = day(seed, colab_clock_ahead, deaths=DEATHS, stalls=STALLS, offline=OFFLINE)
    assert result["run_all_to_live_jobs"] == 0
    assert result["deaths"] == len(DEATHS) and result["unrecovered"] == 0
    assert result["restarts"] == len(DEATHS) and result["stopped"] is None
    # a death outside stalls and offline periods is restarted within a minute (the page's word)
    quick = [d for d, death in zip(result["death_to_run_all"], DEATHS)
             if not any(a <= death <= b + 300 for a, b in STALLS + OFFLINE)]
    assert quick and max(quick) < 60


def test_a_long_sync_pause_under_a_running_job_is_told_once_and_never_restarted():
    result = day(4, stalls=[(1 * HOUR, 2.8 * HOUR)])
    assert result["restarts"] == 0 and result["run_all_to_live_jobs"] == 0 and result["stopped"] is None
    assert result["notices"] == [Notice.SOURCE_STALLED]


def test_the_pc_offline_with_the_runtime_alive_ends_in_a_reconnect_not_a_restart():
    result = day(5, offline=[(2 * HOUR, 3 * HOUR), (10 * HOUR, 10.2 * HOUR)])
    assert result["restarts"] == 0 and result["run_all_to_live_jobs"] == 0 and result["stopped"] is None


def test_a_heartbeat_unreadable_for_hours_is_told_and_a_death_then_still_restarted():
    result = day(6, unreadable=[(1 * HOUR, 6 * HOUR)], deaths=[3 * HOUR])
    assert result["restarts"] == 1 and result["run_all_to_live_jobs"] == 0
    assert Notice.HEARTBEAT_UNREADABLE in result["notices"] and result["notices"].count(
        Notice.HEARTBEAT_UNREADABLE) == 1


def test_a_runtime_that_dies_at_every_start_is_given_up_as_thrashing():
    deaths = [600.0 + i * 900.0 for i in range(40)]  # each session dies two minutes into computing
    world = World(Faults(deaths=deaths), SyncLag(random.Random(7)))
    world.chunk_seconds = 3 * HOUR  # no chunk is ever finished
    result = run_trace(world, DEFAULTS, 24, POLL)
    assert result["stopped"] and "without progress" in result["stopped"]
    assert result["restarts"] == DEFAULTS.crash_loop_restarts + 0 and result["run_all_to_live_jobs"] == 0


def test_deaths_with_progress_between_them_are_restarted_without_limit():
    deaths = [1800.0 + i * 1800.0 for i in range(40)]
    result = day(8, deaths=deaths)
    assert result["stopped"] is None and result["restarts"] == 40 and result["run_all_to_live_jobs"] == 0
