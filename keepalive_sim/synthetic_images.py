"""Photos for COLMAP jobs in tests and benches, rendered by pycolmap itself (nothing downloaded).

``pycolmap.synthesize_dataset`` makes a scene (one camera, ``images`` frames, ``points`` 3D points) and
``synthesize_images`` renders it: the same seed gives the same PNG bytes (docs/colmap.md).
"""

from __future__ import annotations

from pathlib import Path


def synthesize(folder, images: int, width: int = 800, height: int = 600, points: int = 2000, seed: int = 7) -> Path:
    """Render ``images`` PNGs into ``folder`` (created); needs pycolmap."""
    import pycolmap

    folder = Path(folder)
    folder.mkdir(parents=True)
    pycolmap.set_random_seed(seed)
    options = pycolmap.SyntheticDatasetOptions()
    options.num_rigs, options.num_cameras_per_rig, options.num_frames_per_rig = 1, 1, images
    options.num_points3D, options.camera_width, options.camera_height = points, width, height
    pycolmap.synthesize_images(pycolmap.SyntheticImageOptions(), pycolmap.synthesize_dataset(options), folder)
    return folder


def vocabulary_tree(images, dest, words: int = 256) -> Path:
    """A small SIFT vocabulary tree (faiss format, as COLMAP reads it) built by pycolmap from the features of the
    photos in ``images``: for vocabulary-tree matching without downloading COLMAP's 72 MB tree."""
    import tempfile

    import numpy as np
    import pycolmap

    images, dest = Path(images), Path(dest)
    names = sorted(path.name for path in images.iterdir())
    with tempfile.TemporaryDirectory() as tmp:
        database = Path(tmp) / "database.db"
        pycolmap.Database.open(database).close()
        extraction = pycolmap.FeatureExtractionOptions()
        extraction.num_threads = 1
        pycolmap.extract_features(database, images, names, pycolmap.CameraMode.SINGLE, extraction_options=extraction)
        with pycolmap.Database.open(database) as db:
            found = [db.read_descriptors(image.image_id) for image in db.read_all_images()]
    options = pycolmap.VisualIndex.BuildOptions()
    options.num_visual_words, options.num_threads = words, 1
    index = pycolmap.VisualIndex.create(128, 64)  # SIFT descriptors, COLMAP's embedding size
    index.build(options, pycolmap.FeatureDescriptorsFloat(found[0].type,
                                                          np.concatenate([d.to_float().data for d in found])))
    index.write(dest)
    return dest
