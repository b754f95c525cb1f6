"""The Colab page model: what the tab shows, and how to press its buttons.

Knowledge of the page is data (``colab_page.toml``, overridable from the user's ``[page]``
config table). Reading the page is split in two: one JavaScript call takes a *snapshot* of
everything that matters (the connect button's text, every open dialog with its buttons, the idle
check, running cells) by walking the light DOM and every open shadow root; then ``classify``, a
pure function, turns the snapshot into a ``PageState``. Buttons are found by their visible text
through all shadow roots, so a redesign that moves them usually changes nothing here.
"""

from __future__ import annotations

import copy
import sys
import time
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from urllib.parse import urlparse

from keepalive.states import Action, PageState

try:  # what a vanished browser raises: WebDriver errors, or urllib3's when chromedriver itself is gone
    from selenium.common.exceptions import WebDriverException
    from urllib3.exceptions import HTTPError as _Urllib3Error

    BROWSER_GONE = (WebDriverException, _Urllib3Error, ConnectionError)
except ImportError:  # pragma: no cover - selenium is a dependency
    BROWSER_GONE = (ConnectionError,)

_WALK = """
const all = [];
(function walk(root) {
  for (const el of root.querySelectorAll('*')) { all.push(el); if (el.shadowRoot) walk(el.shadowRoot); }
})(document);
const shadowText = el => [...el.shadowRoot.children].filter(c => c.localName !== 'style')
                          .map(c => c.innerText || c.textContent || '').join(' ');
// What an element shows: its text, else what its own shadow root shows, else its label.
const text = el => {
  let t = ((el.innerText || el.textContent || '') + '').trim();
  if (!t && el.shadowRoot) t = shadowText(el).trim();
  if (!t && el.getAttribute) t = (el.getAttribute('label') || el.getAttribute('aria-label') || '').trim();
  return t;
};
const shown = el => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
// Is el inside outer, across shadow boundaries?
const within = (outer, el) => { for (let n = el; n; n = n.parentNode || n.host) { if (n === outer) return true; } return false; };
"""

_SNAPSHOT = _WALK + """
const page = arguments[0];
let connect = null;
for (const sel of page.connect.hosts) {
  let node = document.querySelector(sel);
  if (!node) continue;
  let label = text(node);
  for (const step of page.connect.shadow_path) {
    const next = node.shadowRoot && node.shadowRoot.querySelector(step);
    if (!next) break;
    node = next;
    if (text(node)) label = text(node);  // a label slotted from an outer step reads '' inside
  }
  connect = {label: label, title: node.title || ''}; break;
}
if (!connect) for (const sel of page.connect.legacy) {
  const node = document.querySelector(sel);
  if (node) { connect = {label: text(node), title: node.title || ''}; break; }
}
const tags = page.dialogs.tags;
const dialogs = all.filter(el => tags.includes(el.localName) && shown(el)).map(el => ({
  text: text(el).slice(0, 600),
  buttons: [...el.querySelectorAll(page.dialogs.clickable)].map(text).filter(t => t),
}));
const words = page.running.title_words;
const running = all.some(el => el.localName === page.running.run_button_tag &&
                                words.some(w => (el.title || '').toLowerCase().includes(w)))
                || !!document.querySelector(page.running.running_cell);
return {
  url: location.href, title: document.title,
  connect: connect ? connect.label : null, connect_title: connect ? connect.title : null,
  dialogs: dialogs, running: running,
  captcha: page.captcha.selectors.some(s => !!document.querySelector(s)),
  body: text(document.body || document.documentElement).slice(0, 4000),
};
"""

