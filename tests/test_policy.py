"""A session's decisions (colab_side.policy), pure: facts in, verdicts out; no files, no clocks."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from colab_side import policy
from colab_side.heartbeat import Cause, Phase

GB = 1 << 30
PIPELINE = ["SfM", "PDS", "DM", "DMF", "Meshing", "Texturing"]
READS = {"SfM": set(), "PDS": {"SfM"}, "DM": {"PDS", "SfM"}, "DMF": {"DM", "SfM"}, "Meshing": {"DMF", "SfM"},
         "Texturing": {"Meshing", "PDS"}}


def test_a_node_failing_in_k_sessions_fails_the_job_and_fewer_sessions_restart_it():
    assert policy.repeated_errors({"DepthMap_1": ["s1"]}, max_node_errors=2) is None
    verdict = policy.repeated_errors({"DepthMap_1": ["s1", "s2"]}, max_node_errors=2)
    assert (verdict.phase, verdict.cause) == (Phase.FAILED, Cause.CODE_ERROR) and "DepthMap_1" in verdict.reason
    first = policy.node_error("DepthMap_1", 4, sessions=1, max_node_errors=2, last_line="out of memory")
    assert first.phase == Phase.RESTARTABLE and not first.final
    last = policy.node_error("DepthMap_1", 4, sessions=2, max_node_errors=2, last_line="out of memory")
    assert last.final and last.cause == Cause.CODE_ERROR and "out of memory" in last.reason


def test_only_a_full_drive_needs_the_human_other_drive_trouble_restarts():
    outage = policy.drive_error("Errno 107 after 4 remounts", full=False)
    assert (outage.phase, outage.cause, outage.final) == (Phase.RESTARTABLE, Cause.DRIVE_ERROR, False)
    full = policy.drive_error("quota exceeded", full=True)
    assert (full.phase, full.cause, full.final) == (Phase.BLOCKED, Cause.DRIVE_FULL, True) and "Trash" in full.action
    hang = policy.drive_error("remount did not return within 120 s", full=False, timeout=True)
    assert (hang.phase, hang.cause, hang.final) == (Phase.RESTARTABLE, Cause.DRIVE_TIMEOUT, False)


def test_no_gpu_blocks_only_when_one_is_required():
    assert policy.no_gpu("Tesla T4", required=True) is None
    assert policy.no_gpu(None, required=False) is None
    assert policy.no_gpu(None, required=True).cause == Cause.NO_GPU


def test_drive_space_before_a_node():
    assert policy.drive_space(None, 2 * GB, "DepthMap_1") is None  # Drive does not say: go on
    assert policy.drive_space(3 * GB, 2 * GB, "DepthMap_1") is None
    verdict = policy.drive_space(GB // 2, 2 * GB, "DepthMap_1")
    assert verdict.phase == Phase.BLOCKED and "1.50 GB" in verdict.action and "DepthMap_1" in verdict.reason


def test_local_disk_full_is_named_and_warned_of_before():
    full = policy.disk_full("[Errno 28] No space left on device")
    assert (full.phase, full.cause) == (Phase.BLOCKED, Cause.DISK_FULL) and "plan" in full.action
    assert policy.disk_warning(free=10 * GB, need=5 * GB) is None
    assert "DISK_FULL" in policy.disk_warning(free=5 * GB, need=10 * GB)


def test_the_long_chunk_warning_comes_after_three_quarters_of_the_lifetime():
    assert policy.long_chunk_warning("Meshing_1", 8.9 * 3600, lifetime_hours=12) is None
    assert "Meshing_1" in policy.long_chunk_warning("Meshing_1", 9.1 * 3600, lifetime_hours=12)


def test_history_warns_of_unfinished_nodes_whose_chunks_outlived_a_runtime():
    durations = {"Meshing_1": [13 * 3600.0], "DepthMap_1": [13 * 3600.0], "Texturing_1": [3600.0]}
    warnings = policy.history_warnings(durations, ["Meshing_1", "Texturing_1"], lifetime_hours=12)
    assert len(warnings) == 1 and "Meshing_1" in warnings[0]


def test_a_fresh_job_computes_every_node_in_graph_order():
    assert policy.compute_order(PIPELINE, READS, set()) == PIPELINE


def test_a_dropped_input_needed_only_at_the_end_is_computed_just_before_its_consumer():
    order = policy.compute_order(PIPELINE, READS, {"SfM", "DM"})
    assert order == ["DMF", "Meshing", "PDS", "Texturing"]


def test_a_published_node_whose_files_were_lost_is_computed_again_though_its_consumer_is_done():
    publish = {**READS, "Publish": {"Texturing"}}
    done = {"SfM", "PDS", "DM", "DMF", "Meshing", "Publish"}
    assert policy.compute_order([*PIPELINE, "Publish"], publish, done) == []
    assert policy.compute_order([*PIPELINE, "Publish"], publish, done, results={"Texturing"}) == ["Texturing"]


def test_nodes_no_longer_read_by_anything_to_compute_are_not_computed_again():
    assert policy.compute_order(PIPELINE, READS, {"SfM", "Meshing"}) == ["PDS", "Texturing"]
    assert policy.compute_order(PIPELINE, READS, set(PIPELINE)) == []


@st.composite
def graphs(draw):
    names = [f"N{i}" for i in range(draw(st.integers(min_value=1, max_value=8)))]
    reads = {name: set(draw(st.sets(st.sampled_from(names[:i])))) if i else set() for i, name in enumerate(names)}
    return names, reads, draw(st.sets(st.sampled_from(names)))


@settings(deadline=None, max_examples=200)
@given(graphs())
def test_every_node_to_compute_finds_its_inputs_done_or_computed_before_it(graph):
    names, reads, done = graph
    order = policy.compute_order(names, reads, done)
    assert len(order) == len(set(order)) and not set(order) & done
    for index, name in enumerate(order):
        assert reads[name] <= done | set(order[:index])
    results = [n for n in names if not any(n in reads[other] for other in names)]
    assert {n for n in results if n not in done} <= set(order)


def test_the_eta_uses_each_nodes_measured_chunk_time_and_scaled_estimates_for_the_others():
    durations = {"FE": [10.0, 30.0]}  # measured 20 s a chunk where 10 s were estimated: twice slower
    assert policy.eta_seconds({"FE": 30, "DM": 2}, durations, {"FE": 10.0, "DM": 100.0}) == 30 * 20 + 2 * 200
    assert policy.eta_seconds({"FE": 3, "DM": 2}, durations) == 5 * 20  # no estimates: the mean of all chunks


def test_the_eta_is_estimating_until_measured_chunk_times_carry_half_of_it():
    """The issue's case: a cheap first node measured, the rest from estimates 25 times too high."""
    estimates = {"CameraInit": 5.0, "FeatureExtraction": 80.0, "DepthMap": 255.0}
    assert policy.eta_seconds({"CameraInit": 1, "DepthMap": 10}, {}, estimates) is None  # nothing measured
    measured = {"CameraInit": [9.0]}
    assert policy.eta_seconds({"FeatureExtraction": 4, "DepthMap": 50}, measured, estimates) is None
    measured["FeatureExtraction"] = [4.0]  # a fast GPU: 20 times quicker than estimated
    assert policy.eta_seconds({"FeatureExtraction": 3, "DepthMap": 50}, measured, estimates) is None
    measured["DepthMap"] = [10.0, 12.0]  # the node that carries the job, measured: 11 s a chunk
    eta = policy.eta_seconds({"FeatureExtraction": 3, "DepthMap": 48}, measured, estimates)
    assert eta == 3 * 4.0 + 48 * 11.0


def test_the_eta_with_nothing_left_is_zero_and_share_is_the_boundary():
    assert policy.eta_seconds({"DM": 0}, {}) == 0.0
    # half from measured chunks (FE: 1 x 10 s), half from the scaled estimate (DM: 1 x 10 x 1.0): given
    assert policy.eta_seconds({"FE": 1, "DM": 1}, {"FE": [10.0]}, {"FE": 10.0, "DM": 10.0}) == 20.0
    assert policy.eta_seconds({"FE": 1, "DM": 1}, {"FE": [10.0]}, {"FE": 10.0, "DM": 10.5}) is None
