"""The daemon's settings: defaults < config file (TOML) < environment < command line.

The config file lives in the user's config folder (platformdirs), or where ``KEEPALIVE_CONFIG``
points. ``KEEPALIVE_HOME`` puts config, state and data folders under one folder (the demo and the
tests use it). ``KEEPALIVE_COLAB_ORIGIN`` sets which site counts as Colab.

Every value is checked once, after all layers are applied: numbers must be finite and inside their
range (``RANGES``), the job name follows ``colab_side.layout.check_job_name`` (the notebook's own
rule), the origin and the notebook URL are parsed strictly. The file is written with ``tomlkit``
only, so a value can never become TOML syntax.

Jobs: ``[job] name`` is the job used when no ``--job`` is given (``keepalive notebook --job X`` and ``keepalive
run --job X`` make X that job) and ``[colab] url`` is its notebook; every other job watched by name keeps its
notebook in ``[jobs.NAME] url``. A file of one job (``[job]`` and ``[colab]`` only) reads as before.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import platformdirs
import tomlkit
import tomlkit.exceptions

from colab_side.layout import check_job_name, is_job_name
from keepalive.cli_mode.settings import RANGES as CLI_RANGES, CliConfig
from keepalive.hands.browser import BrowserConfig
from keepalive.notify import check_urls
from keepalive.supervisor import SupervisorConfig

APP = "colab-keepalive"
COLAB_ORIGIN = "https://colab.research.google.com"
NOTEBOOK_PATH = re.compile(r"^/(drive|github|gist|notebooks|notebook)/[A-Za-z0-9._~%/+=:@!$&'()*,;-]+$")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
MODES = ("selenium", "keys", "cli")
CHOICES = {"mode": MODES, "notify_backend": ("desktop", "bell", "record"),
           "browser.kind": ("chrome", "edge"), "supervisor.on_done": ("exit", "stay")}
DAY = 86400.0
# Settings whose values may hold a token or password: never printed, logged or echoed in an error.
SECRET_SETTINGS = ("notify.urls", "browser.attach")
# Inclusive (low, high) of every numeric setting; a number without an entry must be finite and >= 0.
RANGES = {
    "poll_seconds": (0.05, 3600.0), "reopen_minutes": (1.0, 7 * 24 * 60.0), "view_refresh": (0.1, 30.0),
    "notify_min_interval_seconds": (0.0, 7 * DAY),
    "supervisor.grace_seconds": (1.0, 7 * DAY), "supervisor.dead_after": (1, 1000),
    "supervisor.recovery_timeout_seconds": (1.0, 7 * DAY),
    "supervisor.retry_backoff_start": (0.1, DAY), "supervisor.retry_backoff_cap": (0.1, 7 * DAY),
    "supervisor.gpu_backoff_start": (0.1, 7 * DAY), "supervisor.gpu_backoff_cap": (0.1, 7 * DAY),
    "supervisor.crash_loop_restarts": (1, 1000), "supervisor.crash_loop_hours": (0.01, 7 * 24.0),
    "supervisor.fast_poll_seconds": (0.05, 60.0), "supervisor.follow_seconds": (0.0, DAY),
    "supervisor.step_retry_seconds": (0.1, DAY), "browser.page_load_seconds": (1.0, 600.0),
    **{f"cli.{name}": span for name, span in CLI_RANGES.items()},
}


def _unsafe(text: str) -> bool:
    """Whether ``text`` holds what no origin or URL may: a quote, a backslash, whitespace, a control character."""
    return any(c in "\"'\\" or c.isspace() or not c.isprintable() for c in text)


class ConfigError(ValueError):
    """The config cannot be used; the message is one line saying what to do."""


@dataclass
class Dirs:
    config: Path
    state: Path
    data: Path

    @classmethod
    def for_user(cls, env) -> "Dirs":
        home = env.get("KEEPALIVE_HOME")
        if home:
            root = Path(home)
            return cls(root / "config", root / "state", root / "data")
        return cls(Path(platformdirs.user_config_dir(APP)), Path(platformdirs.user_state_dir(APP)),
                   Path(platformdirs.user_data_dir(APP)))


@dataclass
class Config:
    origin: str = COLAB_ORIGIN
    url: str = ""
    job: str = "meshroom"
    drive_folder: str = ""  # the PC's "My Drive" folder; empty: found automatically
    mode: str = "selenium"  # selenium, or keys
    poll_seconds: float = 10.0  # the page is looked at this often (docs/supervisor.md: why)
    keep_awake: bool = True  # keep the PC from sleeping while a job is watched
    release_runtime_at_end: bool = True  # disconnect and delete the runtime at done, failed or blocked
    reopen_minutes: float = 60.0
    view_refresh: float = 2.0  # refreshes a second of the live view
    notify_enabled: bool = True
    notify_backend: str = "desktop"  # desktop, bell, or record (tests)
    notify_min_interval_seconds: float = 600.0
    notify_urls: list = field(default_factory=list)  # apprise URLs: the phone (ntfy, Telegram, e-mail...)
    browser: BrowserConfig = field(default_factory=BrowserConfig)
    supervisor: SupervisorConfig = field(default_factory=SupervisorConfig)
    cli: CliConfig = field(default_factory=CliConfig)  # cli mode: google-colab-cli instead of a browser
    jobs: dict = field(default_factory=dict)  # job name → its notebook URL, for jobs other than the file's [job] name
    page: dict = field(default_factory=dict)  # overrides of colab_page.toml
    keys: dict = field(default_factory=dict)  # overrides of keys_sequences.toml
    dirs: Dirs | None = None
    path: Path | None = None  # the config file
    warnings: list[str] = field(default_factory=list)

    @property
    def profile_dir(self) -> Path:
        return self.dirs.data / "browser-profile"


# [section] key → Config attribute (or "browser."/"supervisor." nested attribute)
_KEYS = {
    ("colab", "origin"): "origin", ("colab", "url"): "url",
    ("job", "name"): "job", ("job", "drive_folder"): "drive_folder",
    ("daemon", "mode"): "mode", ("daemon", "poll_seconds"): "poll_seconds",
    ("daemon", "keep_awake"): "keep_awake", ("daemon", "release_runtime_at_end"): "release_runtime_at_end",
    ("schedule", "reopen_minutes"): "reopen_minutes", ("view", "refresh_per_second"): "view_refresh",
    ("notify", "enabled"): "notify_enabled", ("notify", "backend"): "notify_backend",
    ("notify", "min_interval_seconds"): "notify_min_interval_seconds", ("notify", "urls"): "notify_urls",
}
_FLAGS = {"poll_seconds": "--poll-seconds", "job": "--job", "origin": "--origin", "mode": "--mode"}
# attribute → how the user says it: the file's key, and the command-line flag where there is one
_NAMES = {attr: f"{section}.{key}" + (f" ({_FLAGS[attr]})" if attr in _FLAGS else "")
          for (section, key), attr in _KEYS.items()}
_NESTED = {"browser": BrowserConfig, "supervisor": SupervisorConfig, "cli": CliConfig}


def config_path(env) -> Path:
    return Path(env["KEEPALIVE_CONFIG"]) if env.get("KEEPALIVE_CONFIG") else Dirs.for_user(env).config / "config.toml"


def _read(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML ({exc}): fix that line or delete the file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read ({exc})") from None


def _jobs(values, path: Path, warnings: list) -> dict:
    """``[jobs.NAME] url = ...`` as {NAME: url}; anything else in it is warned about and ignored."""
    if not isinstance(values, dict):
        warnings.append(f"{path}: 'jobs' is not a [section]; ignored")
        return {}
    jobs = {}
    for name, table in values.items():
        if not is_job_name(name) or not isinstance(table, dict):
            warnings.append(f"{path}: [jobs.{name}] is not a job's table; ignored")
            continue
        for key, value in table.items():
            if key != "url":
                warnings.append(f"{path}: unknown key jobs.{name}.{key}; ignored")
            elif isinstance(value, str):
                jobs[name] = value
            else:
                raise ConfigError(f"config jobs.{name}.url = {value!r} should be a str")
    return jobs


def _apply(cfg: Config, data: dict, path: Path) -> None:
    for section, values in data.items():
        if section == "jobs":
            cfg.jobs = _jobs(values, path, cfg.warnings)
            continue
        if section in ("page", "keys"):
            setattr(cfg, section, values if isinstance(values, dict) else {})
            continue
        if not isinstance(values, dict):
            cfg.warnings.append(f"{path}: '{section}' is not a [section]; ignored")
            continue
        if section in _NESTED:
            known = {f.name for f in dataclasses.fields(_NESTED[section])}
            current = getattr(cfg, section)
            for key, value in values.items():
                if key not in known:
                    cfg.warnings.append(f"{path}: unknown key {section}.{key}; ignored")
                    continue
                current = dataclasses.replace(current, **{key: _typed(f"{section}.{key}", value, getattr(current, key))})
            setattr(cfg, section, current)
            continue
        for key, value in values.items():
            attr = _KEYS.get((section, key))
            if attr is None:
                cfg.warnings.append(f"{path}: unknown key {section}.{key}; ignored")
            else:
                setattr(cfg, attr, _typed(f"{section}.{key}", value, getattr(cfg, attr)))


def _typed(name: str, value, default):
    """``value`` as the type of ``default``; ConfigError naming the setting otherwise."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool) or isinstance(value, float) and value.is_integer()
        value = int(value) if ok else value
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, list):
        ok = isinstance(value, list) and all(isinstance(item, str) for item in value)
    else:
        ok = isinstance(value, type(default))
    if not ok:
        kind = "list of strings" if isinstance(default, list) else type(default).__name__
        shown = "(its value is not shown: it may hold a secret)" if name in SECRET_SETTINGS else f"= {value!r}"
        raise ConfigError(f"config {name} {shown} should be a {kind}")
    return value