_FIND = _WALK + """
const [texts, selector, scopeTexts, scopeTags] = arguments;
const wanted = texts.map(t => t.toLowerCase());
let scopes = [document];
if (scopeTexts.length) {
  scopes = all.filter(el => scopeTags.includes(el.localName) && shown(el) &&
                            scopeTexts.some(t => text(el).toLowerCase().includes(t.toLowerCase())));
}
for (const scope of scopes) {
  const hits = all.filter(el => (scope === document || within(scope, el)) && el.matches(selector) && shown(el) &&
                                wanted.includes(text(el).toLowerCase()));
  // the deepest match: not <html> or a wrapper that only shows the same text as the button inside it
  const hit = hits.find(h => !hits.some(o => o !== h && within(h, o)));
  if (hit) return hit;
}
return null;
"""


def merge_tables(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_tables(merged[key], value)
        else:
            merged[key] = value
    return merged


def _has(haystack: str, needles) -> bool:
    haystack = (haystack or "").lower()
    return any(needle.lower() in haystack for needle in needles)


@dataclass
class Observation:
    state: PageState
    found: dict[str, bool] = field(default_factory=dict)
    detail: str = ""


def classify(snapshot: dict | None, page: dict, origin: str, popup_open: bool = False) -> Observation:
    """Pure: turn a page snapshot into a PageState, and say which known elements were seen."""
    if not snapshot:
        return Observation(PageState.UNKNOWN, {}, "no page")
    dialogs = snapshot.get("dialogs") or []
    dialog_text = " | ".join(d["text"] for d in dialogs)
    found = {"connect_button": snapshot.get("connect") is not None, "captcha": bool(snapshot.get("captcha")),
             "running_cell": bool(snapshot.get("running")), "drive_popup": popup_open}
    for name, spec in page["dialogs"].items():
        if isinstance(spec, dict):
            found[f"dialog:{name}"] = _has(dialog_text, spec["texts"])
    url = snapshot.get("url") or ""
    host = urlparse(url).netloc
    on_notebook = url.startswith(origin)
    if (not on_notebook and (host in page["signin"]["hosts"] or _has(snapshot.get("body"), page["signin"]["texts"]))):
        return Observation(PageState.SIGNED_OUT, found, f"on {host}, not on the notebook")
    if found["captcha"] or _has(dialog_text, page["captcha"]["texts"]):
        found["captcha"] = True
        return Observation(PageState.CAPTCHA, found, "idle check shown")
    for name, state in (("gpu_limit", PageState.GPU_LIMIT), ("drive_consent", PageState.DRIVE_CONSENT),
                        ("authorship", PageState.AUTHORSHIP), ("disconnected", PageState.DISCONNECTED)):
        if found.get(f"dialog:{name}"):
            return Observation(state, found, f"dialog: {name}")
    if popup_open:
        return Observation(PageState.DRIVE_POPUP, found, "the Google pop-up is open")
    label = snapshot.get("connect")
    connect = page["connect"]
    if label is None:
        return Observation(PageState.UNKNOWN, found, "no connect button")
    if _has(label, connect["connecting_texts"]):
        return Observation(PageState.CONNECTING, found, label)
    if _has(label, connect["connected_texts"]) or "connected to" in (snapshot.get("connect_title") or "").lower():
        return Observation(PageState.RUNNING if snapshot.get("running") else PageState.IDLE, found, label)
    if label.strip().lower() in [t.lower() for t in connect["reconnect_texts"] + connect["connect_texts"]]:
        return Observation(PageState.DISCONNECTED, found, label)
    return Observation(PageState.UNKNOWN, found, f"connect button says {label!r}")


class PageModel:
    """The page's knowledge plus the hands that use it on a Selenium driver."""

    def __init__(self, page: dict, origin: str):
        self.page = page
        self.origin = origin.rstrip("/")

    @classmethod
    def load(cls, origin: str, overrides: dict | None = None) -> "PageModel":
        text = resources.files("keepalive.hands").joinpath("colab_page.toml").read_text(encoding="utf-8")
        return cls(merge_tables(tomllib.loads(text), overrides or {}), origin)

    # --- seeing -------------------------------------------------------------------------------

    def popup_handle(self, driver, main_handle: str | None) -> str | None:
        """The window of Google's Drive pop-up (on an accounts host), if one is open."""
        main = main_handle or driver.current_window_handle
        found = None
        for handle in driver.window_handles:
            if handle == main:
                continue
            driver.switch_to.window(handle)
            if urlparse(driver.current_url).netloc in self.page["popup"]["hosts"]:
                found = handle
                break
        driver.switch_to.window(main)
        return found

    def observe(self, driver, main_handle: str | None = None) -> Observation:
        """What the notebook's tab shows; UNKNOWN (never an exception) when the browser is gone."""
        try:
            handles = driver.window_handles
            if main_handle and main_handle in handles and driver.current_window_handle != main_handle:
                driver.switch_to.window(main_handle)
            popup = len(handles) > 1 and self.popup_handle(driver, main_handle) is not None
            snapshot = driver.execute_script(_SNAPSHOT, self.page)
        except BROWSER_GONE:
            return Observation(PageState.UNKNOWN, {}, "browser not reachable")
        return classify(snapshot, self.page, self.origin, popup_open=popup)

    # --- doing --------------------------------------------------------------------------------

    def find_by_text(self, driver, texts, scope_texts=(), selector: str | None = None):
        """The first visible clickable element whose text is one of ``texts``, through shadow roots."""
        return driver.execute_script(_FIND, list(texts), selector or self.page["dialogs"]["clickable"],
                                     list(scope_texts), self.page["dialogs"]["tags"])

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

    def act(self, driver, action: Action, url: str, main_handle: str | None = None) -> bool:
        """Do ``action`` on the notebook's tab; True if something was done."""
        from selenium.common.exceptions import WebDriverException

        try:
            return self._act(driver, action, url, main_handle)
        except WebDriverException as exc:
            print(f"keepalive: {action.value} failed: {exc.msg if hasattr(exc, 'msg') else exc}", file=sys.stderr)
            return False

    def _act(self, driver, action: Action, url: str, main_handle: str | None) -> bool:
        dialogs = self.page["dialogs"]
        if action is Action.RELOAD:
            driver.get(url)
            return True
        if action is Action.RECONNECT:
            spec = dialogs["disconnected"]
            if self.click_text(driver, spec["buttons"], spec["texts"]):
                return True
            return self.click_text(driver, self.page["connect"]["reconnect_texts"] + self.page["connect"]["connect_texts"],
                                   selector="*")
        if action is Action.RUN_ALL:
            return self.run_all(driver, main_handle)
        if action is Action.RUN_ANYWAY:
            return self.click_text(driver, dialogs["authorship"]["buttons"], dialogs["authorship"]["texts"])
        if action is Action.CONNECT_DRIVE:
            return self.click_text(driver, dialogs["drive_consent"]["buttons"], dialogs["drive_consent"]["texts"])
        if action is Action.DISMISS_GPU_LIMIT:
            spec = dialogs["gpu_limit"]
            buttons = [b for b in spec["buttons"] if b.lower() not in {n.lower() for n in spec["never"]}]
            return self.click_text(driver, buttons, spec["texts"])
        if action is Action.COMPLETE_DRIVE_POPUP:
            return self.complete_drive_popup(driver, main_handle)
        return False

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

    def complete_drive_popup(self, driver, main_handle: str | None) -> bool:
        """In Google's pop-up: the account, Select all, Continue; then back to the notebook."""
        from selenium.webdriver.common.by import By

        popup = self.page["popup"]
        main = main_handle or driver.current_window_handle
        window = self.popup_handle(driver, main)
        if window is None:
            return False
        try:
            driver.switch_to.window(window)
            deadline = time.monotonic() + float(popup["step_seconds"])
            done_account = done_select = False
            while time.monotonic() < deadline and driver.current_window_handle in driver.window_handles:
                if not done_account:
                    rows = [r for sel in popup["account_selectors"] for r in driver.find_elements(By.CSS_SELECTOR, sel)]
                    email = popup.get("account_email") or ""
                    rows = [r for r in rows if not email or email.lower() in (r.text or "").lower()] or rows
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
            return False
        finally:
            driver.switch_to.window(main)
