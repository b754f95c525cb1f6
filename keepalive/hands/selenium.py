"""The Selenium hands: the controlled browser and the page model, as one object the loop uses."""

from __future__ import annotations

import time

from selenium.common.exceptions import WebDriverException

from keepalive.hands.browser import open_browser, open_notebook, quit_browser
from keepalive.hands.page import Observation, PageModel, label_says
from keepalive.states import Action, PageState


class SeleniumHands:
    sees_page = True

    def __init__(self, cfg):
        self.cfg = cfg
        self.model = PageModel.load(cfg.origin, cfg.page)
        self.driver = None
        self.main = None

    def start(self) -> None:
        self.driver = open_browser(self.cfg.browser, self.cfg.profile_dir)
        self.reopen()

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

    def reopen(self) -> None:
        """Reload the notebook in the one tab (closing any other), as the scheduled reopen does.

        A browser that was closed under the daemon's feet is started again.
        """
        try:
            self.main = open_notebook(self.driver, self.cfg.url, own_browser=not self.cfg.browser.attach)
        except WebDriverException:
            quit_browser(self.driver)
            self.start()

    def close(self) -> None:
        if self.driver is not None and not self.cfg.browser.keep_open:
            quit_browser(self.driver)
        self.driver = None
