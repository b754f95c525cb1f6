"""The controlled browser: start Chrome with the user's persistent profile, or attach to one.

Google often refuses sign-in inside a browser started by chromedriver, so the profile persists in
the user's data folder (sign in once, stay signed in), and a Chrome that the user started
themselves with ``--remote-debugging-port`` can be attached instead. The debugging port gives full
control of that browser to anything on the machine: only 127.0.0.1 is accepted.

Chromium refuses to start as root without ``--no-sandbox`` (containers, WSL, CI): every browser this
module starts gets it there, for every command.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import sys
import threading
import time
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
    page_load_seconds: float = 60.0  # a page that never finishes loading must not freeze the watch


def check_attach_address(address: str) -> str:
    host, _, port = address.rpartition(":")
    if host not in LOOPBACK or not port.isdigit():
        raise BrowserError("browser.attach refused: use 127.0.0.1:PORT, nothing else "
                           "(the debugging port must stay local; the value is not shown, it may hold a token)")
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


SCRIPT_TIMEOUT_MS = 20_000
NO_DISPLAY = ("no display to open the browser window on (DISPLAY and WAYLAND_DISPLAY are not set: a service, SSH, "
              "a server): add --headless (sign in to Google once in a window first), or set browser.headless = true")


def _process_line(pid: int) -> tuple[int | None, str]:
    """(parent pid, command line) of ``pid`` where the system tells (Linux /proc); (None, "") elsewhere."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8", errors="replace")
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return None, ""
    parent = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("PPid:")), None)
    return parent, command


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def profile_holder(profile: Path) -> str | None:
    """Who holds ``profile`` (Chrome's ``SingletonLock``, "host-pid"), in words; None if no live process does."""
    try:
        target = os.readlink(Path(profile) / "SingletonLock")
    except OSError:
        return None
    host, _, pid_text = target.rpartition("-")
    if not pid_text.isdigit() or host != socket.gethostname() or not _alive(int(pid_text)):
        return None  # a stale lock: Chrome clears it itself
    browser = int(pid_text)
    parent, line = _process_line(browser)
    for _ in range(8):  # up the parents: chromedriver, then the program that started it
        if parent in (None, 0, 1):
            break
        parent, above = parent, _process_line(parent)
        if "keepalive" in above[1]:
            return (f"the browser (pid {browser}) of another keepalive daemon, pid {parent} ({above[1][:120]}): stop "
                    "that daemon first, or give this job a profile of its own (browser.profile_dir)")
        parent = above[0]
    name = line.split(" ")[0].rsplit("/", 1)[-1] if line else "a browser"
    return (f"{name} (pid {browser}), left over from an earlier run or started by hand: close it "
            f"(e.g. 'kill {browser}') and start again")


_STARTED: set[int] = set()  # process groups of the browsers this process started and has not closed yet


@atexit.register
def _end_left_browsers() -> None:
    """However the program ends (an exception, a signal turned into SystemExit), no browser it started stays."""
    for group in list(_STARTED):
        _end_group(group, wait=0.0)


def _end_group(group: int, wait: float) -> None:
    """Wait up to ``wait`` s for process group ``group`` to end by itself, then kill what is left of it."""
    _STARTED.discard(group)
    if sys.platform == "win32":
        return
    deadline = time.monotonic() + wait
    while True:
        try:
            os.killpg(group, 0)
        except (ProcessLookupError, PermissionError):
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    try:
        os.killpg(group, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def open_browser(cfg: BrowserConfig, profile_default: Path, language: str = "en-US"):
    """Start (or attach to) the browser and return the WebDriver; BrowserError names why it cannot."""
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException

    edge = cfg.kind == "edge"
    options = webdriver.EdgeOptions() if edge else webdriver.ChromeOptions()
    # A native dialog ("Leave site?" while the Drive pop-up redirects or the tab reloads) is accepted, not
    # dismissed (WebDriver's default), which would keep the tab where it was.
    options.unhandled_prompt_behavior = "accept"
    # a page that never finishes loading, or a script that never returns, must not freeze the watch for 5 min
    options.timeouts = {"pageLoad": int(cfg.page_load_seconds * 1000), "script": SCRIPT_TIMEOUT_MS}
    if cfg.attach:
        options.debugger_address = check_attach_address(cfg.attach)
    else:
        binary = "" if edge else _binary(cfg)
        if not cfg.headless and sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                                           or os.environ.get("WAYLAND_DISPLAY")):
            raise BrowserError(f"cannot start the browser: {NO_DISPLAY}")
        profile = private_dir(cfg.profile_dir or profile_default)
        holder = profile_holder(profile)
        if holder:
            raise BrowserError(f"cannot start the browser: its profile {profile} is in use by {holder}")
        options.add_argument(f"--user-data-dir={profile}")
        options.add_argument(f"--lang={language}")
        accept = "en-US,en" if language == "en-US" else f"{language},en-US,en"
        options.add_experimental_option("prefs", {"intl.accept_languages": accept})
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
        driver = (webdriver.Edge if edge else webdriver.Chrome)(options=options, service=service)
    except WebDriverException as exc:
        raise BrowserError(f"cannot start the browser: {_why(cfg, exc, profile_default)}") from None
    process = getattr(driver.service, "process", None)
    if process is not None and sys.platform != "win32":
        _STARTED.add(process.pid)  # the driver's own process group (start_new_session): never an attached Chrome
    return driver


def _why(cfg: BrowserConfig, exc, profile_default: Path) -> str:
    """The cause of a failed start, in words, with what to do."""
    text = (getattr(exc, "msg", None) or str(exc)).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    lower = text.lower()
    if cfg.attach:
        return f"{first} (is Chrome running with --remote-debugging-port on {cfg.attach}?)"
    if "cannot find" in lower and "binary" in lower:
        return f"{first} ({INSTALL_HINT})"
    if "display" in lower or "x server" in lower:
        return NO_DISPLAY
    holder = profile_holder(Path(cfg.profile_dir or profile_default))
    if holder or "user data directory is already in use" in lower:
        return f"its profile {cfg.profile_dir or profile_default} is in use by {holder or 'another browser'}"
    hint = "set browser.driver_path and browser.binary to a matching chromedriver and browser"
    if running_as_root():
        hint += " (running as root: it was started with --no-sandbox, as Chromium requires)"
    return f"{first} ({hint})"


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


def quit_browser(driver, limit: float = 10.0) -> None:
    """Close the browser we started, with every process it started: what is left after ``limit`` s is killed.

    A native prompt raised while the windows close (a page's "Leave site?") can leave chromedriver
    waiting for ever: the watch must still end, and free the profile for the next start. Chrome's helper
    processes (renderers, GPU, zygote) share the driver's process group; any of them still there a few
    seconds after the browser closed is killed, so that none holds the profile for the next start.
    """
    def close() -> None:
        try:
            driver.quit()
        except Exception:  # noqa: BLE001 - a browser already gone (urllib3's errors too): its group is ended below
            pass

    closer = threading.Thread(target=close, name="browser-quit", daemon=True)
    closer.start()
    closer.join(limit)
    process = getattr(getattr(driver, "service", None), "process", None)
    if process is not None and process.pid in _STARTED:
        _end_group(process.pid, wait=0.0 if closer.is_alive() else 3.0)