def _settings(cfg: Config):
    """(name as the user writes it, value) of every scalar setting, nested ones included."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if f.name in _NESTED:
            for inner in dataclasses.fields(value):
                yield f"{f.name}.{inner.name}", f"{f.name}.{inner.name}", getattr(value, inner.name)
        else:
            yield f.name, _NAMES.get(f.name, f.name), value


def check(cfg: Config) -> Config:
    """Every value in its range, known choice, safe job name and strict origin; else one ConfigError line."""
    for key, name, value in _settings(cfg):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if key in CHOICES and value not in CHOICES[key]:
                raise ConfigError(f"{name} {value!r} is not known: use {' or '.join(map(repr, CHOICES[key]))}")
            continue
        low, high = RANGES.get(key, (0, math.inf))
        if not math.isfinite(value) or not low <= value <= high:
            span = f"at least {low}" if high == math.inf else f"between {low} and {high}"
            raise ConfigError(f"{name} = {value!r} is out of range: use a number {span}")
    try:
        check_job_name(cfg.job)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    cfg.origin = check_origin(cfg.origin)
    try:
        check_urls(cfg.notify_urls)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return cfg


def load(path=None, env=None, **overrides) -> Config:
    """Build and check the config; ``overrides`` are command-line values (None means "not given")."""
    env = os.environ if env is None else env
    cfg = Config(dirs=Dirs.for_user(env))
    cfg.path = Path(path) if path else config_path(env)
    _apply(cfg, _read(cfg.path), cfg.path)
    default_job = cfg.job  # the file's [job] name: [colab] url is its notebook
    if env.get("KEEPALIVE_COLAB_ORIGIN"):
        cfg.origin = env["KEEPALIVE_COLAB_ORIGIN"]
    for key, value in overrides.items():
        if value is not None:
            setattr(cfg, key, value)
    if cfg.job != default_job and overrides.get("url") is None:
        cfg.url = cfg.jobs.get(cfg.job, "")  # another job's notebook, never the default one's
    return check(cfg)


def check_origin(origin: str) -> str:
    """``origin`` without a trailing slash if it is https://host[:port] (or http on this machine)."""
    text = (origin or "").rstrip("/")
    parts = None if _unsafe(text) else urlsplit(text)
    try:
        port_ok = parts is not None and (parts.port is None or parts.port > 0)
    except ValueError:
        port_ok = False
    if (not port_ok or not parts.hostname or parts.username or parts.password or parts.path or parts.query
            or parts.fragment or parts.scheme not in ("https", "http")
            or parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS):
        raise ConfigError(f"origin {origin!r} is not usable: use {COLAB_ORIGIN} (http only for 127.0.0.1)")
    return text


