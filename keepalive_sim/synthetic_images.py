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
