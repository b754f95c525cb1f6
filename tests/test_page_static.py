"""The page model on small static pages in real headless Chromium: Colab builds the simulator does not
imitate (Material 3 dialogs inside shadow roots, the older toolbar button), another UI language through
``[page]`` overrides, and the defects these pages once found."""

from __future__ import annotations

import pytest

from keepalive.hands.page import PageModel
from keepalive.states import Action, PageState

ORIGIN = "file://"

# Custom elements as Colab's builds have them (defined after the body is parsed, as when Colab's scripts
# load): every button keeps its own shadow root with #button, and records in window.pressed what was pressed.
ELEMENTS = """
<script>
window.pressed = [];
const button = tag => customElements.define(tag, class extends HTMLElement {
  connectedCallback() {
    if (this.shadowRoot) return;
    const root = this.attachShadow({mode: 'open'});
    root.innerHTML = '<button id="button"><slot></slot>' + (this.getAttribute('label') || '') + '</button>';
    this.addEventListener('click', () => window.pressed.push(this.getAttribute('name')));
  }
});
['mwc-button', 'md-text-button', 'colab-toolbar-button'].forEach(button);
customElements.define('colab-connect-button', class extends HTMLElement {
  connectedCallback() {
    const root = this.attachShadow({mode: 'open'});
    root.innerHTML = '<div id="connect" title="' + (this.getAttribute('tip') || '') + '">' +
                     this.getAttribute('text') + '</div>';
  }
});
// A dialog host that keeps its Material 3 dialog inside its own shadow root.
customElements.define('colab-m3-host', class extends HTMLElement {
  connectedCallback() {
    this.attachShadow({mode: 'open'}).innerHTML = this.querySelector('template').innerHTML;
  }
});
</script>
"""


def toolbar(text: str, tag: str = "colab-connect-button", tip: str = "") -> str:
    return f'<div id="top-toolbar"><{tag} text="{text}" tip="{tip}"></{tag}></div>'


@pytest.fixture
def show(chromium_driver, tmp_path):
    """Load a static page made of ``body`` and return the driver."""

    def load(body: str):
        page = tmp_path / "page.html"
        page.write_text(f"<!doctype html><html><head><meta charset='utf-8'></head><body>{body}{ELEMENTS}"
                        "</body></html>", encoding="utf-8")
        chromium_driver.get(page.as_uri())
        return chromium_driver

    return load


def pressed(driver) -> list[str]:
    return driver.execute_script("return window.pressed")


GPU_LIMIT_M3 = toolbar("Reconnect") + """
<colab-m3-host><template><md-dialog open style="display:block">
  <div slot="headline">Cannot connect to GPU backend</div>
  <div slot="content">You cannot currently connect to a GPU due to usage limits in Colab.</div>
  <md-text-button name="without">Connect without GPU</md-text-button>
  <md-text-button name="close">Close</md-text-button>
</md-dialog></template></colab-m3-host>"""


@pytest.mark.browser
def test_a_material3_dialog_inside_a_shadow_root_is_seen_and_closed_never_without_gpu(show):
    driver = show(GPU_LIMIT_M3)
    # Even a user override that lists the forbidden button is filtered by `never`.
    model = PageModel.load(ORIGIN, {"dialogs": {"gpu_limit": {"buttons": ["Connect without GPU", "Close"]}}})
    observation = model.observe(driver)
    assert observation.state is PageState.GPU_LIMIT and observation.found["dialog:gpu_limit"]
    assert model.act(driver, Action.DISMISS_GPU_LIMIT, "unused")
    assert pressed(driver) == ["close"]


@pytest.mark.browser
def test_another_ui_language_through_page_overrides(show):
    driver = show(toolbar("Yeniden Bağlan") + """
      <mwc-dialog open style="display:block"><h2>  Çalışma zamanının bağlantısı kesildi  </h2>
        <mwc-button slot="secondaryAction" name="close">Kapat</mwc-button>
        <mwc-button slot="primaryAction" name="reconnect">
            Yeniden Bağlan
        </mwc-button></mwc-dialog>""")
    english = PageModel.load(ORIGIN)
    assert english.observe(driver).state is PageState.UNKNOWN
    assert not english.act(driver, Action.RECONNECT, "unused")
    turkish = PageModel.load(ORIGIN, {
        "connect": {"labels": {"disconnected": ["yeniden bağlan"]}},
        "dialogs": {"disconnected": {"texts": ["bağlantısı kesildi"], "buttons": ["YENIDEN BAĞLAN"]}},
    })
    observation = turkish.observe(driver)
    assert observation.state is PageState.DISCONNECTED and observation.found["dialog:disconnected"]
    assert turkish.act(driver, Action.RECONNECT, "unused")
    assert pressed(driver) == ["reconnect"]  # the dialog's button, matched trimmed and case-insensitively


