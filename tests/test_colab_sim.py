"""The Colab simulator itself: its page as Selenium sees it (real headless Chromium), its state
machine over the page's JSON API, its runtime subprocess, and its fault injection.

The page-model and daemon tests use the simulator through ``keepalive.hands.page``; these tests hold the
simulator to its DOM contract directly (the ``legacy`` build's light-DOM dialogs for the whole flow; each
build's own traits, as docs/colab-page.md describes them, separately), so that a break shows here first.
"""

from __future__ import annotations

import json
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from keepalive_sim.colab_sim import ACCOUNT_EMAIL, VARIANTS, ColabSimulator

WAIT_SECONDS = 20.0
AUTHORSHIP = "Warning: This notebook was not authored by Google"
DRIVE_CONSENT = "Permit this notebook to access your Google Drive files?"
GPU_LIMIT = "Cannot connect to GPU backend"

# The notebook's job: says hello, tells which GPU its PATH offers, starts a grandchild, then waits.
JOB = """
import shutil, subprocess, sys, time
print('hi', flush=True)
smi = shutil.which('nvidia-smi')
name = subprocess.run([smi, '--query-gpu=name', '--format=csv,noheader'], capture_output=True,
                      text=True).stdout.strip() if smi else 'none'
print('gpu:', name, flush=True)
child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
print('grandchild:', child.pid, flush=True)
time.sleep(60)
"""


@pytest.fixture
def make_sim(tmp_path):
    """Start simulators running ``code`` in Python (default: JOB); all are stopped after the test."""
    started = []

    def make(code: str = JOB, **options) -> ColabSimulator:
        options.setdefault("connect_seconds", 0.2)
        options.setdefault("variant", "legacy")
        sim = ColabSimulator([sys.executable, "-c", code], workdir=tmp_path / f"sim{len(started)}", **options)
        started.append(sim.start())
        return sim

    yield make
    for sim in started:
        sim.stop()


# --- helpers ----------------------------------------------------------------------------------------

def wait_until(condition, timeout: float = WAIT_SECONDS):
    """Poll ``condition`` until it returns something truthy; fail with its last value otherwise."""
    deadline = time.monotonic() + timeout
    value = condition()
    while not value and time.monotonic() < deadline:
        time.sleep(0.05)
        value = condition()
    assert value, f"condition not met within {timeout} s"
    return value


def connect_button(driver):
    host = driver.find_element(By.CSS_SELECTOR, "#top-toolbar > colab-connect-button")
    return host.shadow_root.find_element(By.CSS_SELECTOR, "#connect")


def wait_connect_text(driver, wanted: str) -> None:
    waiting(driver).until(lambda d: wanted in connect_button(d).text)


def waiting(driver) -> WebDriverWait:
    """A wait that retries when the page re-renders under it (the simulator, like Colab, rebuilds dialogs)."""
    return WebDriverWait(driver, WAIT_SECONDS, ignored_exceptions=(StaleElementReferenceException,))


def find_dialog(driver, title: str):
    """The open ``mwc-dialog`` in the light DOM whose text holds ``title``, or None."""
    for dialog in driver.find_elements(By.CSS_SELECTOR, "mwc-dialog[open]"):
        if title in dialog.text:
            return dialog
    return None


def wait_dialog(driver, title: str) -> dict:
    """Wait for the dialog; return its text and its buttons (slot → label), read in one go."""
    def read(d):
        dialog = find_dialog(d, title)
        if dialog is None:
            return None
        buttons = dialog.find_elements(By.CSS_SELECTOR, "mwc-button")
        return {"text": dialog.text, "buttons": {b.get_attribute("slot"): label(b) for b in buttons}}
    return waiting(driver).until(read)


def wait_no_dialog(driver) -> None:
    waiting(driver).until(lambda d: not d.find_elements(By.CSS_SELECTOR, "mwc-dialog[open]"))


def text_of(driver, css: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, css).text


def label(button) -> str:
    """An ``mwc-button``'s label: its text content. Rendered, it is upper case (Material CSS), as in Colab."""
    text = button.get_attribute("textContent").strip()
    assert button.text.strip().casefold() == text.casefold()
    return text


