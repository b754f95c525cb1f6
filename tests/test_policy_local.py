"""Pure decisions of the local disk and of a job that no longer progresses (colab_side.policy)."""

from __future__ import annotations

from colab_side import policy
from colab_side.heartbeat import Cause, Phase
from colab_side.settings import GB


def test_the_next_step_keeps_what_it_reads_and_the_rest_goes_unless_costly_to_redo():
    local = {"SfM", "PDS", "DM", "FE"}
    gone, recompute = policy.local_drops(
        local, next_reads={"DMF", "DM", "SfM"}, later={"DMF", "DM", "SfM", "PDS", "Meshing"},
        durable={"SfM"}, recompute_seconds={"PDS": 2700.0, "FE": 9e9}, limit=3600.0, inputs_stored={"PDS"})
    assert gone == {"PDS", "FE"}  # PDS: cheap, read again only by Texturing; FE: nothing still to compute reads it
    assert recompute == {"PDS"}
    gone, recompute = policy.local_drops(local, {"DMF", "DM", "SfM"}, {"PDS"}, set(), {"PDS": 7200.0}, 3600.0,
                                         {"PDS"})
    assert gone == {"FE"} and not recompute  # PDS too costly to compute again: it stays
    gone, recompute = policy.local_drops(local, {"DMF", "DM", "SfM"}, {"PDS"}, set(), {"PDS": 60.0}, 3600.0)
    assert gone == {"FE"} and not recompute  # what PDS reads is not stored: computing it again would start a chain
    gone, _ = policy.local_drops({"PDS"}, set(), {"PDS"}, {"PDS"}, {"PDS": 9e9}, 3600.0)
    assert gone == {"PDS"}  # held whole by the store: restored when next read


def test_sessions_that_only_redo_dropped_chunks_block_the_job_with_the_budget_it_needs():
    first = {("DM", c): GB for c in range(5)}
    redo = {("DM", c): GB for c in range(3)}
    verdict = policy.stalled([first, redo, redo, redo], 11 * GB)
    assert verdict.phase == Phase.BLOCKED and verdict.cause == Cause.DRIVE_FULL
    assert "at least 14.0 GB" in verdict.action
    assert policy.stalled([first, redo, redo, {("DM", 9): GB}], 11 * GB) is None  # a new chunk: progress
    assert policy.stalled([first, redo, redo], 11 * GB) is None  # not yet three such sessions after the first
    assert policy.stalled([first, redo, redo, redo], None) is None  # no budget: nothing was dropped
