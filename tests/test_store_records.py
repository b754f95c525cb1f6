"""The store's records and the job's identity, validated before use (pure, property-tested)."""

from __future__ import annotations

import string

from hypothesis import given, settings, strategies as st

from colab_side import identity
from colab_side.drive import Fault, FaultPlan
from colab_side.store import cleaned, valid_entry

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
SHA = "a" * 64


@settings(deadline=None)  # a busy machine is slow, not wrong
@given(json_values)
def test_any_json_is_cleaned_into_a_manifest_of_valid_entries_or_refused(doc):
    clean = cleaned(doc, "job", log=lambda _line: None)
    if clean is not None:
        assert all(valid_entry(entry) for entry in clean["chunks"].values())
        assert all(isinstance(s, str) for sessions in clean["errors"].values() for s in sessions)


@settings(deadline=None)  # a busy machine is slow, not wrong
@given(st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_hostile_chunk_entries_are_dropped_and_said(chunks):
    lines = []
    clean = cleaned({"chunks": chunks, "pruned": {}, "errors": {}}, "job", log=lines.append)
    assert len(clean["chunks"]) + len(lines) == len(chunks)


def test_entry_paths_stay_inside_the_store():
    good = {"archive": "DepthMap_1/0/3.abc.tar", "size": 10, "sha256": SHA}
    assert valid_entry(good)
    for archive in ("../x.tar", "/etc/x.tar", "a/../../x.tar", "a/b.txt", "", "a//..//b.tar", "a\\..\\b.tar"):
        assert not valid_entry({**good, "archive": archive}), archive
    for size in (-1, 1e300, "10", True, 1 << 60):
        assert not valid_entry({**good, "size": size}), size
    assert not valid_entry({**good, "sha256": "A" * 64})


names = st.text(string.ascii_letters + string.digits + "_.", min_size=1, max_size=12)
images = st.dictionaries(names, st.tuples(st.integers(0, 10**9), st.sampled_from("0123456789abcdef")), min_size=1,
                         max_size=8)


def record(found: dict) -> dict:
    listed = [{"name": n, "size": s, "sha256": d * 64, "mtime_ns": 1} for n, (s, d) in found.items()]
    return identity.identity("job", "2019.2", "/images", listed)


@settings(deadline=None)  # a busy machine is slow, not wrong
@given(images, images)
def test_a_job_is_the_same_exactly_when_its_images_are(before, after):
    differs = identity.difference(record(before), record(after))
    assert (differs is None) == (before == after)
    if differs:
        changed = {n for n in before.keys() | after.keys() if before.get(n) != after.get(n)}
        assert any(name in differs for name in changed) or "more" in differs


def test_meshroom_version_and_legacy_records():
    current = record({"a.jpg": (1, "0")})
    assert "Meshroom 2023.3" in identity.difference({**current, "meshroom": "2023.3"}, current)
    assert identity.difference({"job": "job", "images": "/images", "meshroom": "2019.2"}, current) is None
    assert "/other" in identity.difference({"job": "job", "images": "/other", "meshroom": "2019.2"}, current)
    assert identity.known_digest(current, "a.jpg", 1, 1) == "0" * 64
    assert identity.known_digest(current, "a.jpg", 1, 2) is None  # touched since: hashed again


def test_fault_plans_from_the_environment():
    plan = FaultPlan.parse("3:107,r2:5,w3+5:107@manifest")
    assert plan.faults == [Fault(3, 107), Fault(2, 5, "read"), Fault(3, 107, "write", 5.0, "manifest")]


def test_a_dropped_chunk_leaves_no_entry_and_no_bytes(tmp_path):
    from colab_side.drive import Drive
    from colab_side.meshroom.graph import parse
    from colab_side.store import Store

    node = parse('{"graph": {"A_1": {"nodeType": "A", "uids": {"0": "u"}, '
                 '"parallelization": {"blockSize": 1, "size": 2, "split": 2}}}}').nodes["A_1"]
    folder = node.internal_folder(tmp_path / "cache")
    folder.mkdir(parents=True)
    (folder / "out.bin").write_bytes(b"x" * 5000)
    store = Store(tmp_path / "store", Drive(tmp_path), "job", log=lambda _line: None)
    entry = store.add_chunk(node, 1, tmp_path / "cache", ["out.bin"], "s1")
    assert store.has("A_1", 1) and not store.has("A_1", 0)
    assert store.drop_chunk(node, 1) == entry["size"] > 5000
    assert store.drop_chunk(node, 1) == 0
    reread = Store(tmp_path / "store", Drive(tmp_path), "job")
    assert not reread.has("A_1", 1) and not list((tmp_path / "store").rglob("*.tar"))
