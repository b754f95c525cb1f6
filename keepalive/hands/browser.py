"""The controlled browser: start Chrome with the user's persistent profile, or attach to one.

Google often refuses sign-in inside a browser started by chromedriver, so the profile persists in
the user's data folder (sign in once, stay signed in), and a Chrome that the user started
themselves with ``--remote-debugging-port`` can be attached instead. The debugging port gives full
control of that browser to anything on the machine: only 127.0.0.1 is accepted.

Chromium refuses to start as root without ``--no-sandbox`` (containers, WSL, CI): every browser this
module starts gets it there, for every command.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

# Flags that keep a controlled Chromium quiet on closed networks and in CI.
QUIET_FLAGS = ["--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
BROWSER_NAMES = ("google-chrome", "google-chrome-stable", "chromium", "chromium-browser")
INSTALL_HINT = ("no Chrome or Chromium found: install Google Chrome, or on Debian/Ubuntu "
                "'sudo apt-get install chromium chromium-driver' (or set browser.binary)")


class BrowserError(RuntimeError):
    """The browser cannot be started or attached; the message says what to do."""


@dataclass
class BrowserConfig:
    kind: str = "chrome"  # chrome (Chrome or Chromium) or edge
    headless: bool = False
    driver_path: str = ""  # explicit chromedriver; else Selenium Manager finds one
    binary: str = ""  # explicit browser binary; else the system's Chrome/Chromium
    profile_dir: str = ""  # persistent profile; default: the user data dir's "browser-profile"
    attach: str = ""  # "127.0.0.1:9222": attach to a Chrome started with --remote-debugging-port
    keep_open: bool = False  # leave the browser open when the daemon stops
    use_webdriver_manager: bool = False
    extra_args: list[str] = field(default_factory=list)


def check_attach_address(address: str) -> str:
    host, _, port = address.rpartition(":")
    if host not in LOOPBACK or not port.isdigit():
        raise BrowserError(f"attach address {address!r} refused: use 127.0.0.1:PORT (the debugging port must stay local)")
    return address


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def root_flags() -> list[str]:
    """What Chromium needs to start as root: no sandbox, and no reliance on a small /dev/shm."""
    return ["--no-sandbox", "--disable-dev-shm-usage"] if running_as_root() else []


def private_dir(path) -> Path:
    """Create ``path`` readable by its owner only (the profile holds the Google session)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def write_private(path, data: bytes) -> Path:
    """Write ``data`` to a file only its owner can read (0600), even where it existed before."""
    path = Path(path)
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(handle, "wb") as out:
        os.chmod(path, 0o600)
        out.write(data)
    return path


def _binary(cfg: BrowserConfig) -> str:
    if cfg.binary:
        return cfg.binary
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    if sys.platform.startswith("linux"):
        raise BrowserError(INSTALL_HINT)
    return ""  # let Selenium find Chrome where it is installed (Windows, macOS)


def _driver_path(cfg: BrowserConfig) -> str | None:
    if cfg.driver_path:
        return cfg.driver_path
    if cfg.use_webdriver_manager:
        try:
            from webdriver_manager.chrome import ChromeDriverManager
        except ImportError:
            raise BrowserError("use_webdriver_manager is on but webdriver-manager is not installed: "
                               "pip install 'colab-keepalive[webdriver-manager]'") from None
        return ChromeDriverManager().install()
    return shutil.which("chromedriver")  # None: Selenium Manager resolves one


PAGE_LOAD_TIMEOUT_MS = 60_000
SCRIPT_TIMEOUT_MS = 20_000


def open_browser(cfg: BrowserConfig, profile_default: Path):
    """Start (or attach to) the browser and return the WebDriver."""
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException

    edge = cfg.kind == "edge"
    options = webdriver.EdgeOptions() if edge else webdriver.ChromeOptions()
    # A native dialog ("Leave site?" while the Drive pop-up redirects or the tab reloads) is accepted, not
    # dismissed (WebDriver's default), which would keep the tab where it was.
    options.unhandled_prompt_behavior = "accept"
    # a page that never finishes loading, or a script that never returns, must not freeze the watch for 5 min
    options.timeouts = {"pageLoad": PAGE_LOAD_TIMEOUT_MS, "script": SCRIPT_TIMEOUT_MS}
    if cfg.attach:
        options.debugger_address = check_attach_address(cfg.attach)
    else:
        binary = "" if edge else _binary(cfg)
        profile = private_dir(cfg.profile_dir or profile_default)
        options.add_argument(f"--user-data-dir={profile}")
        options.add_argument("--lang=en-US")
        options.add_experimental_option("prefs", {"intl.accept_languages": "en-US,en"})
        for flag in dict.fromkeys(QUIET_FLAGS + root_flags() + list(cfg.extra_args)):
            options.add_argument(flag)
        if cfg.headless:
            options.add_argument("--headless=new")
            options.add_argument("--window-size=1280,900")
        if binary:
            options.binary_location = binary
    service_cls = webdriver.EdgeService if edge else webdriver.ChromeService
    driver_path = _driver_path(cfg)
    # the driver and its browser in a process group of their own, so that a wedged browser can be ended whole
    popen_kw = {} if sys.platform == "win32" else {"start_new_session": True}
    service = service_cls(executable_path=driver_path, popen_kw=popen_kw) if driver_path else service_cls(popen_kw=popen_kw)
    try:
        return (webdriver.Edge if edge else webdriver.Chrome)(options=options, service=service)
    except WebDriverException as exc:
        first = (exc.msg or str(exc)).strip().splitlines()[0]
        if cfg.attach:
            hint = "is Chrome running with --remote-debugging-port on that port?"
        elif "cannot find" in first.lower() and "binary" in first.lower():
            hint = INSTALL_HINT
        else:
            hint = "close other Chrome windows using this profile, or set browser.driver_path and browser.binary"
            if running_as_root():
                hint += " (running as root: it was started with --no-sandbox, as Chromium requires)"
        raise BrowserError(f"cannot start the browser: {first} ({hint})") from None


def open_notebook(driver, url: str, own_browser: bool = True) -> str:
    """Show ``url`` in one tab and return that tab's handle.

    In the daemon's own browser every other tab or window is closed (no pile-up). In a browser the
    user started (attach), their tabs are left alone: the tab already showing the notebook is
    reused, or one new tab is opened.
    """
    handles = driver.window_handles
    if own_browser:
        keep = handles[0]
        for handle in handles[1:]:
            driver.switch_to.window(handle)
            driver.close()
        driver.switch_to.window(keep)
    else:
        keep = None
        for handle in handles:
            driver.switch_to.window(handle)
            if driver.current_url.split("#")[0] == url.split("#")[0]:
                keep = handle
                break
        if keep is None:
            driver.switch_to.new_window("tab")
            keep = driver.current_window_handle
    driver.get(url)
    return keep


def quit_browser(driver, limit: float = 30.0) -> None:
    """Close the browser we started; one that does not close within ``limit`` seconds is killed.

    A native prompt raised while the windows close (a page's "Leave site?") can leave chromedriver
    waiting for ever: the watch must still end, and free the profile for the next start.
    """
    from selenium.common.exceptions import WebDriverException

    def close() -> None:
        try:
            driver.quit()
        except (WebDriverException, OSError):
            pass

    closer = threading.Thread(target=close, name="browser-quit", daemon=True)
    closer.start()
    closer.join(limit)
    process = getattr(getattr(driver, "service", None), "process", None)
    if closer.is_alive() and process is not None and sys.platform != "win32":
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
