"""The Selenium hands: the controlled browser and the page model, as one object the loop uses.

One browser for the daemon's life. A page that cannot be reached (this PC offline, DNS, an outage) is not
a broken browser: the tab shows the browser's error page, which the page model reads as ``offline``, and
the same browser loads the notebook again when the supervisor says so. Only a browser that is gone is
started again, at most once per ``restart_backoff`` step (doubling), never in a loop.
"""

from __future__ import annotations

import time

from selenium.common.exceptions import TimeoutException, WebDriverException

from keepalive.hands.browser import BrowserError, open_browser, open_notebook, quit_browser
from keepalive.hands.page import BROWSER_GONE, Observation, PageModel, label_says
from keepalive.states import Action, PageState


def unreachable(exc: WebDriverException) -> bool:
    """Did the browser fail to load the page because the site cannot be reached (not because it is gone)?"""
    return "net::ERR_" in (getattr(exc, "msg", None) or str(exc))


class SeleniumHands:
    sees_page = True

    def __init__(self, cfg, clock=time.monotonic, restart_backoff=(10.0, 600.0)):
        self.cfg = cfg
        self.model = PageModel.load(cfg.origin, cfg.page)
        self.driver = None
        self.main = None
        self.clock = clock
        self.restart_backoff = restart_backoff  # (first, cap) seconds between two starts of a browser that died
        self.restarts = 0  # browsers started again after the first
        self.load_problem: str | None = None  # why the notebook did not load the last time, in words
        self._next_restart = 0.0

    def _browser_language(self) -> str:
        language = self.cfg.page.get("language", "auto")
        return "en-US" if language in ("auto", "en") else language

    def start(self) -> None:
        """Start (or attach to) the browser and open the notebook; an unreachable notebook is not an error."""
        self.driver = open_browser(self.cfg.browser, self.cfg.profile_dir, language=self._browser_language())
        self._load()

    def observe(self) -> Observation:
        if self.driver is None:
            return Observation(PageState.UNKNOWN, {}, "no browser")
        return self.model.observe(self.driver, self.main)

    def act(self, action: Action) -> bool:
        if action is Action.RELOAD:
            self.reopen()
            return True
        return self.model.act(self.driver, action, self.cfg.url, self.main)

    def release_runtime(self) -> bool:
        """Runtime menu > Disconnect and delete runtime, confirmed ([release_runtime] in colab_page.toml).

        Done when the connect button says the notebook has no runtime, within ``confirm_seconds`` (the
        menu's item, which the menu draws a moment after its button is clicked, is waited for as long).
        """
        from selenium.webdriver.common.by import By

        spec = self.model.page["release_runtime"]
        driver = self.driver
        try:
            menu = driver.find_elements(By.CSS_SELECTOR, spec["menu_button"]) if driver else []
            if not menu or not self.model.click(driver, menu[0]):
                return False
            deadline = time.monotonic() + float(spec["confirm_seconds"])
            while not self.model.click_text(driver, spec["menu_item_texts"], selector="*"):
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.2)
            while time.monotonic() < deadline:
                self.model.click_text(driver, spec["confirm_buttons"], spec["confirm_texts"])
                if label_says(self.model.read(driver).get("connect"), self.model.page["connect"]) == "disconnected":
                    return True
                time.sleep(0.2)
        except WebDriverException:
            pass
        return False

    def _load(self) -> bool:
        """Show the notebook in the one tab; False where the browser itself failed (not an unreachable site)."""
        self.load_problem = None
        try:
            self.main = open_notebook(self.driver, self.cfg.url, own_browser=not self.cfg.browser.attach)
        except TimeoutException:  # the browser works; the page did not answer: observe() reads what it shows
            self.load_problem = f"the notebook did not load within {self.cfg.browser.page_load_seconds:g} s"
            return True
        except WebDriverException as exc:
            self.load_problem = (getattr(exc, "msg", None) or str(exc)).strip().splitlines()[0]
            return unreachable(exc)  # the tab shows the browser's error page: observe() reads it as offline
        except BROWSER_GONE as exc:  # chromedriver itself is gone
            self.load_problem = f"the browser is gone ({type(exc).__name__})"
            return False
        return True

    def reopen(self) -> None:
        """Reload the notebook in the one tab (closing any other), as the scheduled reopen does.

        A browser that is gone (closed under the daemon's feet, crashed) is started again, once; before the
        back-off step since the last such start has passed, BrowserError says when the next try is.
        """
        if self.driver is not None and self._load():
            return
        now = self.clock()
        if now < self._next_restart:
            raise BrowserError(f"the browser is gone; next start in {self._next_restart - now:.0f} s")
        first, cap = self.restart_backoff
        self._next_restart = now + min(cap, first * 2 ** self.restarts)
        self.restarts += 1
        self.close(keep_open=False)
        self.start()

    def close(self, keep_open: bool | None = None) -> None:
        """Let go of the browser; it is closed (with every process it started) unless ``browser.keep_open``."""
        keep = self.cfg.browser.keep_open if keep_open is None else keep_open
        if self.driver is not None and not keep:
            quit_browser(self.driver)
        self.driver = None
