"""``keepalive doctor``: open the notebook once and report what the page model sees.

It says, for what the page model could not tell, which known element or text it missed and which
``[page]`` table of the user's config corrects it (``missed``, a pure function of the page snapshot);
and it saves a screenshot and the page's HTML for a bug report (no cookies, no storage).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from selenium.common.exceptions import WebDriverException

from keepalive.hands.browser import private_dir, write_private
from keepalive.hands.page import RUNNING_SIGNALS, label_says, seen, shows
from keepalive.hands.selenium import SeleniumHands
from keepalive.states import PageState


def _toml_list(values) -> str:
    return json.dumps(list(values), ensure_ascii=False)  # a TOML array of strings reads like JSON's


def missed(snapshot: dict | None, page: dict) -> list[str]:
    """What the page shows that the page model does not know, each with the one [page] table that teaches it."""
    if not snapshot:
        return ["the page could not be read at all (is the browser open on the notebook?)"]
    found = seen(snapshot, page)
    connect, dialogs = page["connect"], page["dialogs"]
    hints = []
    label = snapshot.get("connect")
    if label is None:
        hints.append(f"no connect button: none of hosts = {_toml_list(connect['hosts'])} (then shadow_path = "
                     f"{_toml_list(connect['shadow_path'])}) or legacy = {_toml_list(connect['legacy'])} is on the "
                     "page; set the right selector in [page.connect] hosts")
    elif label_says(label, connect) is None and not found["connect_usage"]:
        hints.append(f"the connect button says {label!r}, which no list of [page.connect.labels] holds; add it to "
                     f"the list it means, e.g. [page.connect.labels] disconnected = "
                     f"{_toml_list(connect['labels']['disconnected'] + [label])}")
    for dialog in snapshot.get("dialogs") or []:
        known = [name for name in dialogs["order"] if shows(dialog["text"], dialogs[name]["texts"])]
        if not known and not shows(dialog["text"], page["captcha"]["texts"]):
            hints.append(f"an open {dialog.get('tag', 'dialog')} says {dialog['text'][:160]!r} (buttons "
                         f"{_toml_list(dialog['buttons'])}), which no [page.dialogs.*] texts match; add its title "
                         f"to the dialog it is, e.g. [page.dialogs.disconnected] texts = "
                         f"{_toml_list(dialogs['disconnected']['texts'] + [dialog['text'][:60]])}")
        if known and dialogs[known[0]]["buttons"]:
            name = known[0]
            wanted = {b.strip().lower() for b in dialogs[name]["buttons"]}
            if not wanted & {b.strip().lower() for b in dialog["buttons"]} and dialog["buttons"]:
                hints.append(f"the {name} dialog shows buttons {_toml_list(dialog['buttons'])}, none of "
                             f"[page.dialogs.{name}] buttons = {_toml_list(dialogs[name]['buttons'])}")
    if not any(found[f"running:{s}"] for s in RUNNING_SIGNALS):
        hints.append(f"no cell shows it is running (looked for {page['running']['stop_symbol']} in "
                     f"{page['running']['run_button_tag']}'s shadow root, its title, and "
                     f"{_toml_list(page['running']['selectors'])}); if a cell runs now, correct [page.running]")
    if not found["signed_in_account"]:
        hints.append("the signed-in account is not shown by [page.account] selectors; set [page.popup] "
                     "account_email to the notebook's Google account, so the Drive pop-up picks it")
    return hints


DOCTOR_PAGE_LOAD_SECONDS = 30.0  # with the settle time and the browser's start, doctor ends within a minute


def problem(observation, url: str, load_problem: str | None = None) -> str | None:
    """The one sentence that makes ``doctor`` fail: what stops keepalive from using this page at all."""
    advice = ("Check this PC's connection (a browser, DNS, a proxy) or whether Colab is down; keepalive run waits "
              "for it and looks again with back-off")
    if observation.state is PageState.OFFLINE:
        return f"{observation.detail}: {url} does not load. {advice}"
    if observation.state is PageState.UNKNOWN and load_problem:
        return f"Colab does not answer ({load_problem}): {url}. {advice}"
    return None


def run_doctor(cfg, out_dir, settle_seconds: float = 5.0) -> dict:
    out_dir = Path(out_dir)
    if not out_dir.exists():  # a folder of its own is the user's only; a folder given that exists keeps its mode
        private_dir(out_dir)
    cfg.browser = dataclasses.replace(cfg.browser, page_load_seconds=min(cfg.browser.page_load_seconds,
                                                                         DOCTOR_PAGE_LOAD_SECONDS))
    hands = SeleniumHands(cfg)
    hands.start()
    try:
        deadline = time.monotonic() + settle_seconds
        observation = hands.observe()
        while observation.state.value == "unknown" and time.monotonic() < deadline:
            time.sleep(0.5)
            observation = hands.observe()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        driver = hands.driver
        return {"state": observation.state.value, "detail": observation.detail, "found": observation.found,
                "problem": problem(observation, cfg.url, hands.load_problem),
                "missed": _asked(lambda: missed(hands.model.read(driver), hands.model.page), []),
                "url": _asked(lambda: driver.current_url, cfg.url), "title": _asked(lambda: driver.title, ""),
                "screenshot": _saved(out_dir / f"doctor-{stamp}.png", driver.get_screenshot_as_png),
                "html": _saved(out_dir / f"doctor-{stamp}.html", lambda: driver.page_source.encode("utf-8"))}
    finally:
        hands.close()


def _asked(question, otherwise):
    """The browser's answer, or ``otherwise`` when it gives none (a renderer hung on a page that never loads
    times out: seen on a busy machine against a Colab that accepts connections and never answers)."""
    try:
        return question()
    except WebDriverException:
        return otherwise


def _saved(path: Path, take) -> str | None:
    """``take()``'s bytes written to ``path``, readable by the user only (the signed-in page shows the account's
    e-mail and the notebook); None when the browser gives nothing."""
    data = _asked(take, None)
    if data is None:
        return None
    write_private(path, data)
    return str(path)


def _evidence(report: dict) -> list[str]:
    """Where the screenshot and the page's HTML are, or that the browser gave none."""
    missing = "not taken (the browser did not answer)"
    return [f"screenshot: {report['screenshot'] or missing}", f"page HTML: {report['html'] or missing}"]


def render(report: dict) -> str:
    if report.get("problem"):
        return "\n".join([f"keepalive doctor: {report['problem']}", *_evidence(report)])
    lines = [f"page state: {report['state']} ({report['detail']})", f"title: {report['title']}"]
    for name, present in sorted(report["found"].items()):
        lines.append(f"  {'found' if present else '-    '}  {name}")
    if report.get("missed"):
        lines.append("not understood (each is fixed by one [page] table in your config):")
        lines.extend(f"  - {hint}" for hint in report["missed"])
    return "\n".join(lines + _evidence(report))
