"""What ``plan`` recommends for a Meshroom job: the settings with which it fits a free account, or the cheapest way out.

A job fits when, on the size model (``estimates``) replayed as the runner computes it
(``plan.forecast_store``): the work files and Meshroom stay within a free GPU runtime's free local
disk, the store within the Drive budget, no kill makes the next session redo more than a session
holds (the redo and the interrupted chunk together), and the mean redo per kill is at most an hour.

The lever tried is DepthMap's ``downscale`` (1, 2, 4, 8, 16; default 2): depth maps of 1/downscale
the image's width and height, so DepthMap's and DepthMapFilter's bytes, the store's largest, fall
with its square. Coarser first only when finer does not fit. When none fits: a 100 GB Google One
plan for the Drive, or fewer photos per job (the most that fit at the chosen quality).
"""

from __future__ import annotations

from dataclasses import dataclass

from colab_side import budget, plan, settings
from colab_side.meshroom import estimates
from colab_side.settings import GB

MEAN_REDO_SECONDS = 3600.0  # the most a kill may cost on average
GOOGLE_ONE_BYTES = 100 * GB  # the smallest paid Drive plan (Google One 100 GB)


@dataclass(frozen=True)
class Option:
    downscale: int
    images: int
    drive_budget: int
    store: plan.StoreForecast
    local_need: int  # work files and Meshroom on the runtime's local disk
    local_free: int
    session_seconds: float

    @property
    def mean_redo(self) -> float:
        total = sum(k.seconds for k in self.store.kills)
        return sum(k.extra_seconds * k.seconds for k in self.store.kills) / total if total else 0.0

    @property
    def worst(self) -> plan.KillCost | None:
        return max(self.store.kills, key=lambda k: k.extra_seconds + k.seconds, default=None)

    def problems(self) -> list[str]:
        found = []
        if self.local_need > self.local_free:
            found.append(f"local disk {self.local_need / GB:.1f} GB > {self.local_free / GB:.1f} GB free")
        worst = self.worst
        if worst and worst.extra_seconds + worst.seconds > self.session_seconds:
            found.append(f"a kill during {worst.node} redoes {worst.extra_seconds / 3600:.1f} h before its "
                         f"{worst.seconds / 3600:.1f} h chunk, more than a {self.session_seconds / 3600:g} h session")
        if self.mean_redo > MEAN_REDO_SECONDS:
            found.append(f"a kill redoes {self.mean_redo / 3600:.2f} h on average (most 1 h)")
        return found

    @property
    def param(self) -> str:
        return "" if self.downscale == estimates.DEFAULT_DOWNSCALE else f"--param DepthMap_1.downscale={self.downscale} "

    def settings_line(self) -> str:
        return f"{self.param}--drive-budget {self.drive_budget / GB:.1f}"

    def price(self) -> str:
        worst = self.worst
        tail = f"; worst {worst.extra_seconds / 3600:.1f} h (during {worst.node})" if worst else ""
        return (f"downscale {self.downscale}, budget {self.drive_budget / GB:.1f} GB: redo per kill mean "
                f"{self.mean_redo / 3600:.2f} h{tail}; local disk {self.local_need / GB:.1f} GB; Drive "
                f"{self.store.peak_bytes / GB:.1f} GB; once: {self.store.recompute_seconds / 3600:.1f} h computed "
                "again to save local disk")


def option(model: dict, release: str, images: int, drive_budget: int, factor: int) -> Option:
    scaled = estimates.with_downscale(model, factor)
    colab = model["colab"]
    store = plan.forecast_store(plan.estimate(scaled, release, images), drive_budget,
                                session_seconds=float(colab["session_seconds"]))
    return Option(factor, images, drive_budget, store, store.local_peak + int(model["install_bytes"]),
                  int(colab["local_free_bytes"]), float(colab["session_seconds"]))


