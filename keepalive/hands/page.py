"""The Colab page model: what the tab shows, and how to press its buttons.

Knowledge of the page is data: ``colab_page.toml`` (overridable from the user's ``[page]`` config
table) and the page-reading JavaScript ``page_reader.js``. Reading is split in two: one script call
takes a *snapshot* of the page as rendered (the connect button's label, every open dialog with its
text and buttons read through every shadow root, the run buttons' stop symbol, the idle check, the
signed-in account); then ``classify``, a pure function, turns the snapshot into a ``PageState``.
Buttons are found by their visible text through all shadow roots, so a redesign that moves them
usually changes nothing here.

Colab's language: ``colab_page.<lang>.toml`` beside ``colab_page.toml`` adds that language's texts to the
English ones (each list keeps English: Colab leaves some of its page untranslated). ``[page] language``
chooses: ``auto`` (the default) follows the page's own ``<html lang>``, ``en`` keeps English only, a
language's name adds its texts always.
"""

from __future__ import annotations

import copy
import functools
import re
import sys
import time
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from urllib.parse import urlparse

from keepalive.config import ConfigError
from keepalive.states import Action, PageState

try:  # what a vanished browser raises: WebDriver errors, or urllib3's when chromedriver itself is gone
    from selenium.common.exceptions import WebDriverException
    from urllib3.exceptions import HTTPError as _Urllib3Error

    BROWSER_GONE = (WebDriverException, _Urllib3Error, ConnectionError)
except ImportError:  # pragma: no cover - selenium is a dependency
    BROWSER_GONE = (ConnectionError,)

_READER = resources.files("keepalive.hands").joinpath("page_reader.js").read_text(encoding="utf-8")


