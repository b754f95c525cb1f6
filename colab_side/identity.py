"""What a job is: its image set (names, sizes, content digests), engine, Meshroom version, pipeline, parameters and
overrides (files by their content).

``job.json`` (with its twin) records it at the first session; every later session compares. A different image set
or other settings under the same job name are refused (never merged, never answered with the old result) unless the
user asks for ``--replan``. Digests are computed once per file: a later session re-reads an image
only when its size or modification time differs from the record.
"""

from __future__ import annotations

import re

PIPELINE = "photogrammetry"
ASIDE = re.compile(r"replaced-\d{8}-\d{6}-[0-9a-f]{6}")  # the folder a --replan sets the old records aside in
ENGINE = "meshroom"  # a record from before engines were kept


def identity(job: str, meshroom: str, folder: str, images: list[dict], pipeline: str = PIPELINE, params=(),
             overrides: str | None = None, engine: str = ENGINE) -> dict:
    """``images``: one ``{name, size, sha256, mtime_ns}`` per image; ``folder`` is for the reader only.
    ``pipeline`` and ``overrides``: a file as ``"<name> sha256:<digest>"`` (its content makes the job), or the
    default pipeline's name; ``params``: the parameters as given, in order (a later one wins)."""
    return {"job": job, "engine": engine, "meshroom": meshroom, "pipeline": pipeline, "params": list(params), "overrides": overrides,
            "folder": folder, "images": sorted(images, key=lambda image: image["name"])}


def job_record(doc) -> dict | None:
    """``doc`` if it is a job record (``job.json`` as read), else None."""
    if isinstance(doc, dict) and isinstance(doc.get("job"), str) and isinstance(doc.get("images"), (list, str)):
        return doc
    return None


def replan_intent(doc) -> dict | None:
    """``doc`` if it is a ``--replan`` under way (``replan.json``: the folder to set aside in, the new job), else None."""
    if isinstance(doc, dict) and isinstance(doc.get("aside"), str) and ASIDE.fullmatch(doc["aside"]) \
            and job_record(doc.get("job")) is not None:
        return doc
    return None


def _shown(value) -> str:
    if not value:
        return "none"
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)


def known_digest(record, name: str, size: int, mtime_ns: int) -> str | None:
    """The digest ``record`` holds for an unchanged image (same name, size and mtime), else None."""
    if not isinstance(record, dict) or not isinstance(record.get("images"), list):
        return None
    for image in record["images"]:
        if (isinstance(image, dict) and image.get("name") == name and image.get("size") == size
                and image.get("mtime_ns") == mtime_ns and isinstance(image.get("sha256"), str)):
            return image["sha256"]
    return None


def _content(record: dict) -> dict[str, tuple]:
    return {image.get("name"): (image.get("size"), image.get("sha256"))
            for image in record.get("images", []) if isinstance(image, dict)}


def _names(names: list[str], most: int = 3) -> str:
    shown = ", ".join(sorted(names)[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def difference(known, current: dict) -> str | None:
    """None when ``known`` is the same job as ``current``; else what differs, in one phrase.

    A record from before digests were kept (``images`` is the folder's path) is the same job when
    the folder is the same: it is upgraded, not refused.
    """
    if not isinstance(known, dict):
        return "job.json is not a job record"
    if known.get("engine", ENGINE) != current["engine"]:
        return f"it was started with the engine {known.get('engine', ENGINE)}, not {current['engine']}"
    if known.get("meshroom") != current["meshroom"]:
        return f"it was started with Meshroom {known.get('meshroom')}, not {current['meshroom']}"
    if known.get("pipeline", PIPELINE) != current["pipeline"]:
        return f"it was started with the pipeline {known.get('pipeline')}, not {current['pipeline']}"
    for key, what, default in (("params", "parameters", []), ("overrides", "overrides", None)):
        if known.get(key, default) != current[key]:  # (a record from before they were kept: the defaults)
            return f"it was started with {what} {_shown(known.get(key, default))}, not {_shown(current[key])}"
    if isinstance(known.get("images"), str):
        same = known["images"] == current["folder"]
        return None if same else f"it was started with the images in {known['images']}"
    before, now = _content(known), _content(current)
    added = [n for n in now if n not in before]
    removed = [n for n in before if n not in now]
    changed = [n for n in now if n in before and before[n] != now[n]]
    parts = [f"{len(names)} {what} ({_names(names)})" for names, what in
             ((added, "images added"), (removed, "images removed"), (changed, "images changed")) if names]
    return "its image set differs: " + "; ".join(parts) if parts else None