def quality(factor: int) -> str:
    if factor == estimates.DEFAULT_DOWNSCALE:
        return "DepthMap at Meshroom's default downscale 2 (full quality of the default pipeline)"
    share = (estimates.DEFAULT_DOWNSCALE / factor) ** 2
    return (f"DepthMap downscale {factor}: depth maps of 1/{factor} the photos' width and height, {share:.0%} of the "
            "default's depth samples: less geometric detail in the mesh, textures unchanged (Meshroom's DepthMap "
            "'downscale': 'Image downscale factor')")


@dataclass(frozen=True)
class Advice:
    fits: bool
    tried: tuple  # Options, the user's own downscale first
    chosen: Option | None
    way_out: str  # when nothing fits: the cheapest way out, with its settings


def advise(model: dict, release: str, images: int, drive_budget: int, margin: int, params=()) -> Advice:
    first = estimates.downscale(params)
    tried = []
    for factor in [f for f in estimates.DOWNSCALES if f >= first]:
        tried.append(option(model, release, images, drive_budget, factor))
        if not tried[-1].problems():
            return Advice(True, tuple(tried), tried[-1], "")
    ways = []
    most = _most_photos(model, release, images, drive_budget, first)
    if most:
        ways.append(f"fewer photos per job: at most {most} of the {images} at this quality, with "
                    f"{option(model, release, most, drive_budget, first).settings_line()}")
    paid = budget.default_budget(0, GOOGLE_ONE_BYTES, margin)
    for factor in [f for f in estimates.DOWNSCALES if f >= first]:
        candidate = option(model, release, images, paid, factor)
        if not candidate.problems():
            ways.append(f"a 100 GB Google One plan for Drive, with {candidate.settings_line()}")
            break
    if not ways:
        ways.append("a runtime with a larger local disk (a paid Colab plan) or a split of the photos into several jobs")
    return Advice(False, tuple(tried), None, "; or ".join(ways))


def _most_photos(model: dict, release: str, images: int, drive_budget: int, factor: int) -> int:
    """The most photos (fewer than ``images``) that fit at ``factor``, by bisection; 0 when even 10 do not."""
    low, high = 0, images
    while high - low > max(10, images // 100):
        middle = (low + high) // 2
        if option(model, release, middle, drive_budget, factor).problems():
            high = middle
        else:
            low = middle
    return low


def verdict_lines(found: Advice, release: str) -> list[str]:
    """The verdict first, then the exact settings and the price of each option tried."""
    if found.fits:
        chosen = found.chosen
        lines = [f"fits a free account with {chosen.settings_line()}",
                 f"  settings: keepalive notebook --meshroom {release} {chosen.settings_line()} (and your --images, --job)",
                 f"  quality: {quality(chosen.downscale)}"]
    else:
        lines = [f"needs {found.way_out}",
                 "  no setting fits a free account (a free GPU runtime's local disk, an 11 GB store on a free Drive, "
                 "a kill redoing at most one session and 1 h on average)"]
    for option in found.tried:
        problems = option.problems()
        lines.append(f"  {option.price()}: " + ("fits" if not problems else "; ".join(problems)))
    return lines


def main(args, extensions) -> int:  # python -m colab_side plan
    """``args``: images, meshroom, drive_budget_gb (None: a free Drive less the margin), drive_margin_gb, params,
    model. Exit 0 only when the job fits a free account with the settings printed."""
    checked = settings.make(images=args.images, meshroom=args.meshroom, drive_budget_gb=args.drive_budget_gb,
                            drive_margin_gb=args.drive_margin_gb, params=args.params)
    model = estimates.load(args.model)
    images = plan.count_images(checked.images, extensions)
    drive_budget = checked.drive_budget_bytes
    if drive_budget is None:
        drive_budget = budget.default_budget(0, int(model["colab"]["drive_bytes"]), checked.drive_margin_bytes)
    plan.estimate(model, checked.meshroom, images)  # an unknown release is one line before any figure
    found = advise(model, checked.meshroom, images, drive_budget, checked.drive_margin_bytes, checked.params)
    scaled = estimates.with_downscale(model, estimates.downscale(checked.params))
    print("\n".join(verdict_lines(found, checked.meshroom)))
    print(plan.render(plan.forecast(scaled, checked.meshroom, images, drive_budget)))
    return 0 if found.fits else 1
