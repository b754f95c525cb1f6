"""Thirty simulated days of a watch (tests/soak.py): what it keeps on disk and in memory stays under fixed bounds."""

import pytest

from soak import DAY, soak

MAX_BYTES = 100_000  # small, so that the journal rotates several times within the month
pytestmark = pytest.mark.xdist_group("soak")  # one worker runs both tests: the month is simulated once


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    return soak(tmp_path_factory.mktemp("soak"), days=30, max_bytes=MAX_BYTES)


def test_a_month_of_deaths_stalls_offline_hours_and_a_failing_day_stays_bounded(month):
    assert month["deaths"] >= 60 and month["sessions"] == month["deaths"] + 1  # every runtime's history kept
    assert month["certified"] == month["deaths"]  # each with its death certificate
    last = month["daily"][-1]
    for day in month["daily"]:
        assert day["journal"] <= 2 * MAX_BYTES + 10_000  # the current file and the one older
        assert day["state"] <= 2_000  # state.json does not grow with time
        assert day["memory"] <= 3_000_000  # the daemon's own allocations (tracemalloc)
    assert last["sessions_file"] <= 400 * month["sessions"]  # the history: one small row per session


def test_the_failing_day_is_counted_not_written_every_round(month):
    assert month["failures_counted"] >= DAY / 10 - 10  # a day of 10 s rounds, each one counted
    assert month["failures_written"] <= 2
