"""The daemon's settings: defaults < config file (TOML) < environment < command line.

The config file lives in the user's config folder (platformdirs), or where ``KEEPALIVE_CONFIG``
points. ``KEEPALIVE_HOME`` puts config, state and data folders under one folder (the demo and the
tests use it). ``KEEPALIVE_COLAB_ORIGIN`` sets which site counts as Colab.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import platformdirs

from keepalive.hands.browser import BrowserConfig
from keepalive.supervisor import SupervisorConfig

APP = "colab-keepalive"
COLAB_ORIGIN = "https://colab.research.google.com"
NOTEBOOK_PATH = re.compile(r"^/(drive|github|gist|notebooks|notebook)/\S+")


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
    poll_seconds: float = 30.0
    reopen_minutes: float = 60.0
    view_refresh: float = 2.0  # refreshes a second of the live view
    notify_enabled: bool = True
    notify_backend: str = "desktop"  # desktop, bell, or record (tests)
    notify_min_interval_seconds: float = 600.0
    browser: BrowserConfig = field(default_factory=BrowserConfig)
    supervisor: SupervisorConfig = field(default_factory=SupervisorConfig)
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
    ("schedule", "reopen_minutes"): "reopen_minutes", ("view", "refresh_per_second"): "view_refresh",
    ("notify", "enabled"): "notify_enabled", ("notify", "backend"): "notify_backend",
    ("notify", "min_interval_seconds"): "notify_min_interval_seconds",
}
_NESTED = {"browser": BrowserConfig, "supervisor": SupervisorConfig}


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


def _apply(cfg: Config, data: dict, path: Path) -> None:
    for section, values in data.items():
        if section in ("page", "keys"):
            setattr(cfg, section, values if isinstance(values, dict) else {})
            continue
        if not isinstance(values, dict):
            cfg.warnings.append(f"{path}: '{section}' is not a [section]; ignored")
            continue
        if section in _NESTED:
            known = {f.name: f for f in dataclasses.fields(_NESTED[section])}
            current = getattr(cfg, section)
            for key, value in values.items():
                if key not in known:
                    cfg.warnings.append(f"{path}: unknown key {section}.{key}; ignored")
                    continue
                current = dataclasses.replace(current, **{key: _typed(section, key, value, getattr(current, key))})
            setattr(cfg, section, current)
            continue
        for key, value in values.items():
            attr = _KEYS.get((section, key))
            if attr is None:
                cfg.warnings.append(f"{path}: unknown key {section}.{key}; ignored")
            else:
                setattr(cfg, attr, _typed(section, key, value, getattr(cfg, attr)))


def _typed(section: str, key: str, value, default):
    if isinstance(default, bool) or default is None:
        ok = isinstance(value, bool) or default is None
    elif isinstance(default, (int, float)):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = type(default)(value) if ok else value
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise ConfigError(f"config {section}.{key} = {value!r} should be a {type(default).__name__}")
    return value


def load(path=None, env=None, **overrides) -> Config:
    """Build the config; ``overrides`` are command-line values (None means "not given")."""
    env = os.environ if env is None else env
    cfg = Config(dirs=Dirs.for_user(env))
    cfg.path = Path(path) if path else config_path(env)
    _apply(cfg, _read(cfg.path), cfg.path)
    if env.get("KEEPALIVE_COLAB_ORIGIN"):
        cfg.origin = env["KEEPALIVE_COLAB_ORIGIN"]
    for key, value in overrides.items():
        if value is not None:
            setattr(cfg, key, value)
    cfg.origin = cfg.origin.rstrip("/")
    if cfg.mode not in ("selenium", "keys"):
        raise ConfigError(f"mode {cfg.mode!r} is not known: use 'selenium' or 'keys'")
    return cfg


def check_colab_url(url: str, origin: str) -> str:
    """The URL if it is a notebook on ``origin``; ConfigError saying what a good one looks like."""
    url = (url or "").strip()
    parsed = urlparse(url)
    if not url.startswith(origin.rstrip("/") + "/") or not NOTEBOOK_PATH.match(parsed.path):
        raise ConfigError(f"{url!r} is not a Colab notebook URL: paste one like {origin}/drive/1AbC... "
                          "(File > Share > Copy link in Colab)")
    return url


def save_url(cfg: Config, url: str) -> None:
    """Remember the notebook URL in the user's config file, keeping everything else in it."""
    path = cfg.path
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    line = f'url = "{url}"'
    if re.search(r"(?m)^\[colab\]\s*$", text):
        section = re.search(r"(?ms)^\[colab\]\s*$(.*?)(?=^\[|\Z)", text)
        body = section.group(1)
        new_body = re.sub(r"(?m)^url\s*=.*$", line, body) if re.search(r"(?m)^url\s*=", body) else f"\n{line}{body}"
        text = text[:section.start(1)] + new_body + text[section.end(1):]
    else:
        text = f"[colab]\n{line}\n\n{text}"
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)
    cfg.url = url
