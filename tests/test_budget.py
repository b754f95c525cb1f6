"""The Drive budget's decisions (colab_side.budget), pure: no files, no clocks."""

from __future__ import annotations

import io
import tarfile

from hypothesis import given, settings, strategies as st

from colab_side.budget import Archive, Shape, archive_bytes, at_risk, choose, decide, default_budget

NODES = ["A", "B", "C", "D", "E"]
PROPERTY = settings(deadline=None, max_examples=100)


@st.composite
def stores(draw):
    """Candidate archives of a few nodes: per node one recompute cost per byte, chunks of various sizes."""
    archives = []
    for node in draw(st.lists(st.sampled_from(NODES), min_size=1, max_size=5, unique=True)):
        rate = draw(st.floats(min_value=0.0, max_value=100.0))
        for chunk in range(draw(st.integers(min_value=1, max_value=6))):
            size = draw(st.integers(min_value=0, max_value=1000))
            archives.append(Archive(node, chunk, size, rate * size))
    return archives


budgets = st.integers(min_value=0, max_value=8000)
groups = st.lists(st.sets(st.sampled_from(NODES), max_size=3), max_size=2)


@PROPERTY
@given(stores(), budgets, groups)
def test_the_kept_archives_never_exceed_the_budget_and_every_candidate_is_kept_or_dropped(archives, budget, protected):
    choice = choose(archives, budget, protected)
    sizes = {a.key: a.size for a in archives}
    assert choice.kept_bytes == sum(sizes[key] for key in choice.keep) <= budget
    assert choice.keep | choice.drop == set(sizes) and not choice.keep & choice.drop


@PROPERTY
@given(stores(), budgets, groups)
def test_a_dropped_archive_would_not_have_fit(archives, budget, protected):
    choice = choose(archives, budget, protected)
    for archive in archives:
        if archive.key in choice.drop:
            assert choice.kept_bytes + archive.size > budget


@PROPERTY
@given(stores(), groups)
def test_nothing_is_dropped_when_everything_fits(archives, protected):
    budget = sum(a.size for a in archives)
    assert choose(archives, budget, protected).drop == frozenset()


@PROPERTY
@given(stores(), budgets, st.sets(st.sampled_from(NODES), min_size=1, max_size=2))
def test_a_protected_group_such_as_the_next_nodes_inputs_is_never_dropped_when_it_fits(archives, budget, inputs):
    needed = [a for a in archives if a.node in inputs]
    choice = choose(archives, budget, [inputs])
    if sum(a.size for a in needed) <= budget:
        assert {a.key for a in needed} <= choice.keep


@PROPERTY
@given(st.lists(st.tuples(st.sampled_from(NODES), st.floats(min_value=0, max_value=50)), min_size=1, max_size=20),
       st.integers(min_value=0, max_value=20))
def test_with_equal_sizes_the_archives_that_save_the_most_seconds_per_byte_are_kept(rows, room):
    rates = {}
    archives = []
    for chunk, (node, rate) in enumerate(rows):
        rate = rates.setdefault(node, rate)  # one rate per node
        archives.append(Archive(node, chunk, 100, rate * 100))
    choice = choose(archives, room * 100)
    kept = [rates[a.node] for a in archives if a.key in choice.keep]
    dropped = [rates[a.node] for a in archives if a.key in choice.drop]
    assert len(kept) == min(room, len(archives))
    if kept and dropped:
        assert min(kept) >= max(dropped)


# A 2021.1-like dense pipeline: Meshing reads DepthMapFilter only; Texturing reads PrepareDenseScene.
DENSE = Shape(
    order=("SfM", "PDS", "DM", "DMF", "Meshing", "Texturing"),
    producers={"SfM": frozenset(), "PDS": frozenset({"SfM"}), "DM": frozenset({"PDS", "SfM"}),
               "DMF": frozenset({"DM", "SfM"}), "Meshing": frozenset({"DMF", "SfM"}),
               "Texturing": frozenset({"Meshing", "PDS"})},
    chunks={"SfM": 1, "PDS": 4, "DM": 6, "DMF": 3, "Meshing": 1, "Texturing": 1},
)


def dense_archives(*nodes):
    """Sizes and times shaped like the estimates: DepthMap costly per byte, PrepareDenseScene cheap."""
    per_chunk = {"SfM": (1, 50.0), "PDS": (10, 1.0), "DM": (10, 400.0), "DMF": (10, 100.0), "Meshing": (2, 60.0)}
    return [Archive(n, c, *per_chunk[n]) for n in nodes for c in range(DENSE.chunks[n])]


def test_while_depthmap_computes_the_cheap_input_is_dropped_not_depthmaps_own_chunks():
    choice, risk = decide(dense_archives("SfM", "PDS", "DM"), 61, DENSE, "DM", set())
    assert {key for key in choice.drop} == {("PDS", c) for c in range(4)}
    assert risk.nodes == {"PDS"} and risk.seconds == 4.0


