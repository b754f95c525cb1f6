"""Meshroom, installed once per Drive instead of 1.3 GB per session.

The release archive is downloaded once into the Drive's install cache, its SHA-256 recorded
beside it (``<archive>.sha256``) and checked before every use. An archive that does not match
(a download cut short, a Drive fault) is moved aside, never extracted, and fetched again.
Each session extracts the verified archive to the runtime's local disk.
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from colab_side import install_cache
from colab_side.drive import Drive
from colab_side.meshroom.versions import MeshroomVersion


class InstallError(RuntimeError):
    """Meshroom could not be installed (download failed, archive unusable)."""


def _download(url: str, dest: Path) -> None:
    if "://" not in url:
        shutil.copyfile(url, dest)
        return
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
    except OSError as exc:
        raise InstallError(f"cannot download Meshroom from {url}: {exc}") from None


def ensure_archive(install_dir, version: MeshroomVersion, url: str | None, drive: Drive, log=print) -> Path:
    """The verified release archive in the Drive's install cache, downloading it if needed."""
    install_dir = Path(install_dir)
    archive = install_dir / version.archive
    if install_cache.verified(drive, archive):
        return archive
    if drive.call(archive.name, archive.exists):
        install_cache.set_aside(drive, archive, log)
    source = url or version.url
    log(f"downloading Meshroom {version.version} from {source} (once per Drive)")
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / version.archive
        _download(source, local)
        try:
            with tarfile.open(local) as probe:
                probe.getmembers()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise InstallError(f"the Meshroom archive from {source} is not a readable tar ({exc})") from None
        digest = drive.copy_file(local, archive)
    install_cache.record(drive, archive, digest)
    return archive


def executables_dir(files: list[str], version: MeshroomVersion) -> str | None:
    """The folder (relative, "" for the top) holding the release's own executables, or None.

    A release keeps them at the top of its folder (``Meshroom-2019.2.0/meshroom_compute``); a script
    of the same name deeper in the tree (the engine's ``bin/``, a plugin) is never chosen. So: the
    shallowest folder holding both executables, the first in name order if several are as shallow.
    """
    present = set(files)
    folders = {name.rpartition("/")[0] for name in files if name.rpartition("/")[2] == version.batch_exe}
    candidates = [f for f in folders if (f"{f}/{version.compute_exe}" if f else version.compute_exe) in present]
    return min(candidates, key=lambda f: (f.count("/") + bool(f), f)) if candidates else None


def extract(archive, local_dir, version: MeshroomVersion, drive: Drive) -> Path:
    """Extract from Drive to local disk (streamed, under Drive's time limit; started again from
    scratch after a transient error) and return the folder that holds the release's top-level executables."""
    target = Path(local_dir) / "meshroom"

    def unpack(handle) -> list[str]:
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        files = []
        with tarfile.open(fileobj=handle, mode="r|*") as tar:
            for member in tar:
                if not member.isdir():
                    files.append(member.name.strip("/").removeprefix("./"))
                if hasattr(tarfile, "data_filter"):
                    tar.extract(member, target, filter="tar")
                else:
                    tar.extract(member, target)
        return files

    try:
        files = drive.read_stream(archive, unpack)
    except (tarfile.TarError, EOFError) as exc:
        raise InstallError(f"{Path(archive).name} on Drive is not a readable tar ({exc})") from None
    if files is None:
        raise InstallError(f"{Path(archive).name} vanished from Drive while it was being installed")
    folder = executables_dir(files, version)
    if folder is None:
        raise InstallError(f"{Path(archive).name} holds no {version.batch_exe} next to {version.compute_exe}")
    return target / folder if folder else target