def press(driver, title: str, text: str) -> None:
    """In the dialog titled ``title``, click the ``mwc-button`` labelled ``text`` where its label shows.

    (A WebDriver click on the ``#button`` inside its shadow root is refused by chromedriver as
    "intercepted": the label is slotted light-DOM text, so the host is what lies at that point.)
    """
    def click(d):
        dialog = find_dialog(d, title)
        for button in dialog.find_elements(By.CSS_SELECTOR, "mwc-button") if dialog else ():
            if label(button) == text:
                assert button.shadow_root.find_element(By.CSS_SELECTOR, "#button")
                button.click()
                return True
        return False
    waiting(driver).until(click)


def ctrl_f9(driver) -> None:
    ActionChains(driver).key_down(Keys.CONTROL).send_keys(Keys.F9).key_up(Keys.CONTROL).perform()


def load(driver, sim: ColabSimulator) -> None:
    driver.get(sim.notebook_url)
    wait_connect_text(driver, "Connect")


def run_anyway(driver, sim: ColabSimulator) -> None:
    """Ctrl+F9 on a fresh page, then "Run anyway": ends at the Drive consent dialog."""
    load(driver, sim)
    ctrl_f9(driver)
    press(driver, AUTHORSHIP, "Run anyway")
    wait_dialog(driver, DRIVE_CONSENT)


def complete_popup(driver, select_all: bool = True) -> str:
    """Drive consent dialog → pop-up: account row, (Select all), Continue; returns the notebook's handle."""
    main = driver.current_window_handle
    press(driver, DRIVE_CONSENT, "Connect to Google Drive")
    popup = waiting(driver).until(lambda d: [h for h in d.window_handles if h != main])[0]
    driver.switch_to.window(popup)
    waiting(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, f"[data-email='{ACCOUNT_EMAIL}']"))[0].click()
    waiting(driver).until(
        lambda d: "Google Drive for desktop wants to access your Google Account" in text_of(d, "body"))
    if select_all:
        driver.find_element(By.XPATH, "//label[contains(., 'Select all')]//input[@type='checkbox']").click()
    driver.find_element(By.XPATH, "//button[normalize-space()='Continue']").click()
    waiting(driver).until(lambda d: d.window_handles == [main])
    driver.switch_to.window(main)
    return main


def job_output(driver) -> str:
    return text_of(driver, "#cell-job .output")


def api(url: str, body: dict | None = None) -> dict:
    """GET (no body) or POST JSON to the simulator; returns the JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def start_job_over_http(sim: ColabSimulator) -> dict:
    """What a user does in the page, done over the page's own JSON API: Run all through to the job."""
    api(f"{sim.origin}/api/run_all", {})
    if not sim.authored_by_user:
        wait_until(lambda: sim.state()["dialog"] == "authorship")
        api(f"{sim.origin}/api/dialog", {"name": "authorship", "button": "Run anyway"})
    wait_until(lambda: sim.state()["dialog"] == "drive_consent")
    api(f"{sim.origin}/api/dialog", {"name": "drive_consent", "button": "Connect to Google Drive"})
    api(f"{sim.accounts_origin}/grant", {"select_all": True, "email": ACCOUNT_EMAIL})
    return wait_until(lambda: (s := sim.state())["start_count"] and s)