def test_the_drops_gather_in_the_node_cheapest_to_redo():
    choice = choose(dense_archives("PDS", "DM", "DMF"), 90)
    assert {node for node, _ in choice.drop} == {"PDS"} and choice.kept_bytes == 90


def test_before_meshing_depthmapfilter_is_kept_whole_because_then_depthmap_is_not_needed_again():
    archives = dense_archives("SfM", "PDS", "DM", "DMF")
    choice, risk = decide(archives, 61, DENSE, "Meshing", set())
    assert {("DMF", c) for c in range(3)} <= choice.keep
    assert "DM" not in risk.nodes  # a kill now redoes only the cheap PDS chunks that did not fit
    by_value_alone = choose(archives, 61)
    assert at_risk(archives, by_value_alone.keep, DENSE, set()).seconds > risk.seconds


def test_archives_of_nodes_whose_inputs_were_pruned_are_kept_first():
    cheap_stranded = [Archive("DMF", c, 10, 1.0) for c in range(3)]  # its producer DM was pruned
    costly = [Archive("PDS", c, 10, 400.0) for c in range(4)]
    choice, _ = decide(cheap_stranded + costly, 30, DENSE, None, {"DM"})
    assert choice.keep == {a.key for a in cheap_stranded}
    assert choose(cheap_stranded + costly, 30).keep.isdisjoint(a.key for a in cheap_stranded)


# The 2019.2 shape: Meshing reads DepthMap as well as DepthMapFilter.
DENSE_2019 = Shape(DENSE.order, {**DENSE.producers, "Meshing": frozenset({"DMF", "DM", "SfM"})}, DENSE.chunks)


def test_before_meshing_in_2019_the_fewest_seconds_at_risk_win_over_the_fewest_nodes():
    archives = dense_archives("SfM", "PDS", "DM", "DMF")  # SfM 1, PDS 40, DM 60, DMF 30 bytes
    choice, risk = decide(archives, 81, DENSE_2019, "Meshing", set())
    one_node = at_risk(archives, choose(archives, 81, [{"SfM", "PDS", "DMF"}]).keep, DENSE_2019, set())
    assert one_node.nodes == {"DM"}
    assert risk.nodes == {"DMF", "PDS"} and risk.seconds < one_node.seconds


@PROPERTY
@given(st.sets(st.sampled_from(DENSE.order[:-1]), min_size=1), st.integers(min_value=0, max_value=150),
       st.sampled_from(DENSE.order))
def test_no_way_of_filling_the_budget_puts_fewer_seconds_at_risk_than_the_one_decided(nodes, budget, live):
    archives = dense_archives(*sorted(nodes))
    _, risk = decide(archives, budget, DENSE_2019, live, set())
    for node in nodes:  # every other node first: the drops in this one
        other = at_risk(archives, choose(archives, budget, [nodes - {node}]).keep, DENSE_2019, set())
        assert risk.seconds <= other.seconds


@PROPERTY
@given(st.sets(st.sampled_from(DENSE.order[:-1]), min_size=1), st.integers(min_value=0, max_value=150),
       st.sampled_from(DENSE.order), st.sets(st.sampled_from(["SfM", "PDS", "DM"])))
def test_decide_stays_within_the_budget_and_a_kill_risks_only_dropped_chunks(nodes, budget, live, pruned):
    archives = dense_archives(*sorted(nodes))
    choice, risk = decide(archives, budget, DENSE, live, pruned)
    live_archives = [a for a in archives if a.node not in pruned]
    assert choice.kept_bytes <= budget and choice.keep | choice.drop == {a.key for a in live_archives}
    assert risk.chunks <= len(choice.drop)
    if sum(a.size for a in live_archives) <= budget:
        assert risk.chunks == 0 and risk.seconds == 0


@settings(deadline=None, max_examples=60)
@given(st.lists(st.tuples(st.integers(min_value=0, max_value=5000), st.integers(min_value=1, max_value=400)),
                max_size=12))
def test_the_archive_size_bound_holds_for_real_tar_files(files):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for index, (size, name_length) in enumerate(files):
            info = tarfile.TarInfo(f"{index:04d}" + "n" * name_length)
            info.size = size
            archive.addfile(info, io.BytesIO(bytes(size)))
    assert len(buffer.getvalue()) <= archive_bytes(size for size, _ in files)


def test_the_default_budget_is_what_is_stored_and_free_less_twice_the_margin():
    assert default_budget(stored_bytes=5, drive_free_bytes=20, margin_bytes=3) == 19
    assert default_budget(stored_bytes=0, drive_free_bytes=5, margin_bytes=3) == 0
    assert default_budget(stored_bytes=7, drive_free_bytes=None, margin_bytes=3) is None
