"""The page model against the Colab simulator in a real headless Chromium, and its pure classifier."""

from __future__ import annotations

import sys
import time

import pytest

from conftest import wait_for
from keepalive.hands.browser import BrowserError, check_attach_address, open_notebook
from keepalive.hands.page import PageModel, classify
from keepalive.states import Action, PageState
from keepalive_sim.colab_sim import ACCOUNT_EMAIL, VARIANTS, ColabSimulator


def settle(model, driver, main, want: PageState, timeout=90.0) -> PageState:
    """The page's state once it is ``want``, or what it still is at the deadline (said with what was seen)."""
    deadline = time.monotonic() + timeout
    seen = model.observe(driver, main)
    while seen.state is not want and time.monotonic() < deadline:
        time.sleep(0.2)  # a poll interval, not a synchronisation: the loop waits for the state itself
        seen = model.observe(driver, main)
    assert seen.state is want, f"still {seen.state} after {timeout:g} s: {seen.found} {seen.detail}"
    return seen.state


@pytest.fixture(params=list(VARIANTS))
def variant_sim(request, tmp_path):
    """A simulator of each Colab build, with every hard trait on: several accounts, a "Leave site?" alert."""
    command = [sys.executable, "-c", "import time; print('job started', flush=True); time.sleep(60)"]
    with ColabSimulator(command, workdir=tmp_path / "sim", connect_seconds=0.3, variant=request.param,
                        leave_alert=True) as sim:
        yield sim


def on_page(driver, sim):
    main = open_notebook(driver, sim.notebook_url)
    return PageModel.load(sim.origin, sim.page_overrides()), driver, main, sim


@pytest.fixture
def page(chromium_driver, variant_sim):
    """The page model on each simulated Colab build."""
    return on_page(chromium_driver, variant_sim)


@pytest.fixture
def newest_page(chromium_driver, sleeper_sim):
    """The page model on the simulator's default (newest) build."""
    return on_page(chromium_driver, sleeper_sim)


@pytest.mark.browser
def test_every_state_and_action_on_the_simulated_page(page):
    model, driver, main, sim = page
    url = sim.notebook_url
    assert settle(model, driver, main, PageState.DISCONNECTED) is PageState.DISCONNECTED
    assert model.act(driver, Action.RUN_ALL, url, main)
    assert settle(model, driver, main, PageState.AUTHORSHIP) is PageState.AUTHORSHIP
    assert model.act(driver, Action.RUN_ANYWAY, url, main)
    assert settle(model, driver, main, PageState.DRIVE_CONSENT) is PageState.DRIVE_CONSENT
    assert model.act(driver, Action.CONNECT_DRIVE, url, main)
    assert settle(model, driver, main, PageState.DRIVE_POPUP) is PageState.DRIVE_POPUP
    assert model.act(driver, Action.COMPLETE_DRIVE_POPUP, url, main)
    assert settle(model, driver, main, PageState.RUNNING) is PageState.RUNNING
    assert driver.current_window_handle == main and driver.window_handles == [main]
    state = sim.state()
    assert state["consent_granted"] and state["start_count"] == 1 and state["grant_email"] == ACCOUNT_EMAIL
    assert sim.accounts.index(ACCOUNT_EMAIL) > 0  # the notebook's account was not simply the first row
    # the "Leave site?" left by the pop-up is accepted by the next look at the page
    assert wait_for(lambda: model.observe(driver, main) and sim.state()["alerts_accepted"] == 1, timeout=20)
    assert sim.state()["alerts_dismissed"] == 0

    sim.show_captcha()
    assert settle(model, driver, main, PageState.CAPTCHA) is PageState.CAPTCHA
    sim.solve_captcha()
    sim.kill()
    assert settle(model, driver, main, PageState.DISCONNECTED) is PageState.DISCONNECTED
    assert model.observe(driver, main).found["dialog:disconnected"]

    sim.refuse_gpu(60)
    assert model.act(driver, Action.RECONNECT, url, main)
    assert settle(model, driver, main, PageState.GPU_LIMIT) is PageState.GPU_LIMIT
    assert model.act(driver, Action.DISMISS_GPU_LIMIT, url, main)
    assert settle(model, driver, main, PageState.DISCONNECTED) is PageState.DISCONNECTED
    assert sim.state()["without_gpu_pressed"] == 0

    sim.sign_out()
    assert model.act(driver, Action.RELOAD, url, main)
    assert settle(model, driver, main, PageState.SIGNED_OUT) is PageState.SIGNED_OUT


@pytest.mark.browser
def test_run_all_falls_back_to_the_runtime_menu(newest_page):
    model, driver, main, sim = newest_page
    model.page["run_all"]["key"] = "F8"  # a shortcut Colab ignores: the menu must do it
    model.page["run_all"]["confirm_seconds"] = 1.0
    settle(model, driver, main, PageState.DISCONNECTED)
    assert model.act(driver, Action.RUN_ALL, sim.notebook_url, main)
    assert wait_for(lambda: sim.state()["run_all_count"] == 1)


