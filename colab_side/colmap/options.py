"""The COLMAP job's choices and pycolmap's options, from ``--param`` values.

Two kinds of parameter:

- the engine's own choices, a plain name: ``dense=auto|on|off`` (``auto``: the dense steps where pycolmap
  has CUDA), ``mapper=global|incremental``, ``matcher=auto|exhaustive|sequential|vocabtree`` (``auto``:
  exhaustive up to 300 images, the vocabulary tree above: ``units.resolve``),
  ``camera_mode=single|auto|per_image|per_folder``, ``batch=N`` (images per unit of features and of dense
  stereo), ``block=N`` (image pairs per unit of matching), ``overlap=N`` (sequential matching: each image with the
  next N and those 2, 4, 8, ... ahead), ``snapshot=N`` (incremental mapping: images registered per unit, each unit's
  model kept on Drive as the next one's start);
- one of pycolmap's options, ``section.attribute[.attribute]=value``, e.g.
  ``feature_extraction.max_image_size=2000`` or ``feature_extraction.sift.max_num_features=4000``: checked
  against pycolmap's own option class (the attribute must exist; the value is converted to the current
  value's type) before any unit runs.

Every step runs with one thread and random seed 0 unless a parameter says otherwise: what makes a resumed job
give the bytes of an uninterrupted one (docs/colmap.md). A later parameter wins over an earlier one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePath

SECTIONS = {  # --param section → pycolmap's option class
    "image_reader": "ImageReaderOptions",
    "feature_extraction": "FeatureExtractionOptions",
    "feature_matching": "FeatureMatchingOptions",
    "vocab_tree": "VocabTreePairingOptions",
    "two_view_geometry": "TwoViewGeometryOptions",
    "global_mapping": "GlobalPipelineOptions",
    "incremental_mapping": "IncrementalPipelineOptions",
    "undistortion": "UndistortCameraOptions",
    "patch_match": "PatchMatchOptions",
    "stereo_fusion": "StereoFusionOptions",
    "poisson_meshing": "PoissonMeshingOptions",
}
DEFAULTS = (  # set before the user's parameters: one thread and seed 0 (identical bytes after a kill,
    # docs/colmap.md; with fusion and meshing on one thread too the dense result was byte-identical run to run on
    # an H200); no surface trimming after Poisson meshing (pycolmap 4.2.1's trimmer crashed with SIGSEGV in the
    # CUDA wheel, colmap#4298, and COLMAP's default trim 10 leaves an empty mesh at small densities)
    "feature_extraction.num_threads=1", "feature_matching.num_threads=1", "vocab_tree.num_threads=1",
    "global_mapping.num_threads=1",
    "global_mapping.random_seed=0", "incremental_mapping.num_threads=1", "incremental_mapping.random_seed=0",
    "stereo_fusion.num_threads=1", "poisson_meshing.num_threads=1", "poisson_meshing.trim=0",
)
CHOICES = {"dense": ("auto", "on", "off"), "mapper": ("global", "incremental"),
           "matcher": ("auto", "exhaustive", "sequential", "vocabtree"),
           "camera_mode": ("single", "auto", "per_image", "per_folder")}
NUMBERS = {"batch": (10, 1, 10_000), "block": (300, 1, 1_000_000), "overlap": (10, 1, 1_000),
           "snapshot": (100, 1, 100_000)}  # default, least, most
TRUE, FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


class OptionError(ValueError):
    """A parameter the engine cannot use: one line naming it and what it accepts."""


@dataclass(frozen=True)
class Choices:
    """The engine's choices and pycolmap's options as ``section → [(dotted attribute, text value)]``."""

    dense: str = "auto"
    mapper: str = "global"
    matcher: str = "auto"  # units.resolve makes it exhaustive or vocabtree by the image count
    camera_mode: str = "single"
    batch: int = NUMBERS["batch"][0]
    block: int = NUMBERS["block"][0]
    overlap: int = NUMBERS["overlap"][0]  # sequential matching: how many images ahead (and 2**k ahead)
    snapshot: int = NUMBERS["snapshot"][0]  # incremental mapping: images registered per unit
    options: dict = field(default_factory=dict)

    @classmethod
    def read(cls, params) -> "Choices":
        """Parse the ``--param`` values (no pycolmap needed); ``OptionError`` on the first bad one."""
        chosen: dict = {}
        options: dict = {}
        for param in (*DEFAULTS, *params):
            name, sep, value = param.partition("=")
            name, value = name.strip(), value.strip()
            if not sep or not name or not value:
                raise OptionError(f"parameter {param!r} is not NAME=VALUE")
            section, dot, attribute = name.partition(".")
            if dot:
                if section not in SECTIONS:
                    raise OptionError(f"parameter {param!r}: unknown section {section!r}; known: {', '.join(SECTIONS)}")
                options.setdefault(section, {})[attribute] = value
            elif name in CHOICES:
                if value not in CHOICES[name]:
                    raise OptionError(f"parameter {param!r}: {name} is one of {', '.join(CHOICES[name])}")
                chosen[name] = value
            elif name in NUMBERS:
                _default, low, high = NUMBERS[name]
                if not value.isdigit() or not low <= int(value) <= high:
                    raise OptionError(f"parameter {param!r}: {name} is a whole number from {low} to {high}")
                chosen[name] = int(value)
            else:
                raise OptionError(f"parameter {param!r}: unknown name {name!r}; use one of "
                                  f"{', '.join([*CHOICES, *NUMBERS])} or section.attribute with a section of "
                                  f"{', '.join(SECTIONS)}")
        return cls(**chosen, options={section: list(values.items()) for section, values in options.items()})

    def build(self, section: str, pycolmap):
        """pycolmap's option object of ``section`` with the parameters set; ``OptionError`` on a bad one."""
        built = getattr(pycolmap, SECTIONS[section])()
        for attribute, text in self.options.get(section, ()):
            where = built
            *path, last = attribute.split(".")
            for part in path:
                where = getattr(where, part, None)
            if where is None or not hasattr(where, last) or last.startswith("_") or callable(getattr(where, last)):
                raise OptionError(f"parameter {section}.{attribute}: pycolmap's {SECTIONS[section]} has no option "
                                  f"{attribute!r}")
            try:
                setattr(where, last, convert(getattr(where, last), text))
            except (TypeError, ValueError) as exc:
                raise OptionError(f"parameter {section}.{attribute}={text}: {exc}".splitlines()[0]) from None
        return built

    def check(self, pycolmap) -> None:
        """Build every section's options: ``OptionError`` names the first parameter pycolmap refuses."""
        for section in SECTIONS:
            self.build(section, pycolmap)


def convert(current, text: str):
    """``text`` as a value of ``current``'s type (bool, int, float, str, path or enum)."""
    kind = type(current)
    if kind is bool:
        if text.lower() not in TRUE + FALSE:
            raise ValueError(f"expects true or false, not {text!r}")
        return text.lower() in TRUE
    if kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            raise ValueError(f"expects {'a whole number' if kind is int else 'a number'}, not {text!r}") from None
    if kind is str or isinstance(current, PurePath):
        return kind(text)
    members = getattr(kind, "__members__", None)
    if members is not None:
        if text not in members:
            raise ValueError(f"expects one of {', '.join(members)}, not {text!r}")
        return members[text]
    raise ValueError(f"is a {kind.__name__}, which cannot be set from a parameter")
