"""One chunk of a COLMAP job, computed with pycolmap in a process of its own (``python -m colab_side.colmap.worker``).

The engine runs this as a program (``host.execute``): its output goes to the session's log, the session
stops it when it loses the job, and a crash of COLMAP is a failed chunk, not a dead session. Every chunk
starts from ``pycolmap.set_random_seed(0)`` and reads only its own inputs, so it gives the same bytes
whether it runs after the chunk before it or in a new session after a kill. Files are written under a
temporary name and renamed when whole: a kill leaves no half-written database or model under a final name.

Exit codes: 0 the chunk is done; ``FAILED`` COLMAP could not do it (the reason is the last line printed and
is written to ``--error FILE``); anything else, e.g. killed, the chunk did not finish.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
from contextlib import closing
from pathlib import Path

from colab_side.colmap import units
from colab_side.colmap.options import Choices, OptionError

FAILED = 3
TEMP = ".tmp"  # prefix of everything a chunk writes before it is whole


class Registered(Exception):
    """An incremental chunk has registered the images it was to."""


class UnitFailed(Exception):
    """COLMAP ran but could not do the chunk (no model, no matches): one line."""


def say(line: str) -> None:
    print(f"colmap: {line}", flush=True)


def temp(final: Path) -> Path:
    """A temporary name beside ``final``, cleared first."""
    path = final.with_name(f"{TEMP}-{final.name}")
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    return path


class Job:
    """What every chunk knows: the images, the choices, the cache, pycolmap."""

    def __init__(self, plan: dict, cache: Path, pycolmap):
        self.images = Path(plan["images"])
        self.names = list(plan["names"])
        self.choices = Choices.read(plan["params"])
        self.cache = cache
        self.pycolmap = pycolmap

    def folder(self, step: str) -> Path:
        path = self.cache / step
        path.mkdir(parents=True, exist_ok=True)
        return path

    def options(self, section: str):
        return self.choices.build(section, self.pycolmap)

    def camera_mode(self):
        return getattr(self.pycolmap.CameraMode, self.choices.camera_mode.upper())

    # --- sparse ---------------------------------------------------------------------------------------

    def import_images(self, chunk: int) -> None:
        final = self.folder("import") / "import.db"
        work = temp(final)
        self.pycolmap.Database.open(work).close()
        self.pycolmap.import_images(work, self.images, self.camera_mode(), self.names, self.options("image_reader"))
        os.replace(work, final)
        say(f"{len(self.names)} images imported")

    def features(self, chunk: int) -> None:
        names = units.batch(self.names, self.choices.batch, chunk)
        final = self.folder("features") / units.chunk_file("features", chunk)
        work = temp(final)
        shutil.copyfile(self.cache / "import" / "import.db", work)
        self.pycolmap.extract_features(work, self.images, names, self.camera_mode(), self.options("image_reader"),
                                       self.options("feature_extraction"))
        os.replace(work, final)
        say(f"features of {len(names)} images ({names[0]} to {names[-1]})")

    def database(self, chunk: int) -> None:
        """The batches' features in a fresh copy of the imported database (image ids as imported: name order)."""
        final = self.folder("database") / "database.db"
        work = temp(final)
        batches = [self.cache / "features" / units.chunk_file("features", chunk)
                   for chunk in range(units.chunks(len(self.names), self.choices.batch))]
        merge(self.cache / "import" / "import.db", work, batches, ("keypoints", "descriptors"), "image_id")
        with closing(sqlite3.connect(work)) as db:
            missing = db.execute("SELECT COUNT(*) FROM images WHERE image_id NOT IN "
                                 "(SELECT image_id FROM keypoints)").fetchone()[0]
        os.replace(work, final)
        say(f"database of {len(self.names)} images from {len(batches)} batches of features"
            + (f"; {missing} images without features (COLMAP could not read them: see above)" if missing else ""))

    def retrieval(self, chunk: int) -> None:
        """The pairs to match by the vocabulary tree: each image with its most similar ones, each pair once."""
        final = self.folder("retrieval") / units.PAIRS
        scratch = temp(final.with_suffix(".work"))
        scratch.mkdir()
        shutil.copyfile(self.cache / "database" / "database.db", scratch / "database.db")
        database = self.pycolmap.Database.open(scratch / "database.db")
        try:
            found = self.pycolmap.VocabTreePairGenerator(self.options("vocab_tree"), database).all_pairs()
            names = {image.image_id: image.name for image in database.read_all_images()}
        finally:
            database.close()
        pairs = units.retrieved_pairs(self.names, ((names[a], names[b]) for a, b in found))
        out = temp(final)
        out.write_text(json.dumps(pairs))
        shutil.rmtree(scratch)
        os.replace(out, final)
        say(f"{len(pairs)} pairs retrieved by the vocabulary tree (up to {units.neighbours(self.choices)} similar "
            "images each)")

    def matches(self, chunk: int) -> None:
        retrieved = (json.loads((self.cache / "retrieval" / units.PAIRS).read_text())
                     if self.choices.matcher == "vocabtree" else None)
        pairs = units.block(self.names, self.choices, chunk, retrieved)
        final = self.folder("matches") / units.chunk_file("matches", chunk)
        scratch = temp(final.with_suffix(".work"))
        scratch.mkdir()
        work = scratch / "database.db"
        shutil.copyfile(self.cache / "database" / "database.db", work)
        if pairs:  # (a vocabulary-tree job's blocks past the pairs found are empty)
            (scratch / "pairs.txt").write_text("".join(f"{a} {b}\n" for a, b in pairs))
            pairing = self.pycolmap.ImportedPairingOptions()
            pairing.match_list_path = scratch / "pairs.txt"
            self.pycolmap.match_image_pairs(work, self.options("feature_matching"), pairing,
                                            self.options("two_view_geometry"))
        out = temp(final)
        with closing(sqlite3.connect(out)) as db:
            db.execute("ATTACH DATABASE ? AS work", (str(work),))
            for table in ("matches", "two_view_geometries"):
                db.execute(f"CREATE TABLE {table} AS SELECT * FROM work.{table} ORDER BY pair_id")
            db.commit()
            db.execute("DETACH DATABASE work")
            verified = db.execute("SELECT COUNT(*) FROM two_view_geometries WHERE rows > 0").fetchone()[0]
        shutil.rmtree(scratch)
        os.replace(out, final)
        say(f"{len(pairs)} pairs matched, {verified} verified" if pairs else
            f"block {chunk}: no pairs (the vocabulary tree found fewer than the most planned)")

    def mapping(self, chunk: int) -> None:
        folder = self.folder("mapping")
        scratch = temp(folder / "work")
        scratch.mkdir()
        work = scratch / "database.db"
        blocks = [self.cache / "matches" / units.chunk_file("matches", chunk)
                  for chunk in range(units.match_blocks(len(self.names), self.choices))]
        merge(self.cache / "database" / "database.db", work, blocks, ("matches", "two_view_geometries"), "pair_id")
        last = chunk == units.mapping_chunks(len(self.names), self.choices) - 1
        if self.choices.mapper == "incremental":
            models = self.incremental(work, folder, chunk, None if last else (chunk + 1) * self.choices.snapshot)
        else:
            (scratch / "out").mkdir()
            models = list(self.pycolmap.global_mapping(work, self.images, scratch / "out",
                                                       self.options("global_mapping")).values())
        if not models:
            raise UnitFailed(f"{self.choices.mapper} mapping made no model: the images share too few features "
                             "(more overlap between photos" + (", or --param mapper=incremental)"
                                                              if self.choices.mapper == "global" else ")"))
        best = max(enumerate(models), key=lambda item: (item[1].num_reg_images(), -item[0]))[1]
        top = "sparse" if last else units.snapshot(chunk)  # the folder the chunk leaves: sparse/0/ or a snapshot
        model = scratch / (units.MODEL if last else top)
        model.mkdir(parents=True)
        best.write_binary(model)
        if last:
            best.write_text(model)
        final = folder / top
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            shutil.rmtree(final)
        os.replace(scratch / top, final)
        shutil.rmtree(scratch)
        say(f"model: {best.num_reg_images()} of {len(self.names)} images registered, {best.num_points3D()} points"
            + (f" ({len(models)} models, the largest kept)" if len(models) > 1 else "")
            + ("" if last else f"; snapshot {chunk} kept for the next chunk"))

    def incremental(self, database: Path, folder: Path, chunk: int, target: int | None) -> list:
        """Incremental mapping from the model the chunk before left, until a model has ``target`` images
        registered (None: to the end). Every chunk starts from that snapshot, so an uninterrupted job passes
        through the same snapshots as one killed between them: the same bytes."""
        manager = self.pycolmap.ReconstructionManager()
        if chunk:
            manager.read(folder / units.snapshot(chunk - 1))
        options = self.options("incremental_mapping")
        options.image_path = self.images
        opened = self.pycolmap.Database.open(database)
        pipeline = self.pycolmap.IncrementalPipeline(options, opened, manager)

        def enough() -> None:
            if target and max(manager.get(i).num_reg_images() for i in range(manager.size())) >= target:
                raise Registered  # stops the pipeline between two images, the model whole

        pipeline.add_callback(self.pycolmap.IncrementalPipelineCallback.NEXT_IMAGE_REG_CALLBACK, enough)
        try:
            pipeline.run()
        except Registered:
            pass
        finally:
            opened.close()
        return [manager.get(i) for i in range(manager.size())]

    # --- dense (CUDA) -----------------------------------------------------------------------------------

    def undistortion(self, chunk: int) -> None:
        folder = self.folder("undistortion")
        work = temp(folder / "work")
        self.pycolmap.undistort_images(work, self.cache / "mapping" / units.MODEL, self.images,
                                       undistort_options=self.options("undistortion"))
        for entry in sorted(work.iterdir()):
            os.replace(entry, folder / entry.name)
        work.rmdir()
        say("images undistorted")

    def workspace(self, name: str, maps_from: dict[str, str]) -> Path:
        """A COLMAP workspace for one chunk: the undistorted images and model, and the depth and normal maps
        of ``maps_from`` (step → map kind) linked in."""
        undistorted = self.cache / "undistortion"
        work = temp(self.folder(name) / "workspace")
        for part in ("images", "sparse"):
            (work / part).parent.mkdir(parents=True, exist_ok=True)
            os.symlink((undistorted / part).resolve(), work / part)
        for kind in ("depth_maps", "normal_maps", "consistency_graphs"):
            (work / "stereo" / kind).mkdir(parents=True)
        for step, maps in maps_from.items():
            for kind in ("depth_maps", "normal_maps"):
                for path in sorted((self.cache / step / kind).glob(f"*.{maps}.bin")):
                    os.symlink(path.resolve(), work / "stereo" / kind / path.name)
        return work

    def stereo(self, chunk: int, geometric: bool = False) -> None:
        step, kind = ("geometric", "geometric") if geometric else ("stereo", "photometric")
        names = units.batch(self.names, self.choices.batch, chunk)
        work = self.workspace(step, {"stereo": "photometric"} if geometric else {})
        sources = config_entries((self.cache / "undistortion" / "stereo" / "patch-match.cfg").read_text())
        (work / "stereo" / "batch.cfg").write_text("".join(f"{name}\n{sources.get(name, '__auto__, 20')}\n"
                                                           for name in names))
        options = self.options("patch_match")
        options.geom_consistency = geometric
        self.pycolmap.patch_match_stereo(work, options=options, config_path=work / "stereo" / "batch.cfg")
        folder = self.folder(step)
        for maps in ("depth_maps", "normal_maps"):
            (folder / maps).mkdir(exist_ok=True)
            for name in names:
                made = work / "stereo" / maps / f"{name}.{kind}.bin"
                if not made.exists():
                    raise UnitFailed(f"patch-match stereo wrote no {maps} for {name}")
                os.replace(made, folder / maps / made.name)
        shutil.rmtree(work)
        say(f"{kind} depth maps of {len(names)} images ({names[0]} to {names[-1]})")

    def geometric(self, chunk: int) -> None:
        self.stereo(chunk, geometric=True)

    def fusion(self, chunk: int) -> None:
        work = self.workspace("fusion", {"geometric": "geometric"})
        shutil.copyfile(self.cache / "undistortion" / "stereo" / "fusion.cfg", work / "stereo" / "fusion.cfg")
        final = self.folder("fusion") / units.FUSED
        out = temp(final)
        self.pycolmap.stereo_fusion(out, work, input_type="geometric", options=self.options("stereo_fusion"),
                                    output_type="ply")
        shutil.rmtree(work)
        os.replace(out, final)
        say(f"fused point cloud {final.stat().st_size} bytes")

    def meshing(self, chunk: int) -> None:
        final = self.folder("meshing") / units.MESH
        out = temp(final)
        self.pycolmap.poisson_meshing(self.cache / "fusion" / units.FUSED, out, self.options("poisson_meshing"))
        os.replace(out, final)
        say(f"Poisson mesh {final.stat().st_size} bytes")


