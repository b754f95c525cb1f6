"""Views of a textured unit sphere from cameras on an arc around it, 10 degrees apart, looking at its centre
(pinhole, f 1280 px, 1024x768): a scene with surfaces, for dense stereo (bench/bench_colmap_dense.sh) and for
incremental mapping, which registers every view of it (pycolmap's own synthetic images are texture patches on
black: patch-match finds almost no depth in them, 2 fused points for 12 views on an H200, and incremental mapping
registers 2 of 20). Usage: python -m keepalive_sim.sphere_scene FOLDER N"""

from __future__ import annotations

import sys
from pathlib import Path


def render(folder, count: int) -> Path:
    """Write ``count`` views (``view000.png``, ...) into ``folder`` (created); needs numpy and Pillow."""
    import numpy as np
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    dirs = rng.normal(size=(48, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    freqs, phases = rng.uniform(4, 70, 48), rng.uniform(0, 2 * np.pi, 48)
    f, cx, cy = 1280.0, 512.0, 384.0
    u, v = np.meshgrid(np.arange(1024) + 0.5, np.arange(768) + 0.5)
    rays_cam = np.stack([(u - cx) / f, (v - cy) / f, np.ones_like(u)], -1).reshape(-1, 3)
    for n in range(count):
        angle = np.radians(10 * (n - (count - 1) / 2))
        center = 4.0 * np.array([np.sin(angle), 0.35, np.cos(angle)])
        forward = -center / np.linalg.norm(center)
        right = np.cross([0.0, 1.0, 0.0], forward)
        right /= np.linalg.norm(right)
        rotation = np.stack([right, np.cross(forward, right), forward])  # rows: camera x, y, z in the world
        rays = rays_cam @ rotation  # (rotation.T @ ray) for each row
        rays /= np.linalg.norm(rays, axis=1, keepdims=True)
        b = rays @ center
        disc = b * b - (center @ center - 1.0)
        hit = disc > 0
        depth = -b - np.sqrt(np.where(hit, disc, 0))
        points = center + rays * depth[:, None]
        texture = np.sin(points @ dirs.T * freqs + phases).sum(1)
        gray = np.clip(128 + 22 * texture, 0, 255)
        gray = np.where(hit & (depth > 0), gray, 0).reshape(768, 1024).astype(np.uint8)
        Image.fromarray(gray).save(folder / f"view{n:03d}.png")
    return folder


if __name__ == "__main__":
    print("rendered", sys.argv[2], "views of a textured sphere into", render(sys.argv[1], int(sys.argv[2])))