def process_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (missing, or a zombie nobody reaped yet)."""
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return True


# --- the page, in Chromium -----------------------------------------------------------------------------

@pytest.mark.browser
def test_page_is_built_of_colab_custom_elements_with_open_shadow_roots(chromium_driver, make_sim):
    sim = make_sim()
    load(chromium_driver, sim)
    defined = chromium_driver.execute_script(
        "return ['colab-connect-button', 'mwc-dialog', 'mwc-button', 'colab-run-button', 'colab-recaptcha-dialog']"
        ".filter(name => customElements.get(name) !== undefined)")
    assert len(defined) == 5
    assert connect_button(chromium_driver).text.strip() == "Connect"
    cells = chromium_driver.find_elements(By.CSS_SELECTOR, ".cell.code")
    assert len(cells) == 2 and all(c.find_elements(By.CSS_SELECTOR, "colab-run-button") for c in cells)
    assert "drive.mount" in cells[0].text and "colab_side.run" in cells[1].text
    assert sim.state()["runtime"] == "none"


@pytest.mark.browser
def test_ctrl_f9_connects_first_then_warns_about_authorship(chromium_driver, make_sim):
    sim = make_sim()
    load(chromium_driver, sim)
    ctrl_f9(chromium_driver)
    assert wait_dialog(chromium_driver, AUTHORSHIP)["buttons"] == {"primaryAction": "Run anyway",
                                                                  "secondaryAction": "Cancel"}
    state = sim.state()
    assert (state["run_all_count"], state["connect_count"], state["runtime"]) == (1, 1, "connected")
    button = connect_button(chromium_driver)
    assert "RAM" in button.text and "Disk" in button.text
    assert button.get_attribute("title") == "Connected to Python 3 Google Compute Engine backend (GPU)"

    press(chromium_driver, AUTHORSHIP, "Cancel")
    wait_no_dialog(chromium_driver)
    assert sim.state()["start_count"] == 0


@pytest.mark.browser
def test_meta_f9_and_the_runtime_menu_also_run_all(chromium_driver, make_sim):
    sim = make_sim(authored_by_user=True)
    load(chromium_driver, sim)
    ActionChains(chromium_driver).key_down(Keys.META).send_keys(Keys.F9).key_up(Keys.META).perform()
    wait_until(lambda: sim.state()["run_all_count"] == 1)
    press(chromium_driver, DRIVE_CONSENT, "No thanks")

    chromium_driver.find_element(By.CSS_SELECTOR, "#runtime-menu-button").click()
    item = chromium_driver.find_element(By.XPATH, "//*[normalize-space()='Run all']")
    assert item.is_displayed()
    item.click()
    wait_until(lambda: sim.state()["run_all_count"] == 2)
    assert not item.is_displayed()
    # authored by the user: no authorship warning, straight to Drive
    wait_dialog(chromium_driver, DRIVE_CONSENT)


@pytest.mark.browser
def test_drive_consent_popup_with_select_all_starts_the_job_on_a_gpu_runtime(chromium_driver, make_sim):
    sim = make_sim()
    run_anyway(chromium_driver, sim)
    main = complete_popup(chromium_driver, select_all=True)

    state = wait_until(lambda: (s := sim.state())["running"] and s)
    assert state["consent_granted"] and state["start_count"] == 1 and state["pid"]
    waiting(chromium_driver).until(lambda d: "gpu: Tesla T4" in job_output(d))
    assert "hi" in job_output(chromium_driver)
    assert text_of(chromium_driver, "#cell-mount .output") == "Mounted at /content/drive"
    job_cell = chromium_driver.find_element(By.CSS_SELECTOR, "#cell-job")
    assert "running" in job_cell.get_attribute("class").split()
    assert "executing" in job_cell.find_element(By.CSS_SELECTOR, "colab-run-button").get_attribute("title")
    assert chromium_driver.window_handles == [main]
    assert "gpu: Tesla T4" in (sim.workdir / "content" / "output.log").read_text()


@pytest.mark.browser
def test_continue_without_select_all_fails_the_mount_like_colab(chromium_driver, make_sim):
    sim = make_sim()
    run_anyway(chromium_driver, sim)
    complete_popup(chromium_driver, select_all=False)
    waiting(chromium_driver).until(
        lambda d: "credential propagation was unsuccessful" in text_of(d, "#cell-mount .output"))
    state = sim.state()
    assert not state["consent_granted"] and state["start_count"] == 0 and not state["running"]


@pytest.mark.browser
def test_kill_takes_the_process_group_and_shows_runtime_disconnected(chromium_driver, make_sim):
    sim = make_sim()
    run_anyway(chromium_driver, sim)
    complete_popup(chromium_driver)
    waiting(chromium_driver).until(lambda d: "grandchild:" in job_output(d))
    pid = sim.state()["pid"]
    grandchild = int(job_output(chromium_driver).split("grandchild:")[1].split()[0])

    sim.kill()
    assert wait_dialog(chromium_driver, "Runtime disconnected")["buttons"] == {"primaryAction": "Reconnect",
                                                                              "secondaryAction": "Close"}
    wait_connect_text(chromium_driver, "Reconnect")
    assert wait_until(lambda: process_gone(pid) and process_gone(grandchild))
    state = sim.state()
    assert (state["runtime"], state["running"], state["last_kill"]) == ("disconnected", False, "disconnect")

    press(chromium_driver, "Runtime disconnected", "Reconnect")
    wait_connect_text(chromium_driver, "RAM")
    ctrl_f9(chromium_driver)  # a new runtime session: authorship and Drive consent are asked again
    press(chromium_driver, AUTHORSHIP, "Run anyway")
    complete_popup(chromium_driver)
    assert wait_until(lambda: (s := sim.state())["running"] and s["start_count"] == 2)


@pytest.mark.browser
def test_gpu_refusal_dialog_and_what_connect_without_gpu_would_do(chromium_driver, make_sim):
    sim = make_sim()
    sim.refuse_gpu(600)
    load(chromium_driver, sim)
    connect_button(chromium_driver).click()
    dialog = wait_dialog(chromium_driver, GPU_LIMIT)
    assert "You cannot currently connect to a GPU due to usage limits in Colab." in dialog["text"]
    assert dialog["buttons"] == {"primaryAction": "Connect without GPU", "secondaryAction": "Close"}
    press(chromium_driver, GPU_LIMIT, "Close")
    wait_no_dialog(chromium_driver)
    state = sim.state()
    assert state["without_gpu_pressed"] == 0 and state["runtime"] == "none" and state["gpu_refused_until"] > 0

    connect_button(chromium_driver).click()  # still refused; this time a careless user takes the CPU
    press(chromium_driver, GPU_LIMIT, "Connect without GPU")
    wait_connect_text(chromium_driver, "RAM")
    assert "(GPU)" not in connect_button(chromium_driver).get_attribute("title")
    assert sim.state()["without_gpu_pressed"] == 1
    ctrl_f9(chromium_driver)
    press(chromium_driver, AUTHORSHIP, "Run anyway")
    complete_popup(chromium_driver)
    waiting(chromium_driver).until(lambda d: "gpu: none" in job_output(d))


@pytest.mark.browser
def test_idle_check_is_a_recaptcha_dialog_until_the_human_solves_it(chromium_driver, make_sim):
    sim = make_sim()
    load(chromium_driver, sim)
    sim.show_captcha()
    captcha = waiting(chromium_driver).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "body > colab-recaptcha-dialog"))[0]
    inner = captcha.shadow_root.find_element(By.CSS_SELECTOR, "mwc-dialog")
    assert "Are you still there?" in inner.text
    assert inner.find_element(By.CSS_SELECTOR, "mwc-button").shadow_root.find_element(By.CSS_SELECTOR, "#button")
    assert sim.state()["captcha"]
    sim.solve_captcha()
    waiting(chromium_driver).until(
        lambda d: not d.find_elements(By.CSS_SELECTOR, "colab-recaptcha-dialog"))


@pytest.mark.browser
def test_signed_out_notebook_lands_on_the_accounts_sign_in_page(chromium_driver, make_sim):
    sim = make_sim()
    sim.sign_out()
    chromium_driver.get(sim.notebook_url)
    assert chromium_driver.current_url.startswith(f"{sim.accounts_origin}/ServiceLogin?continue=")
    assert "Sign in" in text_of(chromium_driver, "body")
    sim.sign_in()
    load(chromium_driver, sim)
    assert chromium_driver.current_url == sim.notebook_url


# --- each build's own traits, in Chromium ------------------------------------------------------------------

# What a script sees of a dialog host and its parts (the host's box, where its title lives, its buttons' boxes).
DIALOG_PARTS = """
const host = document.querySelector('#dialogs [data-name]');
if (!host) return null;
const box = el => { const r = el.getBoundingClientRect(); return [r.width, r.height]; };
const buttons = [...host.querySelectorAll('[data-primary]')];
return {tag: host.localName, host_box: box(host), display: getComputedStyle(host).display,
        shadow_title: host.shadowRoot ? (host.shadowRoot.querySelector('h2') || {}).textContent || '' : '',
        light_text: host.textContent, button_boxes: buttons.map(box), labels: buttons.map(b => b.textContent.trim())};