def config_entries(text: str) -> dict[str, str]:
    """A patch-match.cfg's image → source-images line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return dict(zip(lines[0::2], lines[1::2]))


def merge(base: Path, work: Path, sources: list[Path], tables: tuple[str, ...], key: str) -> None:
    """``work``: a copy of ``base`` with the rows of ``tables`` of every source appended, source by source,
    each in ``key`` order; checked by SQLite (``PRAGMA integrity_check``)."""
    shutil.copyfile(base, work)
    with closing(sqlite3.connect(work)) as db:
        for path in sources:
            if not path.is_file():
                raise UnitFailed(f"{path.name} is missing from {path.parent.name}")
            db.execute("ATTACH DATABASE ? AS source", (str(path),))
            for table in tables:
                db.execute(f"INSERT INTO {table} SELECT * FROM source.{table} ORDER BY {key}")
            db.commit()
            db.execute("DETACH DATABASE source")
        result = db.execute("PRAGMA integrity_check").fetchone()[0]
    if result != "ok":
        raise UnitFailed(f"the merged database failed SQLite's integrity check: {result}")


STEPS = {"import": Job.import_images, "features": Job.features, "database": Job.database,
         "retrieval": Job.retrieval, "matches": Job.matches,
         "mapping": Job.mapping, "undistortion": Job.undistortion, "stereo": Job.stereo, "geometric": Job.geometric,
         "fusion": Job.fusion, "meshing": Job.meshing}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m colab_side.colmap.worker", description=__doc__.split("\n")[0])
    parser.add_argument("plan", help="the job's plan (JSON: images, names, params)")
    parser.add_argument("step", choices=sorted(STEPS))
    parser.add_argument("chunk", type=int)
    parser.add_argument("cache", help="the session's work folder")
    parser.add_argument("--error", help="a file to write the reason into when COLMAP cannot do the chunk")
    args = parser.parse_args(argv)
    import pycolmap

    pycolmap.set_random_seed(0)
    try:
        job = Job(json.loads(Path(args.plan).read_text()), Path(args.cache), pycolmap)
        STEPS[args.step](job, args.chunk)
    except (UnitFailed, OptionError, ValueError, RuntimeError) as exc:  # pycolmap's failed checks: ValueError
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        say(f"{args.step} chunk {args.chunk} failed: {reason}")
        if args.error:
            Path(args.error).write_text(reason)
        return FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
