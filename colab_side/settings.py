"""The session's settings, described once: the command line, the notebook and ``Settings`` are built from ``FIELDS``.

Each row names a setting, its type, default, one line of help and, for numbers, the range it must
lie in. ``python -m colab_side run`` turns the rows into options (``drive_margin_gb`` becomes
``--drive-margin-gb``; a true-by-default flag gets its own ``--no-…``-style name), the notebook
writes them as keyword arguments of ``colab_side.run``, and ``make`` checks values from either.
The notebook's form gives texts: a blank text is an optional setting not given, and one text holds
all the items of a repeatable setting (``split_items``).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

GB = 1 << 30


class SettingsError(ValueError):
    """A setting has a value it cannot have: one line that names it and what it accepts."""


@dataclass(frozen=True)
class Field:
    name: str
    type: type  # str, int, float, bool, Path, or tuple (of texts; a repeatable option)
    default: object
    help: str
    low: float | None = None  # numbers: the smallest value accepted
    high: float | None = None  # numbers: the largest value accepted
    flag: str | None = None  # the option when it is not --<name>, e.g. "--no-prune" for a true default
    required: bool = False
    choices: tuple | None = None  # texts: the only values accepted

    @property
    def option(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")


REQUIRED = object()  # the default of a field the user must give

FIELDS = (
    Field("images", Path, REQUIRED, "folder of input images (on Drive)", required=True),
    Field("engine", str, "meshroom", "the program that computes: meshroom (a textured mesh) or colmap (a sparse "
          "model, and with CUDA a dense point cloud and mesh)", choices=("meshroom", "colmap")),
    Field("job", str, "meshroom", "job name: its folder is <drive>/keepalive/<job>"),
    Field("drive_root", Path, None, "a plain folder instead of mounting Colab's Drive"),
    Field("meshroom", str, "2019.2", "Meshroom version (2019.2, 2021.1, 2023.3, 2025.1)"),
    Field("meshroom_url", str, None, "where to fetch the release archive (URL or path)"),
    Field("local_dir", Path, None, "the runtime's fast local disk (default /content/keepalive-work)"),
    Field("heartbeat_seconds", float, 30.0, "seconds between heartbeats", 0.05, 3600),
    Field("max_node_errors", int, 2, "sessions in which a node may end in ERROR before the job fails", 1, 100),
    Field("prune", bool, True, "keep every archive on Drive", flag="--no-prune"),
    Field("drive_margin_gb", float, 2.0, "free Drive space (GB) kept free, and needed before a node", 0, 100_000),
    Field("drive_budget_gb", float, None, "most GB the store may hold on Drive (default: what is free, "
          "less the margin); over it, the archives cheapest to recompute are dropped", 0.001, 1_000_000,
          flag="--drive-budget"),
    Field("keep_store", bool, True, "remove the store once the result is published and verified",
          flag="--remove-store"),
    Field("lifetime_hours", float, 12.0, "the runtime's longest life, for the long-chunk warning", 0.01, 10_000),
    Field("adopt_cache", Path, None, "a seed-style Meshroom cache folder to take over"),
    Field("gpu_required", bool, True, "run without a GPU (tests, CPU-only pipelines)", flag="--no-gpu-required"),
    Field("drive_backoff_seconds", float, 2.0, "first wait before retrying Drive (doubles)", 0, 600),
    Field("drive_call_limit_seconds", float, 120.0, "seconds a Drive call may go without moving a byte before "
          "the session ends restartable (a hung mount)", 0.01, 3600),
    Field("replan", bool, False, "the job's images or settings changed on purpose: keep the old records aside and start over"),
    Field("pipeline", Path, None, "your own Meshroom pipeline (.mg), as Meshroom's --pipeline"),
    Field("params", tuple, (), "one parameter of the saved graph, e.g. DepthMap_1.downscale=4; with --engine colmap "
          "one of pycolmap's options, e.g. feature_extraction.max_image_size=2000 (repeatable)",
          flag="--param"),
    Field("overrides", Path, None, 'a JSON file {"Node_1": {"attribute": value}}, as Meshroom\'s --overrides'),
)
BY_NAME = {f.name: f for f in FIELDS}


def _dataclass_field(row: Field):
    if row.required:
        return row.name, row.type
    if row.type in (bool, tuple):
        return row.name, row.type, dataclasses.field(default=row.default)
    return row.name, row.type | None, dataclasses.field(default=row.default)


Settings = dataclasses.make_dataclass("Settings", [_dataclass_field(row) for row in FIELDS], frozen=True)
Settings.__module__ = __name__
Settings.__doc__ = "The settings of one session; build it with ``make`` (values checked), not directly."
Settings.drive_margin_bytes = property(lambda self: int(self.drive_margin_gb * GB))
Settings.drive_budget_bytes = property(
    lambda self: None if self.drive_budget_gb is None else int(self.drive_budget_gb * GB))


# Items are separated by ";" or by "," before the next Node_1.attribute= (a value may hold commas: sift,akaze).
_ITEM_SEPARATOR = re.compile(r"\s*;\s*|\s*,\s*(?=\w+\.\w[\w.]*\s*=)|\s*\n\s*")


def split_items(text: str) -> tuple[str, ...]:
    """The items of a repeatable setting written as one text, as the notebook's form holds them.

    ``"DepthMap_1.downscale=4, FeatureExtraction_1.describerTypes=sift,akaze"`` gives two items.
    """
    return tuple(item for item in _ITEM_SEPARATOR.split(text.strip()) if item)


def _convert(row: Field, value):
    if isinstance(value, str) and not value.strip() and row.default is None and not row.required:
        value = None  # a form field left blank: the setting is not given
    if value is None:
        if row.required:
            raise SettingsError(f"{row.name} is required: {row.help}")
        return None
    if row.type is bool:
        if not isinstance(value, bool):
            raise SettingsError(f"{row.name} must be True or False, not {value!r}")
        return value
    if row.type in (int, float):
        if isinstance(value, bool):
            raise SettingsError(f"{row.name} must be a number, not {value!r}")
        try:
            number = row.type(value)
        except (TypeError, ValueError):
            raise SettingsError(f"{row.name} must be a{'n integer' if row.type is int else ' number'}, "
                                f"not {value!r}") from None
        if row.type is int and number != float(value):
            raise SettingsError(f"{row.name} must be a whole number, not {value!r}")
        if number != number or (row.low is not None and number < row.low) or (row.high is not None and number > row.high):
            raise SettingsError(f"{row.name} must be between {row.low:g} and {row.high:g}, not {value!r}")
        return number
    if row.type is tuple:  # of texts: a repeatable option, a list or one text (``split_items``) in the notebook
        if isinstance(value, str):
            value = split_items(value)
        if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) and item for item in value):
            raise SettingsError(f"{row.name} must be a list of texts, not {value!r}")
        return tuple(value)
    if not isinstance(value, (str, Path)) or not str(value):
        raise SettingsError(f"{row.name} must be a non-empty {'path' if row.type is Path else 'text'}, not {value!r}")
    if row.choices and value not in row.choices:
        raise SettingsError(f"{row.name} must be one of {', '.join(row.choices)}, not {value!r}")
    return Path(value) if row.type is Path else str(value)


def make(**values) -> Settings:
    """Settings from keyword values (the notebook's ``colab_side.run`` or the parsed command line)."""
    unknown = sorted(set(values) - set(BY_NAME))
    if unknown:
        raise SettingsError(f"unknown setting {unknown[0]!r}; known: {', '.join(BY_NAME)}")
    converted = {}
    for row in FIELDS:
        value = values.get(row.name, None if row.required else row.default)
        converted[row.name] = _convert(row, value)
    return Settings(**converted)


COLAB_PATHS = ("images", "pipeline", "overrides")  # the user's files, on Drive as Colab sees it


def check_colab_path(name: str, value) -> None:
    """SettingsError, saying what to write, unless ``value`` is under /content/drive/ (Drive as Colab sees it)."""
    text = str(value)
    leaf = PureWindowsPath(text).name or "images"
    if "\\" in text or PureWindowsPath(text).drive:
        raise SettingsError(f"{name} '{text}' is a folder on your PC; write it as Colab sees it on your Drive, "
                            f"e.g. /content/drive/MyDrive/{leaf}")
    if not text.startswith("/content/drive/") or ".." in PurePosixPath(text).parts:
        raise SettingsError(f"{name} '{text}' is not on your Drive as Colab sees it: write the full path, "
                            f"e.g. /content/drive/MyDrive/images for My Drive/images")


def check_colab_paths(settings: Settings) -> None:
    """On Colab (no ``drive_root``): the images, pipeline and overrides are paths on the mounted Drive."""
    if settings.drive_root is None:
        for name in COLAB_PATHS:
            if getattr(settings, name) is not None:
                check_colab_path(name, getattr(settings, name))


def add_argument(parser: argparse.ArgumentParser, row: Field) -> None:
    """The option of one field; its parsed value is the field's (``vars(args)`` goes to ``make``)."""
    if row.type is bool:
        parser.add_argument(row.option, dest=row.name, action="store_false" if row.default else "store_true",
                            help=row.help)
    elif row.type is tuple:
        parser.add_argument(row.option, dest=row.name, action="append", default=[], help=row.help)
    else:
        text = row.help if row.required or row.default is None else f"{row.help} (default {row.default})"
        parser.add_argument(row.option, dest=row.name, type=str if row.type is Path else row.type,
                            default=None if row.required else row.default, required=row.required, help=text,
                            choices=row.choices)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per field."""
    for row in FIELDS:
        add_argument(parser, row)