"""

RUN_BUTTON = """
const b = document.querySelector('#cell-job colab-run-button'), tip = b.closest('colab-tooltip-trigger');
return {stop: !!b.shadowRoot.querySelector('#stopSymbolMask'), play: !!b.shadowRoot.querySelector('#playSymbolMask'),
        title: b.getAttribute('title'), tooltip: tip ? tip.getAttribute('message') : null,
        running_class: b.closest('.cell').classList.contains('running')};
"""

def running_run_button(driver):
    """The job cell's run button parts, once it shows the cell running (by any build's signal)."""
    parts = driver.execute_script(RUN_BUTTON)
    return parts if parts["stop"] or parts["running_class"] else None


CONNECT_PARTS = """
const root = document.querySelector('colab-connect-button').shadowRoot, connect = root.querySelector('#connect');
const usage = connect.querySelector('colab-usage-display');
return {text: connect.textContent.trim(), usage: !!usage, usage_text: usage ? [...usage.shadowRoot.querySelectorAll('span')].map(e => e.textContent).join('') : null,
        chevron: !!root.querySelector('[aria-haspopup]'), own_root: !!connect.shadowRoot};
"""


@pytest.mark.browser
@pytest.mark.parametrize("variant", [v for v in VARIANTS if v != "tooltip-2025"])  # tooltip-2025: test_page_trust_e2e
def test_each_build_draws_its_dialogs_labels_and_running_cell_as_colab_does(chromium_driver, make_sim, variant):
    sim = make_sim(variant=variant)
    driver = chromium_driver
    load(driver, sim)
    plain = variant == "legacy"
    label = "Connect" if plain else "Connect T4"  # "Connect" shows first: the page adds the accelerator later
    connect = waiting(driver).until(lambda d: (parts := d.execute_script(CONNECT_PARTS))["text"] == label and parts)
    assert connect["chevron"] is not plain
    idle = driver.execute_script(RUN_BUTTON)
    assert idle["play"] and not idle["stop"] and not idle["running_class"]

    api(f"{sim.origin}/api/run_all", {})
    parts = waiting(driver).until(lambda d: d.execute_script(DIALOG_PARTS))
    assert set(parts["labels"]) == {"Run anyway", "Cancel"}
    assert all(w > 0 and h > 0 for w, h in parts["button_boxes"])
    if variant == "mwc-2023":  # an inline host without a box; the title only inside its shadow root
        assert parts["host_box"] == [0, 0] and parts["display"] == "inline"
        assert parts["shadow_title"] == AUTHORSHIP and AUTHORSHIP not in parts["light_text"]
    elif variant == "m3-2025":  # display: contents, the title slotted into the native dialog's headline
        assert (parts["tag"], parts["host_box"], parts["display"]) == ("md-dialog", [0, 0], "contents")
    else:
        assert parts["host_box"][0] > 0 and AUTHORSHIP in parts["light_text"]

    api(f"{sim.origin}/api/dialog", {"name": "authorship", "button": "Run anyway"})
    api(f"{sim.origin}/api/dialog", {"name": "drive_consent", "button": "Connect to Google Drive"})
    api(f"{sim.accounts_origin}/grant", {"select_all": True, "email": ACCOUNT_EMAIL})
    running = waiting(driver).until(running_run_button)
    if plain:
        assert "executing" in running["title"] and running["running_class"] and not running["stop"]
    else:
        assert running["stop"] and running["title"] is None and not running["running_class"]
        assert running["tooltip"] == ("Interrupt execution (Ctrl+M I)" if variant == "m3-2025" else None)
    connected = driver.execute_script(CONNECT_PARTS)
    if variant == "m3-2025":  # RAM/Disk as bars without text, inside a #connect with its own shadow root
        assert connected["usage"] and connected["usage_text"].strip() == "" and connected["own_root"]
    else:
        assert "RAM" in connected["text"] and "Disk" in connected["text"]
    sim.kill()
    waiting(driver).until(lambda d: d.execute_script(CONNECT_PARTS)["text"] == ("Reconnect" if plain else "Reconnect T4"))


@pytest.mark.browser
def test_the_popup_lists_several_accounts_and_the_notebooks_is_not_first(chromium_driver, make_sim):
    sim = make_sim(variant="mwc-2023", leave_alert=True)
    driver = chromium_driver
    run_anyway(driver, sim)
    main = driver.current_window_handle
    press(driver, DRIVE_CONSENT, "Connect to Google Drive")
    popup = waiting(driver).until(lambda d: [h for h in d.window_handles if h != main])[0]
    driver.switch_to.window(popup)
    rows = waiting(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, "[data-email]"))
    emails = [r.get_attribute("data-email") for r in rows]
    assert len(emails) == 3 and emails[0] != ACCOUNT_EMAIL and ACCOUNT_EMAIL in emails
    assert driver.switch_to.active_element.get_attribute("data-email") == ACCOUNT_EMAIL
    rows[0].click()  # another account: the consent goes through, the mount fails like Colab's
    waiting(driver).until(lambda d: d.find_elements(By.ID, "select-all"))
    waiting(driver).until(lambda d: d.execute_script("return document.readyState") == "complete")  # its handlers set
    driver.find_element(By.ID, "select-all").click()
    driver.find_element(By.ID, "continue").click()
    WebDriverWait(driver, 3 * WAIT_SECONDS).until(lambda d: d.window_handles == [main])  # closed late under load
    driver.switch_to.window(main)
    alert = waiting(driver).until(lambda d: _alert(d))
    assert alert.text.startswith("Leave site?")
    alert.accept()
    wait_until(lambda: sim.state()["alerts_accepted"] == 1)
    waiting(driver).until(lambda d: "credential propagation was unsuccessful" in text_of(d, "#cell-mount .output"))
    state = sim.state()
    assert state["grant_email"] == emails[0] and not state["consent_granted"] and state["start_count"] == 0


def _alert(driver):
    from selenium.common.exceptions import NoAlertPresentException

    try:
        return driver.switch_to.alert
    except NoAlertPresentException:
        return None


# --- the state machine and the runtime, over HTTP (no browser) -----------------------------------------

class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_sign_out_is_an_http_302_to_service_login_with_the_notebook_as_continue(make_sim):
    sim = make_sim()
    api(f"{sim.origin}/_sim/sign_out", {})
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.build_opener(_NoRedirect).open(sim.notebook_url, timeout=10)
    assert answer.value.code == 302
    location = answer.value.headers["Location"]
    assert location.startswith(f"{sim.accounts_origin}/ServiceLogin?continue=")
    assert urllib.parse.unquote(location.split("continue=", 1)[1]) == sim.notebook_url
    api(f"{sim.origin}/_sim/sign_in", {})
    with urllib.request.build_opener(_NoRedirect).open(sim.notebook_url, timeout=10) as page:
        assert page.status == 200 and b"colab-connect-button" in page.read()


def test_http_fault_injection_mirrors_the_python_api(make_sim):
    sim = make_sim()
    start_job_over_http(sim)
    state = api(f"{sim.origin}/_sim/kill", {"reason": "idle"})
    assert (state["runtime"], state["dialog"], state["last_kill"], state["running"]) == (
        "disconnected", "disconnected", "idle", False)
    assert api(f"{sim.origin}/_sim/refuse_gpu", {"seconds": 120})["gpu_refused_until"] > time.time() + 60
    assert api(f"{sim.origin}/_sim/show_captcha", {})["captcha"] is True
    assert api(f"{sim.origin}/_sim/solve_captcha", {})["captcha"] is False
    assert api(f"{sim.origin}/_sim/state")["kill_count"] == sim.state()["kill_count"] == 1
    with pytest.raises(urllib.error.HTTPError) as unknown:
        api(f"{sim.origin}/_sim/format_disk", {})
    assert unknown.value.code == 404


def test_a_job_that_exits_leaves_the_runtime_connected_and_idle(make_sim):
    sim = make_sim("import sys; print('bye', flush=True); sys.exit(3)", authored_by_user=True)
    start_job_over_http(sim)
    state = wait_until(lambda: (s := sim.state())["exit_code"] is not None and s)
    assert (state["exit_code"], state["running"], state["runtime"], state["dialog"]) == (3, False, "connected", None)
    assert state["output"] == ["bye"]
    assert (sim.workdir / "content" / "output.log").read_text() == "bye\n"


def test_no_thanks_fails_the_mount_cell_and_starts_nothing(make_sim):
    sim = make_sim()
    api(f"{sim.origin}/api/run_all", {})
    wait_until(lambda: sim.state()["dialog"] == "authorship")
    api(f"{sim.origin}/api/dialog", {"name": "authorship", "button": "Run anyway"})
    state = api(f"{sim.origin}/api/dialog", {"name": "drive_consent", "button": "No thanks"})
    assert "credential propagation was unsuccessful" in state["cell_error"]
    assert state["start_count"] == 0 and not state["consent_granted"]


def test_lifetime_limit_counts_from_each_runtime_start(make_sim):
    sim = make_sim(lifetime_seconds=3.0, authored_by_user=True)
    start_job_over_http(sim)
    sim.kill()
    time.sleep(1.5)  # the first runtime's lifetime would end 1.5 s into the second one's
    api(f"{sim.origin}/api/dialog", {"name": "disconnected", "button": "Reconnect"})
    start_job_over_http(sim)
    time.sleep(2.0)  # past the first runtime's deadline, well before the second one's
    assert sim.state()["kill_count"] == 1 and sim.state()["running"]
    wait_until(lambda: sim.state()["last_kill"] == "lifetime")


@pytest.mark.parametrize("kind", ["no_gpu", "no_backends", "location"])
def test_backend_assignment_failures_refuse_a_runtime_until_they_pass(make_sim, kind):
    sim = make_sim(authored_by_user=True)
    sim.fail_backend(600, kind)
    state = api(f"{sim.origin}/api/connect", {})
    title, body, primary, secondary = state["dialog_texts"]
    assert state["dialog"] == "backend_unavailable" and state["runtime"] == "none"
    assert title == "Failed to assign a backend" and "backend" in body
    dismiss = secondary or primary
    state = api(f"{sim.origin}/api/dialog", {"name": "backend_unavailable", "button": dismiss})
    assert (state["dialog"], state["runtime"], state["without_gpu_pressed"]) == (None, "none", 0)
    if kind == "no_gpu":  # its primary button takes a runtime without accelerator
        api(f"{sim.origin}/api/connect", {})
        state = api(f"{sim.origin}/api/dialog", {"name": "backend_unavailable", "button": primary})
        assert state["without_gpu_pressed"] == 1 and state["runtime"] == "connecting" and not state["runtime_gpu"]


def test_connecting_says_allocating_first_then_connected(make_sim):
    sim = make_sim(variant="m3-2025", connect_seconds=3.0)
    assert api(f"{sim.origin}/api/connect", {})["connecting_label"] == "Allocating"
    wait_until(lambda: sim.page_state()["connecting_label"] == "Initializing", timeout=10)
    wait_until(lambda: sim.state()["runtime"] == "connected", timeout=10)


def test_the_idle_timeout_disconnects_a_runtime_nobody_touches(make_sim):
    sim = make_sim(authored_by_user=True, idle_timeout_seconds=1.0)
    start_job_over_http(sim)
    state = wait_until(lambda: (s := sim.state())["last_kill"] and s)
    assert (state["last_kill"], state["runtime"], state["dialog"]) == ("idle", "disconnected", "disconnected")


def test_an_unknown_variant_or_backend_failure_is_refused_with_the_known_ones(make_sim):
    with pytest.raises(ValueError, match="m3-2025"):
        ColabSimulator(["true"], variant="colab-2030")
    with pytest.raises(ValueError, match="no_backends"):
        make_sim().fail_backend(10, "quota")


def non_loopback_address() -> str | None:
    """This machine's address on its outgoing interface, if it has one (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_servers_listen_on_loopback_only(make_sim):
    sim = make_sim()
    for origin in (sim.origin, sim.accounts_origin):
        assert origin.startswith("http://127.0.0.1:")
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to try")
    for origin in (sim.origin, sim.accounts_origin):
        port = int(origin.rsplit(":", 1)[1])
        with pytest.raises(OSError):
            socket.create_connection((address, port), timeout=5).close()
    assert api(f"{sim.origin}/_sim/state")["runtime"] == "none"
