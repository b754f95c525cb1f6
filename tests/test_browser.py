"""The controlled browser in a real headless Chromium: private profile, one reused tab, attaching to a
Chrome started with a debugging port (127.0.0.1 only), and the doctor's bug-report files."""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import stat
import subprocess
import time
import tomllib
import urllib.request

import pytest

from conftest import chromium_available, headless_config
from keepalive import config, doctor
from keepalive.hands.browser import BrowserConfig, BrowserError, open_browser, open_notebook
from keepalive.hands.page import PageModel, classify
from keepalive.states import PageState


def wait_for(condition, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)
    return condition()


@pytest.mark.parametrize("address", ["0.0.0.0:9222", "192.168.1.5:9222", "example.com:9222", "127.0.0.1"])
def test_attaching_refuses_a_non_loopback_address_before_starting_anything(tmp_path, address):
    cfg = BrowserConfig(attach=address, driver_path=str(tmp_path / "no-such-chromedriver"))
    with pytest.raises(BrowserError) as refused:
        open_browser(cfg, tmp_path / "profile")
    message = str(refused.value)
    assert "127.0.0.1:PORT" in message and "\n" not in message
    assert not (tmp_path / "profile").exists()


@pytest.mark.browser
def test_the_profile_is_private_and_persists_between_starts(tmp_path):
    if not chromium_available():
        pytest.skip("needs chromium and chromedriver")
    profile = tmp_path / "profile"
    profile.mkdir(mode=0o755)
    os.chmod(profile, 0o755)
    driver = open_browser(headless_config(), profile)
    try:
        assert stat.S_IMODE(profile.stat().st_mode) == 0o700
        driver.get("about:blank")
    finally:
        driver.quit()
    assert (profile / "Default").is_dir()  # Chromium used this folder as its profile


@pytest.mark.browser
def test_open_notebook_reuses_one_tab_and_closes_the_others(chromium_driver, sleeper_sim):
    driver = chromium_driver
    first = open_notebook(driver, sleeper_sim.notebook_url)
    driver.switch_to.new_window("tab")
    driver.switch_to.new_window("window")
    assert len(driver.window_handles) == 3
    again = open_notebook(driver, sleeper_sim.notebook_url)
    assert again == first and driver.window_handles == [first]
    assert driver.current_window_handle == first and driver.current_url == sleeper_sim.notebook_url


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def user_chrome(tmp_path):
    """A Chromium the user started by hand with a debugging port on 127.0.0.1 (not by chromedriver)."""
    if not chromium_available():
        pytest.skip("needs chromium and chromedriver")
    binary = shutil.which("chromium") or shutil.which("google-chrome")
    port = free_port()
    chrome = subprocess.Popen([binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                               "--disable-background-networking", "--disable-component-update", "--disable-sync",
                               f"--remote-debugging-port={port}", f"--user-data-dir={tmp_path / 'user-profile'}",
                               "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def answering():
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/json/version", timeout=1).close()
            return True
        except OSError:
            return False

    try:
        if not wait_for(answering):
            pytest.skip("Chromium did not open its debugging port")
        yield chrome, port
    finally:
        chrome.terminate()
        chrome.wait(timeout=30)


@pytest.mark.browser
def test_attach_to_a_chrome_started_with_a_debugging_port(user_chrome, sleeper_sim, tmp_path):
    chrome, port = user_chrome
    cfg = BrowserConfig(attach=f"127.0.0.1:{port}", driver_path=shutil.which("chromedriver"))
    driver = open_browser(cfg, tmp_path / "unused-profile")
    try:
        main = open_notebook(driver, sleeper_sim.notebook_url)
        model = PageModel.load(sleeper_sim.origin)
        assert wait_for(lambda: model.observe(driver, main).state is PageState.DISCONNECTED)
    finally:
        driver.quit()
    assert chrome.poll() is None  # the user's browser is theirs: attaching and leaving does not end it
    assert not (tmp_path / "unused-profile").exists()  # the user's own profile is used, not ours


@pytest.mark.browser
def test_doctor_saves_a_screenshot_and_the_html_but_no_cookie(tmp_path, sleeper_sim):
    if not chromium_available():
        pytest.skip("needs chromium and chromedriver")
    cfg = config.load(env={"KEEPALIVE_HOME": str(tmp_path / "home")}, origin=sleeper_sim.origin)
    cfg.url = sleeper_sim.notebook_url
    cfg.browser = dataclasses.replace(headless_config(), profile_dir=str(tmp_path / "profile"))
    # A session cookie in the persistent profile, as after a Google sign-in.
    driver = open_browser(cfg.browser, tmp_path / "profile")
    try:
        driver.get(sleeper_sim.notebook_url)
        driver.add_cookie({"name": "SID", "value": "secret-session-token-123"})
    finally:
        driver.quit()

    report = doctor.run_doctor(cfg, tmp_path / "doctor", settle_seconds=10)

    assert report["state"] == PageState.DISCONNECTED.value and report["found"]["connect_button"]
    assert report["found"]["signed_in_account"] and not any("connect" in h for h in report["missed"])
    assert report["url"] == sleeper_sim.notebook_url and report["title"]
    assert open(report["screenshot"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert "colab-connect-button" in open(report["html"], encoding="utf-8").read()
    saved = sorted(p.suffix for p in (tmp_path / "doctor").iterdir())
    assert saved == [".html", ".png"]
    for path in (tmp_path / "doctor").iterdir():
        assert b"secret-session-token-123" not in path.read_bytes()
    assert "secret-session-token-123" not in doctor.render(report)


def test_doctor_names_the_one_page_table_that_teaches_each_thing_it_missed():
    page = PageModel.load("https://colab.research.google.com").page
    snapshot = {"url": "https://colab.research.google.com/drive/x", "connect": "Verbinden T4", "connect_usage": False,
                "dialogs": [{"tag": "md-dialog", "text": "Sitzung beendet Ihre Laufzeit wurde getrennt",
                             "buttons": ["Schließen", "Neu verbinden"]},
                            {"tag": "mwc-dialog", "text": "Warning: This notebook was not authored by Google",
                             "buttons": ["Abbrechen", "Trotzdem ausführen"]}],
                "running": {}, "captcha": False, "account": None, "body": ""}
    hints = doctor.missed(snapshot, page)
    assert any("'Verbinden T4'" in h and "[page.connect.labels] disconnected" in h for h in hints)
    assert any("Sitzung beendet" in h and "[page.dialogs.disconnected] texts" in h for h in hints)
    assert any("authorship dialog" in h and "[page.dialogs.authorship] buttons" in h for h in hints)
    assert any("[page.running]" in h for h in hints) and any("account_email" in h for h in hints)
    # the hint's TOML is a table a user can paste: it parses, and it teaches the page model the label
    fix = next(h for h in hints if "[page.connect.labels]" in h).split("e.g. ", 1)[1]
    table, line = fix.split("] ", 1)
    override = tomllib.loads(f"{table}]\n{line}")
    taught = PageModel.load("https://colab.research.google.com", override["page"])
    assert classify(snapshot, taught.page, taught.origin).state is not PageState.UNKNOWN

    known = dict(snapshot, connect="Reconnect T4", dialogs=[], running={"stop_symbol": True}, account="a@b.c")
    assert doctor.missed(known, page) == []
    assert doctor.missed(dict(known, connect=None), page)[0].startswith("no connect button")
