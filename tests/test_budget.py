"""The Drive budget's decisions (colab_side.budget), pure: no files, no clocks."""

from __future__ import annotations

import io
import tarfile

from hypothesis import given, settings, strategies as st

from colab_side.budget import Archive, archive_bytes, choose, default_budget, protected_nodes

NODES = ["A", "B", "C", "D", "E"]
PROPERTY = settings(deadline=None, max_examples=150)


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
def test_what_the_next_node_needs_is_never_dropped_when_it_fits(archives, budget, inputs):
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


def test_the_drops_gather_in_the_node_cheapest_to_redo():
    # The 2,700-image shape during DepthMapFilter: DepthMap is costly to redo, PrepareDenseScene cheap.
    archives = ([Archive("PrepareDenseScene_1", c, 10, 1.0) for c in range(4)]
                + [Archive("DepthMap_1", c, 10, 400.0) for c in range(6)]
                + [Archive("DepthMapFilter_1", c, 10, 100.0) for c in range(3)])
    producers = {"DepthMapFilter_1": {"DepthMap_1"}, "Meshing_1": {"DepthMap_1", "DepthMapFilter_1"}}
    choice = choose(archives, 90, protected_nodes(producers, ["DepthMapFilter_1", "Meshing_1"], set()))
    assert {node for node, _ in choice.drop} == {"PrepareDenseScene_1"}
    assert choice.dropped_seconds == 4.0 and choice.kept_bytes == 90


def test_the_groups_kept_first_are_the_next_nodes_inputs_the_live_nodes_then_the_stranded():
    producers = {"B": {"A"}, "C": {"B"}, "D": {"C", "B"}, "E": {"D"}}
    assert protected_nodes(producers, ["D", "E"], {"A"}) == [{"D"}, {"C", "B"}, set()]
    assert protected_nodes(producers, ["C", "D"], {"A"}) == [{"C", "B"}, set(), set()]
    assert protected_nodes(producers, ["E"], {"A", "B"}) == [set(), {"D"}, {"C"}]
    assert protected_nodes(producers, [], set()) == [set(), set(), set()]


def test_archives_of_nodes_whose_inputs_were_pruned_are_kept_before_more_valuable_ones():
    producers = {"B": {"A"}, "C": {"B"}, "D": {"C"}}
    archives = [Archive("B", 0, 50, 1.0), Archive("C", 0, 50, 1000.0), Archive("D", 0, 40, 500.0)]
    assert choose(archives, 100, protected_nodes(producers, ["D"], {"A"})).keep == {("C", 0), ("B", 0)}
    assert choose(archives, 100).keep == {("C", 0), ("D", 0)}


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


def test_the_default_budget_is_what_is_stored_and_free_less_the_margin():
    assert default_budget(stored_bytes=5, drive_free_bytes=20, margin_bytes=3) == 22
    assert default_budget(stored_bytes=0, drive_free_bytes=2, margin_bytes=3) == 0
    assert default_budget(stored_bytes=7, drive_free_bytes=None, margin_bytes=3) is None