def merge_tables(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_tables(merged[key], value)
        else:
            merged[key] = value
    return merged


LANGUAGE_FILE = re.compile(r"^colab_page\.([a-z]{2,3}(?:-[a-z0-9]+)?)\.toml$")


def shipped_languages() -> list[str]:
    """The languages whose texts ship beside colab_page.toml (English is the base, always there)."""
    names = (entry.name for entry in resources.files("keepalive.hands").iterdir())
    return sorted(match.group(1) for match in map(LANGUAGE_FILE.match, names) if match)


@functools.cache
def language_texts(code: str) -> dict:
    """The texts of language ``code`` (its whole file: page tables, and ``keys`` for keys mode)."""
    text = resources.files("keepalive.hands").joinpath(f"colab_page.{code}.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def add_texts(base: dict, extra: dict) -> dict:
    """``base`` with ``extra``'s list items appended to its lists (tables followed key by key)."""
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = add_texts(merged[key], value)
        elif isinstance(value, list) and isinstance(merged.get(key), list):
            merged[key] = merged[key] + [item for item in value if item not in merged[key]]
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def page_language(html_lang: str | None) -> str:
    """The language code of an ``<html lang>`` value ("ja-JP" → "ja")."""
    return (html_lang or "").strip().lower().split("-")[0].split("_")[0]


def _squash(text) -> str:
    return " ".join((text or "").split()).lower()


def shows(haystack: str, needles) -> bool:
    """Does ``haystack`` show one of ``needles`` (case and spacing ignored)?"""
    haystack = _squash(haystack)
    return any(_squash(needle) in haystack for needle in needles)


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", (text or "").lower())


def says(label: str, phrases) -> bool:
    """Does ``label`` hold one of ``phrases`` as whole words in sequence? ("Reconnect T4" says "Reconnect".)"""
    have = _words(label)
    for phrase in phrases:
        want = _words(phrase)
        if want and any(have[i:i + len(want)] == want for i in range(len(have) - len(want) + 1)):
            return True
    return False


def label_says(label: str | None, connect: dict) -> str | None:
    """Which kind of connect-button label this is (``busy``, ``connecting``, ...), in ``label_order``."""
    if label is None:
        return None
    return next((kind for kind in connect["label_order"] if says(label, connect["labels"].get(kind, []))), None)


@dataclass
class Observation:
    state: PageState
    found: dict[str, bool] = field(default_factory=dict)
    detail: str = ""


# the stop symbol (2024-08) and the tooltips (2025-26) first; the older signals as fallbacks
RUNNING_SIGNALS = ("stop_symbol", "tooltip", "connect_tooltip", "title", "selector")
REFUSALS = (PageState.GPU_LIMIT, PageState.BACKEND_UNAVAILABLE)  # closed, never "without GPU", backed off


def seen(snapshot: dict, page: dict, popup_open: bool = False) -> dict[str, bool]:
    """Which known elements and texts the snapshot shows (what ``keepalive doctor`` lists)."""
    dialog_text = " | ".join(d["text"] for d in snapshot.get("dialogs") or [])
    running = snapshot.get("running") or {}
    texts = page["running"]
    signals = {"stop_symbol": bool(running.get("stop_symbol")), "selector": bool(running.get("selector")),
               "title": any(shows(t, texts["title_words"]) for t in running.get("titles") or []),
               "tooltip": any(shows(t, texts["tooltip_texts"]) for t in running.get("tooltips") or []),
               "connect_tooltip": shows(snapshot.get("connect_title"), texts["connect_texts"])}
    found = {"connect_button": snapshot.get("connect") is not None,
             "connect_label": label_says(snapshot.get("connect"), page["connect"]) is not None,
             "connect_usage": bool(snapshot.get("connect_usage")),
             "captcha": bool(snapshot.get("captcha")) or shows(dialog_text, page["captcha"]["texts"]),
             "drive_popup": popup_open, "signed_in_account": bool(snapshot.get("account")),
             "policy_link": bool(snapshot.get("policy_link"))}
    found.update({f"running:{signal}": signals[signal] for signal in RUNNING_SIGNALS})
    found.update({f"dialog:{name}": shows(dialog_text, page["dialogs"][name]["texts"])
                  for name in page["dialogs"]["order"]})
    return found


def classify(snapshot: dict | None, page: dict, origin: str, popup_open: bool = False) -> Observation:
    """Pure: turn a page snapshot into a PageState, and say which known elements were seen."""
    if not snapshot:
        return Observation(PageState.UNKNOWN, {}, "no page")
    found = seen(snapshot, page, popup_open)
    url = snapshot.get("url") or ""
    host = urlparse(url).netloc
    unreachable = unreachable_page(snapshot, page, origin)
    if unreachable:
        return Observation(PageState.OFFLINE, found, unreachable)
    if not url.startswith(origin) and (host in page["signin"]["hosts"] or shows(snapshot.get("body"),
                                                                               page["signin"]["texts"])):
        return Observation(PageState.SIGNED_OUT, found, f"on {host}, not on the notebook")
    if found["captcha"]:
        return Observation(PageState.CAPTCHA, found, "idle check shown")
    if found["policy_link"]:
        return Observation(PageState.POLICY, found, "a link to Colab's appeal form is shown")
    for name in page["dialogs"]["order"]:
        if found[f"dialog:{name}"]:
            return Observation(PageState(page["dialogs"][name]["state"]), found, f"dialog: {name}")
    if popup_open:
        return Observation(PageState.DRIVE_POPUP, found, "the Google pop-up is open")
    label = snapshot.get("connect")
    if label is None:
        return Observation(PageState.UNKNOWN, found, "no connect button")
    connect = page["connect"]
    kind = label_says(label, connect)
    connected = kind == "connected" or found["connect_usage"] or shows(snapshot.get("connect_title"),
                                                                      connect["connected_titles"])
    if kind == "busy":
        return Observation(PageState.BUSY, found, label)
    if kind == "connecting":
        return Observation(PageState.CONNECTING, found, label)
    if connected:
        signals = [s for s in RUNNING_SIGNALS if found[f"running:{s}"]]
        if signals:
            return Observation(PageState.RUNNING, found, f"{label} (running: {', '.join(signals)})")
        return Observation(PageState.IDLE, found, label)
    if kind == "disconnected":
        return Observation(PageState.DISCONNECTED, found, label)
    return Observation(PageState.UNKNOWN, found, f"connect button says {label!r}")


def unreachable_page(snapshot: dict, page: dict, origin: str) -> str | None:
    """Why the tab shows the browser's own error page instead of the notebook (None: it does not)."""
    url = snapshot.get("url") or ""
    spec = page["offline"]
    error_page = any(url.startswith(prefix) for prefix in spec["url_prefixes"])
    if not error_page and (url.startswith(origin) or not shows(snapshot.get("body"), spec["texts"])):
        return None
    code = re.search(r"\b(?:net::)?ERR_[A-Z_]+", snapshot.get("body") or "")
    return f"Colab cannot be reached ({code.group(0) if code else 'the browser shows its error page'})"


class PageConfigError(ConfigError):
    """The [page] config names something the page model does not know; the message says what."""


def check_page(page: dict) -> dict:
    states = {s.value for s in PageState}
    for name in page["dialogs"]["order"]:
        spec = page["dialogs"].get(name)
        if not isinstance(spec, dict) or spec.get("state") not in states or not spec.get("texts"):
            raise PageConfigError(f"[page.dialogs.{name}] needs texts = [...] and a state, one of: "
                                  f"{', '.join(sorted(states))}")
    return page


class PageModel:
    """The page's knowledge plus the hands that use it on a Selenium driver."""

    def __init__(self, page: dict, origin: str, languages: dict | None = None):
        """``languages``: the page of each language the page may show (``auto``); ``page`` is used for any other."""
        self.page = self.default = check_page(page)
        self.origin = origin.rstrip("/")
        self.languages = languages or {}

    @classmethod
    def load(cls, origin: str, overrides: dict | None = None) -> "PageModel":
        text = resources.files("keepalive.hands").joinpath("colab_page.toml").read_text(encoding="utf-8")
        english, overrides = tomllib.loads(text), overrides or {}
        language = overrides.get("language", english["language"])
        shipped = shipped_languages()

        def built(code: str | None) -> dict:
            texts = {k: v for k, v in language_texts(code).items() if k not in ("keys", "meta")} if code else {}
            return merge_tables(add_texts(english, texts), overrides)

        if language == "auto":
            return cls(built(None), origin, {code: check_page(built(code)) for code in shipped})
        if language != "en" and language not in shipped:
            raise PageConfigError(f"[page] language = {language!r} is not known: use \"auto\", \"en\" or one of "
                                  f"{', '.join(map(repr, shipped))} (docs/colab-page.md: adding a language)")
        return cls(built(None if language == "en" else language), origin)

    def follow_language(self, snapshot: dict | None) -> None:
        """With ``language = "auto"``: read the page in the language its ``<html lang>`` says."""
        if self.languages and snapshot:
            self.page = self.languages.get(page_language(snapshot.get("lang")), self.default)

    # --- seeing -------------------------------------------------------------------------------

    def read(self, driver) -> dict:
        """The snapshot of the current tab (see page_reader.js).

        Native dialogs ("Leave site?") never block it: the browser session accepts them
        (``unhandledPromptBehavior``, set where the browser is started).
        """
        return driver.execute_script(_READER, self.page, "snapshot")

    def popup_handle(self, driver, main_handle: str | None) -> str | None:
        """The window of Google's Drive pop-up (on an accounts host), if one is open."""
        from selenium.common.exceptions import NoSuchWindowException

        main = main_handle or driver.current_window_handle
        found = None
        try:
            for handle in driver.window_handles:
                if handle == main:
                    continue
                try:
                    driver.switch_to.window(handle)
                    host = urlparse(driver.current_url).netloc
                except NoSuchWindowException:
                    continue  # it closed while looked at (the pop-up closes itself once answered)
                if host in self.page["popup"]["hosts"]:
                    found = handle
                    break
        finally:
            driver.switch_to.window(main)  # never left on a window that may close under it
        return found

    def observe(self, driver, main_handle: str | None = None) -> Observation:
        """What the notebook's tab shows; UNKNOWN (never an exception) when the browser is gone."""
        try:
            handles = driver.window_handles
            if main_handle and main_handle in handles:  # (asking which window is current fails if it has closed)
                driver.switch_to.window(main_handle)
            popup = len(handles) > 1 and self.popup_handle(driver, main_handle) is not None
            snapshot = self.read(driver)
        except BROWSER_GONE as exc:  # which one is said: a watch blind for long must show why in its log
            return Observation(PageState.UNKNOWN, {}, f"browser not reachable ({type(exc).__name__})")
        self.follow_language(snapshot)
        return classify(snapshot, self.page, self.origin, popup_open=popup)

    # --- doing --------------------------------------------------------------------------------

    def find_by_text(self, driver, texts, scope_texts=(), selector: str | None = None):
        """The first visible clickable element whose text is one of ``texts``, through shadow roots."""
        return driver.execute_script(_READER, self.page, "find", list(texts),
                                     selector or self.page["dialogs"]["clickable"], list(scope_texts))

    def click(self, driver, element) -> bool:
        from selenium.common.exceptions import WebDriverException

        if element is None:
            return False
        try:
            element.click()
        except WebDriverException:
            driver.execute_script("arguments[0].click()", element)
        return True

    def click_text(self, driver, texts, scope_texts=(), selector=None) -> bool:
        return self.click(driver, self.find_by_text(driver, texts, scope_texts, selector))

    def answer(self, driver, name: str) -> bool:
        """Press one of dialog ``name``'s buttons (never one of its ``never``) in that dialog."""
        spec = self.page["dialogs"][name]
        never = {_squash(b) for b in spec.get("never", [])}
        return self.click_text(driver, [b for b in spec["buttons"] if _squash(b) not in never], spec["texts"])

    def act(self, driver, action: Action, url: str, main_handle: str | None = None) -> bool:
        """Do ``action`` on the notebook's tab; True if something was done."""
        from selenium.common.exceptions import WebDriverException

        try:
            return self._act(driver, action, url, main_handle)
        except WebDriverException as exc:
            text = (getattr(exc, "msg", None) or str(exc) or type(exc).__name__).strip()
            print(f"keepalive: {action.value} failed: {text.splitlines()[0]}", file=sys.stderr)  # one line
            return False

    def _dialogs_for(self, states) -> list[str]:
        return [name for name in self.page["dialogs"]["order"] if self.page["dialogs"][name]["state"] in states]

    def _act(self, driver, action: Action, url: str, main_handle: str | None) -> bool:
        if action is Action.RELOAD:
            driver.get(url)
            return True
        if action is Action.RECONNECT:
            if any(self.answer(driver, name) for name in self._dialogs_for({PageState.DISCONNECTED.value})):
                return True
            return self.press_connect(driver)
        if action is Action.RUN_ALL:
            return self.run_all(driver, main_handle)
        if action is Action.RUN_ANYWAY:
            return any(self.answer(driver, name) for name in self._dialogs_for({PageState.AUTHORSHIP.value}))
        if action is Action.CONNECT_DRIVE:
            return any(self.answer(driver, name) for name in self._dialogs_for({PageState.DRIVE_CONSENT.value}))
        if action is Action.DISMISS_GPU_LIMIT:
            return any(self.answer(driver, name) for name in self._dialogs_for({s.value for s in REFUSALS}))
        if action is Action.COMPLETE_DRIVE_POPUP:
            return self.complete_drive_popup(driver, main_handle)
        return False

    def press_connect(self, driver) -> bool:
        """Press the toolbar's connect button, if its label says it is disconnected."""
        if label_says(self.read(driver).get("connect"), self.page["connect"]) != "disconnected":
            return False
        return self.click(driver, driver.execute_script(_READER, self.page, "connect"))

    def run_all(self, driver, main_handle=None) -> bool:
        """Ctrl+F9 (Cmd+F9 on macOS) on the notebook; the Runtime menu if nothing happens."""
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        before = self.observe(driver, main_handle).state
        modifier = Keys.COMMAND if sys.platform == "darwin" else Keys.CONTROL
        key = getattr(Keys, self.page["run_all"]["key"])
        body = driver.find_element(By.TAG_NAME, "body")
        ActionChains(driver).move_to_element(body).key_down(modifier).send_keys(key).key_up(modifier).perform()
        if self._changed(driver, before, main_handle):
            return True
        menu = driver.find_elements(By.CSS_SELECTOR, self.page["run_all"]["menu_button"])
        if menu:
            self.click(driver, menu[0])
            return self.click_text(driver, self.page["run_all"]["menu_item_texts"], selector="*")
        return False

    def _changed(self, driver, before: PageState, main_handle) -> bool:
        deadline = time.monotonic() + float(self.page["run_all"]["confirm_seconds"])
        while time.monotonic() < deadline:
            if self.observe(driver, main_handle).state is not before:
                return True
            time.sleep(0.2)
        return False

    def _account_rows(self, driver, wanted: str | None) -> list:
        """The pop-up's rows for the ``wanted`` account; without one, the only row (never a guess among several)."""
        from selenium.webdriver.common.by import By

        popup = self.page["popup"]
        rows = []
        for selector in popup["account_selectors"]:
            rows += [r for r in driver.find_elements(By.CSS_SELECTOR, selector) if r not in rows]
        if not wanted:
            return rows if len(rows) == 1 else []
        wanted = wanted.lower()
        return [r for r in rows if any(wanted == (r.get_attribute(a) or "").strip().lower()
                                       for a in popup["account_attributes"]) or wanted in (r.text or "").lower()]

    def complete_drive_popup(self, driver, main_handle: str | None) -> bool:
        """In Google's pop-up: the notebook's account, Select all, Continue; then back to the notebook.

        The account is ``[page.popup] account_email``, else the one the notebook page shows as signed in:
        Drive mounted by another account fails ("credential propagation was unsuccessful").
        """
        from selenium.webdriver.common.by import By

        popup = self.page["popup"]
        main = main_handle or driver.current_window_handle
        driver.switch_to.window(main)
        wanted = popup.get("account_email") or self.read(driver).get("account")
        window = self.popup_handle(driver, main)
        if window is None:
            return False
        try:
            driver.switch_to.window(window)
            deadline = time.monotonic() + float(popup["step_seconds"])
            done_account = done_select = False
            while time.monotonic() < deadline and driver.current_window_handle in driver.window_handles:
                if not done_account:
                    rows = self._account_rows(driver, wanted)
                    if rows:
                        self.click(driver, rows[0])
                        done_account = True
                        time.sleep(0.3)
                        continue
                box = self.find_by_text(driver, popup["select_all_texts"], selector="label, [role=checkbox], input")
                if box is not None and not done_select:
                    checkbox = box.find_elements(By.CSS_SELECTOR, "input[type=checkbox]") or [box]
                    if not checkbox[0].is_selected():
                        self.click(driver, checkbox[0])
                    done_select = True
                if self.click_text(driver, popup["continue_texts"], selector="button, [role=button], input[type=submit]"):
                    return True
                done_account = done_account or bool(box)
                time.sleep(0.3)
            if not done_account:
                print("keepalive: the Drive pop-up does not offer the notebook's account; set [page.popup] "
                      "account_email, or choose it by hand", file=sys.stderr)
            return False
        finally:
            driver.switch_to.window(main)