@pytest.mark.browser
def test_the_older_toolbar_button_and_a_renamed_host_by_override(show):
    driver = show('<div id="top-toolbar"><colab-toolbar-button id="connect" name="legacy">Connect'
                  '</colab-toolbar-button></div>')
    model = PageModel.load(ORIGIN)
    observation = model.observe(driver)
    assert observation.state is PageState.DISCONNECTED and observation.found["connect_button"]

    driver = show(toolbar("Allocating", tag="colab-connect-button-v2"))
    assert model.observe(driver).state is PageState.UNKNOWN
    renamed = PageModel.load(ORIGIN, {"connect": {"hosts": ["#top-toolbar > colab-connect-button-v2"]}})
    driver.execute_script("customElements.define('colab-connect-button-v2', class extends HTMLElement {"
                          " connectedCallback() { this.attachShadow({mode: 'open'}).innerHTML ="
                          " '<div id=connect>' + this.getAttribute('text') + '</div>'; } })")
    assert renamed.observe(driver).state is PageState.CONNECTING


@pytest.mark.browser
def test_running_and_idle_when_connected(show):
    connected = toolbar("RAM Disk", tip="Connected to Python 3 Google Compute Engine backend (GPU)")
    model = PageModel.load(ORIGIN)
    idle = show(connected + '<div class="cell code"><colab-run-button title="Run cell"></colab-run-button></div>')
    assert model.observe(idle).state is PageState.IDLE
    by_class = show(connected + '<div class="cell code running"><colab-run-button></colab-run-button></div>')
    assert model.observe(by_class).state is PageState.RUNNING
    by_title = show(connected + '<div class="cell code"><colab-run-button title="Interrupt execution (currently'
                                ' executing)"></colab-run-button></div>')
    observation = model.observe(by_title)
    assert observation.state is PageState.RUNNING and observation.found["running:title"]


# --- defects found by these pages, fixed ------------------------------------------------------------------


@pytest.mark.browser
def test_observe_never_raises_when_the_browser_is_gone(show):
    driver = show(toolbar("Connect"))
    model = PageModel.load(ORIGIN)
    driver.quit()
    assert model.observe(driver).state is PageState.UNKNOWN


@pytest.mark.browser
def test_a_dialog_button_labelled_only_inside_its_shadow_root_is_pressed(show):
    driver = show(toolbar("Connect") + """
      <mwc-dialog open style="display:block">Warning: This notebook was not authored by Google
        <mwc-button slot="secondaryAction" name="cancel" label="Cancel"></mwc-button>
        <mwc-button slot="primaryAction" name="anyway" label="Run anyway"></mwc-button></mwc-dialog>""")
    model = PageModel.load(ORIGIN)
    assert model.observe(driver).state is PageState.AUTHORSHIP
    assert model.act(driver, Action.RUN_ANYWAY, "unused") and pressed(driver) == ["anyway"]


@pytest.mark.browser
def test_a_users_own_second_tab_is_not_the_drive_popup(show):
    driver = show(toolbar("RAM Disk", tip="Connected to Python 3 Google Compute Engine backend (GPU)"))
    main = driver.current_window_handle
    driver.switch_to.new_window("tab")
    driver.switch_to.window(main)
    assert PageModel.load(ORIGIN).observe(driver, main).state is PageState.IDLE


@pytest.mark.browser
def test_reconnect_presses_the_button_not_an_ancestor_showing_the_same_text(show):
    driver = show('<div id="top-toolbar"><colab-toolbar-button id="connect" name="legacy">Connect'
                  '</colab-toolbar-button></div>')
    assert PageModel.load(ORIGIN).act(driver, Action.RECONNECT, "unused") and pressed(driver) == ["legacy"]


@pytest.mark.browser
def test_the_nested_connect_button_with_a_slotted_label(show):
    driver = show('<div id="top-toolbar"><colab-connect-button></colab-connect-button></div>'
                  "<script>customElements.define('colab-connect-button', class extends HTMLElement {"
                  " connectedCallback() { this.attachShadow({mode: 'open'}).innerHTML ="
                  " '<mwc-button id=connect name=nested>Reconnect</mwc-button>'; } })</script>")
    assert PageModel.load(ORIGIN).observe(driver).state is PageState.DISCONNECTED