@pytest.mark.browser
def test_user_overrides_change_texts_without_a_release(newest_page):
    _model, driver, main, sim = newest_page
    renamed = PageModel.load(sim.origin, {**sim.page_overrides(),
                                          "dialogs": {"authorship": {"texts": ["authored by a user"]}}})
    settle(renamed, driver, main, PageState.DISCONNECTED)
    renamed.act(driver, Action.RUN_ALL, sim.notebook_url, main)
    assert settle(renamed, driver, main, PageState.AUTHORSHIP) is PageState.AUTHORSHIP
    broken = PageModel.load(sim.origin, {"dialogs": {"authorship": {"texts": ["no such text"]}}})
    assert broken.observe(driver, main).state is not PageState.AUTHORSHIP


def test_classify_is_pure_and_prefers_human_and_gpu_dialogs():
    model = PageModel.load("https://colab.research.google.com")
    base = {"url": "https://colab.research.google.com/drive/x", "connect": "Reconnect", "dialogs": [],
            "running": {}, "captcha": False, "body": ""}
    assert classify(base, model.page, model.origin).state is PageState.DISCONNECTED
    gpu = dict(base, dialogs=[{"text": "Cannot connect to GPU backend You cannot currently connect",
                               "buttons": ["Close", "Connect without GPU"]}])
    assert classify(gpu, model.page, model.origin).state is PageState.GPU_LIMIT
    assert classify(dict(gpu, captcha=True), model.page, model.origin).state is PageState.CAPTCHA
    signin = dict(base, url="https://accounts.google.com/ServiceLogin", connect=None, body="Sign in")
    assert classify(signin, model.page, model.origin).state is PageState.SIGNED_OUT
    assert classify(dict(base, connect="RAM Disk", running={"stop_symbol": True}), model.page, model.origin).state is PageState.RUNNING
    assert classify(dict(base, connect="Allocating"), model.page, model.origin).state is PageState.CONNECTING
    assert classify(None, model.page, model.origin).state is PageState.UNKNOWN
    assert classify(dict(base, connect=None), model.page, model.origin).state is PageState.UNKNOWN


def test_attach_refuses_anything_but_loopback():
    assert check_attach_address("127.0.0.1:9222") == "127.0.0.1:9222"
    for bad in ("0.0.0.0:9222", "192.168.1.5:9222", "example.com:9222", "127.0.0.1"):
        with pytest.raises(BrowserError):
            check_attach_address(bad)


def test_simulator_listens_on_loopback_only(sleeper_sim):
    for server in sleeper_sim._servers:
        assert server.server_address[0] == "127.0.0.1"


def test_simulator_refuses_posts_that_are_not_json(sleeper_sim):
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{sleeper_sim.origin}/_sim/sign_out", data=b"{}",
                                     headers={"Content-Type": "text/plain"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 415 and not sleeper_sim.state()["signed_out"]


def test_a_page_override_naming_an_unknown_dialog_state_is_refused_in_one_line():
    from keepalive.config import ConfigError

    with pytest.raises(ConfigError) as refused:
        PageModel.load("https://colab.research.google.com",
                       {"dialogs": {"order": ["gpu_limit", "quota"], "quota": {"texts": ["Quota"], "state": "full"}}})
    assert "[page.dialogs.quota]" in str(refused.value) and "\n" not in str(refused.value)


def test_a_new_dialog_is_one_page_table_and_its_place_in_the_order():
    model = PageModel.load("https://colab.research.google.com", {"dialogs": {
        "order": ["quota", "gpu_limit", "backend_unavailable", "drive_consent", "authorship", "disconnected"],
        "quota": {"state": "backend_unavailable", "texts": ["Compute units exhausted"], "buttons": ["Close"]}}})
    snapshot = {"url": "https://colab.research.google.com/drive/x", "connect": "Reconnect T4", "running": {},
                "dialogs": [{"text": "Compute units exhausted  Runtime disconnected", "buttons": ["Close"]}]}
    assert classify(snapshot, model.page, model.origin).state is PageState.BACKEND_UNAVAILABLE


@pytest.mark.browser
def test_a_window_that_closed_while_current_never_blinds_the_watch(newest_page):
    """Google's pop-up closes itself once answered, possibly while the hands look at it: the next look still reads
    the notebook's tab (before, every look said "browser not reachable" until the watch was restarted)."""
    model, driver, main, sim = newest_page
    driver.execute_script("window.open('about:blank', 'drive-popup')")
    assert wait_for(lambda: len(driver.window_handles) == 2, timeout=30)
    driver.switch_to.window(next(h for h in driver.window_handles if h != main))
    driver.execute_script("window.close()")
    assert wait_for(lambda: driver.window_handles == [main], timeout=30)
    seen = model.observe(driver, main)
    assert seen.state is PageState.DISCONNECTED, seen.detail