def check_colab_url(url: str, origin: str) -> str:
    """The URL if it is a notebook on ``origin``; ConfigError saying what a good one looks like."""
    url = (url or "").strip()
    origin = check_origin(origin)
    expected = urlsplit(origin)
    parts = None if _unsafe(url) else urlsplit(url)
    try:
        same_site = parts is not None and (parts.scheme, parts.hostname, parts.port) == (
            expected.scheme, expected.hostname, expected.port)
    except ValueError:  # a port that is not a number
        same_site = False
    if not same_site or parts.username or parts.password or not NOTEBOOK_PATH.fullmatch(parts.path):
        raise ConfigError(f"{url!r} is not a Colab notebook URL: paste one like {origin}/drive/1AbC... "
                          "(File > Share > Copy link in Colab)")
    return url


def _document(path: Path) -> tomlkit.TOMLDocument:
    try:
        return tomlkit.parse(path.read_text(encoding="utf-8")) if path.exists() else tomlkit.document()
    except (tomlkit.exceptions.ParseError, OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be updated ({exc}): fix it or delete it") from None


def _table(parent, name: str):
    """``parent[name]`` as a table, made (or made anew, if it was not one) when missing."""
    table = parent.get(name)
    if not isinstance(table, dict):
        table = tomlkit.table()
        parent[name] = table
    return table


def _default_job(document) -> str:
    job = document.get("job")
    name = job.get("name") if isinstance(job, dict) else None
    return name if isinstance(name, str) else Config.job


def save_url(cfg: Config, url: str) -> None:
    """Remember the notebook URL of ``cfg.job`` in the user's config file, keeping everything else in it (comments
    too): in [colab] url for the file's [job] name, in [jobs.NAME] url for any other job. A notebook runs one job:
    another job remembered with the same URL (a job name given by mistake) forgets it."""
    document = _document(cfg.path)
    jobs = document.get("jobs")
    for name, table in list(jobs.items()) if isinstance(jobs, dict) else ():
        if name != cfg.job and isinstance(table, dict) and table.get("url") == url:  # a notebook runs one job
            del table["url"]
            cfg.jobs.pop(name, None)
    if cfg.job == _default_job(document):
        _table(document, "colab")["url"] = url
    else:
        colab = document.get("colab")
        if isinstance(colab, dict) and colab.get("url") == url:
            del colab["url"]
        _table(_table(document, "jobs"), cfg.job)["url"] = url
        cfg.jobs[cfg.job] = url
    write_private(cfg.path, tomlkit.dumps(document))
    cfg.url = url


def remember_job(cfg: Config, job: str) -> None:
    """Make ``job`` the one used without --job ([job] name), its URL in [colab] url; the job it replaces keeps its
    URL in [jobs.OLD] url. Nothing is written when ``job`` is already that job."""
    document = _document(cfg.path)
    old = _default_job(document)
    if job == old and isinstance(document.get("job"), dict):
        return
    colab = _table(document, "colab")
    jobs = document.get("jobs") if isinstance(document.get("jobs"), dict) else None
    old_url = colab.pop("url", None) if job != old else None
    mine = jobs.get(job) if jobs is not None else None
    new_url = mine.pop("url", None) if isinstance(mine, dict) else None
    if isinstance(mine, dict) and not mine:
        del jobs[job]
    if old_url is not None:
        _table(_table(document, "jobs"), old)["url"] = old_url
    if new_url is not None:
        colab["url"] = new_url
    if not colab:
        del document["colab"]
    _table(document, "job")["name"] = job
    write_private(cfg.path, tomlkit.dumps(document))


def write_private(path: Path, text: str) -> None:
    """Replace the config file with ``text`` at once, keeping its mode; a new one is readable by its owner only
    (it may come to hold notification URLs, which carry tokens)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
        temp = path.with_name(path.name + ".tmp")
        temp.unlink(missing_ok=True)
        descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temp, mode)  # the umask may have taken bits away from a mode the user had chosen
        os.replace(temp, path)
    except OSError as exc:
        raise ConfigError(f"cannot write the config file {path} ({exc.strerror})") from None
