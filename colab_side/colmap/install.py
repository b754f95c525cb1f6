"""pycolmap, downloaded once per Drive: its wheel kept in the Drive's install folder and checked by SHA-256.

Where pycolmap already imports (installed with the runtime, or by the user) nothing is downloaded. Else the
wheel for this runtime's Python (``pycolmap-cuda12`` where ``nvidia-smi`` finds a GPU, ``pycolmap`` else) is
fetched once with pip into ``<install_dir>/pycolmap/``, its SHA-256 recorded beside it (``<wheel>.sha256``)
and checked before every use, as Meshroom's release archive is; a wheel that does not match is moved aside
and fetched again. Each session installs the verified wheel from Drive (pip, no index).

Vocabulary-tree matching needs COLMAP's SIFT vocabulary tree (``TREE``, 72 MB): downloaded once per Drive into
``<install_dir>/colmap/`` and checked against the SHA-256 COLMAP publishes for it before every use.
"""

from __future__ import annotations

import hashlib
import importlib
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from colab_side import install_cache
from colab_side.drive import Drive
from colab_side.runner import detect_gpu

VERSION = "4.2.1"  # what docs/colmap.md's figures were measured with


class InstallError(RuntimeError):
    """pycolmap could not be installed (download failed, wheel unusable)."""


class DownloadError(InstallError):
    """A download did not complete (the network): another session may succeed."""


@dataclass(frozen=True)
class Asset:
    """A file COLMAP publishes, with its SHA-256."""

    url: str
    name: str
    size: int
    sha256: str


# COLMAP 4.2's default SIFT vocabulary tree (src/colmap/feature/: kDefaultSiftVocabTreeUri; faiss format)
TREE = Asset("https://github.com/colmap/colmap/releases/download/3.11.1/vocab_tree_faiss_flickr100K_words256K.bin",
             "vocab_tree_faiss_flickr100K_words256K.bin", 72_412_636,
             "96ca8ec8ea60b1f73465aaf2c401fd3b3ca75cdba2d3c50d6a2f6f760f275ddc")


def package() -> str:
    return "pycolmap-cuda12" if detect_gpu() else "pycolmap"


def pip(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()
        raise InstallError(f"pip {args[0]} failed: {tail[-1] if tail else done.returncode}")


def ensure_wheel(folder: Path, name: str, drive: Drive, log=print, download=None) -> Path:
    """The verified wheel of ``name`` in ``folder`` on Drive, downloaded once (``download(name, dest_dir)``)."""
    download = download or (lambda name, dest: pip("download", "--no-deps", "--only-binary=:all:", "-q",
                                                   "-d", str(dest), f"{name}=={VERSION}"))
    prefix = name.replace("-", "_") + f"-{VERSION}-"
    wheels = sorted(p for p in drive.call(folder.name, lambda: list(folder.glob(prefix + "*.whl")) if folder.is_dir()
                                          else []))
    for wheel in wheels:
        if install_cache.verified(drive, wheel):
            return wheel
        install_cache.set_aside(drive, wheel, log)
    log(f"downloading {name} {VERSION} (once per Drive)")
    with tempfile.TemporaryDirectory() as tmp:
        download(name, Path(tmp))
        found = sorted(Path(tmp).glob(prefix + "*.whl"))
        if not found:
            raise InstallError(f"no {name} {VERSION} wheel for this Python ({sys.version.split()[0]})")
        drive.call(folder.name, lambda: folder.mkdir(parents=True, exist_ok=True), kind="write")
        wheel = folder / found[0].name
        digest = drive.copy_file(found[0], wheel)
    install_cache.record(drive, wheel, digest)
    return wheel


def ensure(install_dir, local: Path, drive: Drive, log=print, download=None, installer=None):
    """pycolmap, imported: as it is where it imports, else from the wheel on Drive."""
    try:
        return importlib.import_module("pycolmap")
    except ImportError:
        pass
    wheel = ensure_wheel(Path(install_dir) / "pycolmap", package(), drive, log, download)
    copy = Path(local) / wheel.name
    drive.copy_file(wheel, copy)
    (installer or (lambda path: pip("install", "--no-deps", "-q", str(path))))(copy)
    importlib.invalidate_caches()
    try:
        return importlib.import_module("pycolmap")
    except ImportError as exc:
        raise InstallError(f"pycolmap from {wheel.name} does not import: {exc}") from None


def _download(url: str, dest: Path) -> None:
    with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as handle:
        shutil.copyfileobj(response, handle)


DOWNLOAD_ATTEMPTS, DOWNLOAD_BACKOFF = 3, 5.0  # a download tried 3 times, 5 then 10 s apart, before the session ends
GONE = (404, 410)  # HTTP answers no later session can change


def ensure_asset(install_dir, local: Path, drive: Drive, asset: Asset = TREE, log=print, download=None,
                 sleep=time.sleep) -> Path:
    """``asset`` copied to ``local``, from the Drive's install folder where a copy there has its SHA-256, else
    downloaded (``download(url, dest)``), checked, and kept on Drive for the next sessions and jobs.
    ``DownloadError`` when the download keeps failing (the network: a later session may succeed);
    ``InstallError`` when no session can (the file is gone from its address, or is not COLMAP's)."""
    kept = Path(install_dir) / "colmap" / asset.name
    copy = Path(local) / asset.name
    if drive.call(kept.name, kept.exists):
        if drive.copy_file(kept, copy) == asset.sha256:  # read once: copied and checked together
            return copy
        install_cache.set_aside(drive, kept, log, expected="COLMAP's SHA-256")
    log(f"downloading {asset.name} ({asset.size / 1e6:.0f} MB, once per Drive)")
    for attempt in range(DOWNLOAD_ATTEMPTS):
        try:
            (download or _download)(asset.url, copy)
            break
        except OSError as exc:
            copy.unlink(missing_ok=True)
            if isinstance(exc, urllib.error.HTTPError) and exc.code in GONE:
                raise InstallError(f"{asset.name} is no longer at {asset.url} (HTTP {exc.code})") from None
            if attempt + 1 == DOWNLOAD_ATTEMPTS:
                raise DownloadError(f"{asset.name} could not be downloaded ({DOWNLOAD_ATTEMPTS} tries): {exc}") from None
            log(f"download of {asset.name} failed ({exc}); trying again")
            sleep(DOWNLOAD_BACKOFF * 2 ** attempt)
    with open(copy, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    if digest != asset.sha256:
        copy.unlink()
        raise InstallError(f"{asset.name} from {asset.url} is not the file COLMAP publishes (its SHA-256 differs)")
    drive.call(kept.parent.name, lambda: kept.parent.mkdir(parents=True, exist_ok=True), kind="write")
    drive.copy_file(copy, kept)
    return copy
