"""Vocabulary-tree matching: ``matcher=auto`` takes it above 300 photos, the tree's pairs are matched in blocks
planned before they are known, COLMAP's tree is downloaded once per Drive, and a job killed at random moments
ends done with the model files of an uninterrupted one."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import urllib.error

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from colab_side import heartbeat as hb
from colab_side.colmap import install, units
from colab_side.colmap.options import Choices
from colab_side.drive import Drive
from colab_side.layout import job_layout


def test_auto_matches_every_pair_up_to_300_photos_and_by_the_vocabulary_tree_above():
    auto = Choices.read([])
    assert (units.resolve(auto, 300).matcher, units.resolve(auto, 301).matcher) == ("exhaustive", "vocabtree")
    assert units.resolve(Choices.read(["matcher=sequential"]), 5000).matcher == "sequential"  # a choice stays
    work = units.steps(2700, units.resolve(auto, 2700), dense=False)
    assert work.order() == ["import", "features", "database", "retrieval", "matches", "mapping"]
    assert work.dependencies("matches") == {"database", "retrieval"}
    assert work.nodes["matches"].chunk_count == 900  # at most 2,700 photos x 100 similar ones, 300 pairs a block
    few = Choices.read(["matcher=vocabtree", "vocab_tree.num_images=50"])
    assert units.pair_count(20, few) == 190  # never more than every pair


def test_a_job_planned_before_auto_existed_keeps_the_matcher_it_was_planned_with():
    assert units.planned_matcher({"engine": "colmap", "dense": False}, Choices.read([])) == "exhaustive"
    assert units.planned_matcher({"dense": False}, Choices.read(["matcher=sequential"])) == "sequential"
    assert units.planned_matcher({"dense": False, "matcher": "vocabtree"}, Choices.read([])) == "vocabtree"


@settings(deadline=None, max_examples=80)
@given(similar=st.lists(st.lists(st.integers(0, 9), max_size=4), min_size=10, max_size=10), block=st.integers(1, 20))
def test_the_trees_pairs_are_each_matched_once_in_name_order_within_the_planned_blocks(similar, block):
    names = [f"{index:02d}.png" for index in range(10)]
    found = [(names[image], names[other]) for image, others in enumerate(similar) for other in others]
    pairs = units.retrieved_pairs(names, found)
    assert set(pairs) == {tuple(sorted(pair)) for pair in found if pair[0] != pair[1]}
    assert pairs == sorted(pairs)
    choices = Choices.read(["matcher=vocabtree", f"block={block}", "vocab_tree.num_images=4"])
    blocks = units.steps(10, choices, dense=False).nodes["matches"].chunk_count
    assert [pair for chunk in range(blocks) for pair in units.block(names, choices, chunk, pairs)] == pairs


def test_plan_says_how_the_photos_are_paired(capsys):
    from colab_side.__main__ import main

    main(["plan", "--engine", "colmap", "--images", "2700", "--param", "dense=off"])
    shown = capsys.readouterr().out
    assert "matching: vocabulary tree, each photo with up to 100 similar ones: at most 270,000 pairs" in shown
    assert "matcher=auto: more than 300 photos" in shown and "chunks: 1174 in 6 nodes" in shown  # 1+270+1+1+900+1
    main(["plan", "--engine", "colmap", "--images", "200", "--param", "dense=off"])
    assert "matching: exhaustive, every pair: 19,900 pairs (matcher=auto: up to 300 photos" in capsys.readouterr().out


def test_colmaps_tree_is_downloaded_once_per_drive_and_checked_by_its_published_sha256(tmp_path):
    published = tmp_path / "published.bin"
    published.write_bytes(os.urandom(5000))
    asset = install.Asset(published.as_uri(), "tree.bin", 5000, hashlib.sha256(published.read_bytes()).hexdigest())
    drive = Drive(tmp_path / "drive", log=lambda line: None)
    folder = tmp_path / "drive" / "_meshroom"
    downloads, said = [], []

    def download(url, dest):
        downloads.append(url)
        install._download(url, dest)  # urllib, as on Colab (a file:// address here)

    for session in ("one", "two"):
        (tmp_path / session).mkdir()
        copy = install.ensure_asset(folder, tmp_path / session, drive, asset, said.append, download)
        assert copy.read_bytes() == published.read_bytes()
    assert downloads == [asset.url] and (folder / "colmap" / "tree.bin").read_bytes() == published.read_bytes()
    (folder / "colmap" / "tree.bin").write_bytes(b"cut short")  # damaged on Drive: moved aside, fetched again
    assert install.ensure_asset(folder, tmp_path / "one", drive, asset, said.append, download).read_bytes() == \
        published.read_bytes()
    assert len(downloads) == 2 and list((folder / "colmap").glob("tree.bin.corrupt-*"))
    assert any("does not match COLMAP's SHA-256" in line for line in said)

    changed = install.Asset(asset.url, "other.bin", 5000, "0" * 64)  # not the file COLMAP publishes: refused
    with pytest.raises(install.InstallError, match="not the file COLMAP publishes") as refused:
        install.ensure_asset(folder, tmp_path / "two", drive, changed, said.append, download)
    assert not isinstance(refused.value, install.DownloadError)
    assert not (folder / "colmap" / "other.bin").exists() and not (tmp_path / "two" / "other.bin").exists()
    unreachable = install.Asset((tmp_path / "nowhere.bin").as_uri(), "away.bin", 1, "0" * 64)  # as the network
    waits = []
    with pytest.raises(install.DownloadError, match=r"away.bin could not be downloaded \(3 tries\)"):
        install.ensure_asset(folder, tmp_path / "two", drive, unreachable, said.append, download, sleep=waits.append)
    assert waits == [5.0, 10.0]  # tried again within the session; then the next session tries (restartable)

    def missing(url, dest):
        raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)

    with pytest.raises(install.InstallError, match=r"no longer at .* \(HTTP 404\)") as gone:
        install.ensure_asset(folder, tmp_path / "two", drive, unreachable, said.append, missing, sleep=waits.append)
    assert not isinstance(gone.value, install.DownloadError) and waits == [5.0, 10.0]  # no session can fix it


# --- real pycolmap ------------------------------------------------------------------------------------------------

NEIGHBOURS = 4  # similar images retrieved for each of the 8
TREE = pytest.mark.xdist_group("colmap-tree")  # the tests that use the tree share one worker: it is built once


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """(images, a vocabulary tree pycolmap built from their features): no download."""
    pytest.importorskip("pycolmap")
    from keepalive_sim.synthetic_images import synthesize, vocabulary_tree

    folder = tmp_path_factory.mktemp("vocabtree")
    images = synthesize(folder / "images", 8)
    return images, vocabulary_tree(images, folder / "tree.bin")


def tree_params(tree) -> tuple[str, ...]:
    return ("--param", "matcher=vocabtree", "--param", f"vocab_tree.num_images={NEIGHBOURS}",
            "--param", f"vocab_tree.vocab_tree_path={tree[1]}")


@TREE
@pytest.mark.timeout(300)
def test_a_vocabulary_tree_job_killed_at_random_moments_ends_done_with_the_model_of_an_uninterrupted_one(
        tree, tmp_path):
    from test_colmap_engine import beat, kill_at_random_moments, result, run_in_process

    images = tree[0]
    assert run_in_process(images, tmp_path / "whole", *tree_params(tree)) == 0, beat(tmp_path / "whole").reason
    layout = job_layout(tmp_path / "whole" / "drive", "sfm")
    said = " ".join(path.read_text() for path in layout.logs.glob("*.log"))
    retrieved = int(re.search(r"colmap: (\d+) pairs retrieved by the vocabulary tree", said).group(1))
    matched = sum(int(n) for n in re.findall(r"colmap: (\d+) pairs matched", said))
    assert 8 <= retrieved == matched < 28  # each retrieved pair matched once; fewer than every pair
    assert json.loads(layout.engine_plan.read_text())["matcher"] == "vocabtree"
    assert beat(tmp_path / "whole").chunks_total == 1 + 3 + 1 + 1 + 4 + 1  # 28 pairs at most (every pair), 7 a block
    reference = result(tmp_path / "whole")
    assert sorted(reference) == sorted(units.MODEL_FILES)

    seed = int(os.environ.get("KILL_SEED", random.randrange(1 << 30)))
    where = kill_at_random_moments(images, tmp_path / "killed", 4, seed, *tree_params(tree))
    assert len(where) == 4, (seed, where)  # four kills before the end
    assert beat(tmp_path / "killed").phase == hb.DONE
    assert result(tmp_path / "killed") == reference, (seed, where)


@TREE
def test_a_vocabulary_tree_that_is_not_there_fails_bad_input_before_anything_runs(tree, tmp_path):
    from test_colmap_engine import beat, count, run_in_process

    assert run_in_process(tree[0], tmp_path, "--param", "matcher=vocabtree", "--param",
                          f"vocab_tree.vocab_tree_path={tmp_path / 'typo.bin'}") == 1
    ended = beat(tmp_path)
    assert (ended.phase, ended.cause) == (hb.FAILED, hb.BAD_INPUT) and "typo.bin is not a file" in ended.reason
    assert count(tmp_path, "chunk_done") == 0
