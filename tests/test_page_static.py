"""The page model on small static pages in real headless Chromium: every dialog of the dated facts in each
dialog generation (paper ≤ 2022, MWC 2023 with its title inside the shadow root, Material 3 with a host of
``display: contents``), closed dialogs, connect labels, the running signals, Colab builds the simulator does
not imitate (a Material 3 dialog inside a host's shadow root, the older toolbar button), another UI language
through ``[page]`` overrides, and the defects these pages once found."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keepalive.hands.page import PageModel, label_says, says
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
['mwc-button', 'md-text-button', 'paper-button', 'colab-toolbar-button'].forEach(button);
// MWC (2023): an inline host, its surface fixed inside the shadow root with the heading as an <h2> there.
customElements.define('mwc-dialog', class extends HTMLElement {
  connectedCallback() {
    this.attachShadow({mode: 'open'}).innerHTML = '<style>.surface{position:fixed;top:80px;left:40px;width:420px;' +
      'padding:16px;background:#fff} :host(:not([open])) .surface{display:none}</style><div class="surface"><h2>' +
      (this.getAttribute('heading') || '') + '</h2><slot></slot><slot name="secondaryAction"></slot>' +
      '<slot name="primaryAction"></slot></div>';
  }
});
// Material 3 (2024–): the host is display: contents; a native <dialog> inside, open when the host is.
customElements.define('md-dialog', class extends HTMLElement {
  connectedCallback() {
    this.attachShadow({mode: 'open'}).innerHTML = '<style>:host{display:contents}</style><dialog ' +
      (this.hasAttribute('open') ? 'open' : '') + '><h2><slot name="headline"></slot></h2><slot name="content">' +
      '</slot><slot name="actions"></slot><slot></slot></dialog>';
  }
});
// A run button: the stop symbol while its cell runs (since 2024-08), the play symbol otherwise.
customElements.define('colab-run-button', class extends HTMLElement {
  connectedCallback() {
    const id = this.getAttribute('state') === 'running' ? 'stopSymbolMask' : 'playSymbolMask';
    this.attachShadow({mode: 'open'}).innerHTML = '<svg width="24" height="24"><defs><mask id="' + id + '">' +
      '<rect width="24" height="24" fill="#fff"></rect></mask></defs><circle cx="12" cy="12" r="10"></circle></svg>';
  }
});
customElements.define('colab-usage-display', class extends HTMLElement {
  connectedCallback() {
    this.attachShadow({mode: 'open'}).innerHTML = '<span style="display:inline-block;width:40px;height:4px;' +
      'background:#1a73e8"></span>';
  }
});
customElements.define('colab-connect-button', class extends HTMLElement {
  connectedCallback() {
    const root = this.attachShadow({mode: 'open'});
    const usage = this.hasAttribute('usage') ? '<colab-usage-display></colab-usage-display>' : '';
    root.innerHTML = '<div id="connect" name="connect" title="' + (this.getAttribute('tip') || '') + '">' +
                     (this.getAttribute('text') || '') + usage + '</div><button aria-haspopup="true">v</button>';
    root.getElementById('connect').addEventListener('click', () => window.pressed.push('connect'));
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


def toolbar(text: str, tag: str = "colab-connect-button", tip: str = "", usage: bool = False) -> str:
    return f'<div id="top-toolbar"><{tag} text="{text}" tip="{tip}"{" usage" if usage else ""}></{tag}></div>'


CONNECTED = toolbar("", tip="Connected to Python 3 Google Compute Engine backend (GPU)", usage=True)


def dialog(generation: str, title: str, body: str, buttons: list[str], open_: bool = True) -> str:
    """A Colab dialog as ``generation`` draws it; each button is named by its label, for window.pressed."""
    def drawn(tag: str, slots=("", "")) -> str:
        return "".join(f'<{tag} name="{label}" {slot}>{label}</{tag}>'
                       for label, slot in zip(buttons, [slots[0]] * (len(buttons) - 1) + [slots[1]]))
    if generation == "paper-2022":
        shown = "display:block" if open_ else "display:none"
        return (f'<paper-dialog style="{shown};position:fixed;top:80px;left:40px;background:#fff">'
                f'<h2>{title}</h2><p>{body}</p>{drawn("paper-button")}</paper-dialog>')
    flag = "open" if open_ else ""
    if generation == "mwc-2023":
        return (f'<mwc-dialog {flag} heading="{title}"><div>{body}</div>'
                f'{drawn("mwc-button", ("slot=secondaryAction", "slot=primaryAction"))}</mwc-dialog>')
    return (f'<md-dialog {flag}><div slot="headline">{title}</div><div slot="content">{body}</div>'
            f'<div slot="actions">{drawn("md-text-button")}</div></md-dialog>')


GENERATIONS = ["paper-2022", "mwc-2023", "m3-2025"]

# (title, body, buttons (the main one last), the state, the action that answers it, the button it presses)
DIALOGS = [
    ("Runtime disconnected", "Your runtime has been disconnected due to inactivity or reaching its maximum duration.",
     ["Close", "Reconnect"], PageState.DISCONNECTED, Action.RECONNECT, "Reconnect"),
    ("Runtime disconnected", "To connect to a new runtime, click the connect button below.",
     ["Close", "Connect"], PageState.DISCONNECTED, Action.RECONNECT, "Connect"),
    ("Warning: This notebook was not authored by Google", "This notebook was authored by a user.",
     ["Cancel", "Run anyway"], PageState.AUTHORSHIP, Action.RUN_ANYWAY, "Run anyway"),
    ("Permit this notebook to access your Google Drive files?", "This notebook is requesting access.",
     ["No thanks", "Connect to Google Drive"], PageState.DRIVE_CONSENT, Action.CONNECT_DRIVE, "Connect to Google Drive"),
    ("Cannot connect to GPU backend", "You cannot currently connect to a GPU due to usage limits in Colab.",
     ["Close", "Connect without GPU"], PageState.GPU_LIMIT, Action.DISMISS_GPU_LIMIT, "Close"),
    ("Unable to connect to GPU backend", "You cannot currently connect to a GPU due to Colab's usage limits.",
     ["Close", "Connect without GPU"], PageState.GPU_LIMIT, Action.DISMISS_GPU_LIMIT, "Close"),
    ("Failed to assign a backend",
     "No backend with GPU available. Would you like to use a runtime with no accelerator?",
     ["Cancel", "Connect"], PageState.BACKEND_UNAVAILABLE, Action.DISMISS_GPU_LIMIT, "Cancel"),
    ("Failed to assign a backend", "Sorry, no backends available. Please try again later.",
     ["Close"], PageState.BACKEND_UNAVAILABLE, Action.DISMISS_GPU_LIMIT, "Close"),
    ("Failed to assign a backend", "Sorry, we were unable to connect to your backend. This may be due to a restriction in "
     "your location.", ["Close"], PageState.BACKEND_UNAVAILABLE, Action.DISMISS_GPU_LIMIT, "Close"),
]


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


@pytest.mark.browser
@pytest.mark.parametrize("generation", GENERATIONS)
def test_every_dialog_is_read_by_what_it_shows_and_answered_in_each_generation(show, generation):
    model = PageModel.load(ORIGIN)
    for title, body, buttons, state, action, button in DIALOGS:
        driver = show(CONNECTED + dialog(generation, title, body, buttons))
        observation = model.observe(driver)
        assert observation.state is state, (title, body, observation)
        assert model.act(driver, action, "unused")
        assert pressed(driver) == [button], (title, body)  # never "Connect without GPU", never "Connect"


@pytest.mark.browser
@pytest.mark.parametrize("generation", GENERATIONS)
def test_a_closed_dialog_is_not_seen_and_a_host_without_a_box_is(show, generation):
    model = PageModel.load(ORIGIN)
    closed = show(CONNECTED + dialog(generation, "Runtime disconnected", "gone", ["Close", "Reconnect"], open_=False))
    assert model.observe(closed).state is PageState.IDLE
    driver = show(CONNECTED + dialog(generation, "Runtime disconnected", "gone", ["Close", "Reconnect"]))
    host = driver.execute_script("return document.querySelector('paper-dialog, mwc-dialog, md-dialog')"
                                 ".getBoundingClientRect().width")
    assert (host == 0) is (generation != "paper-2022")  # the newer hosts have no box of their own
    assert model.observe(driver).state is PageState.DISCONNECTED


@pytest.mark.browser
def test_the_idle_check_in_its_own_host_calls_the_human(show):
    driver = show(CONNECTED + "<colab-recaptcha-dialog></colab-recaptcha-dialog><script>"
                  "customElements.define('colab-recaptcha-dialog', class extends HTMLElement { connectedCallback() {"
                  " this.attachShadow({mode: 'open'}).innerHTML = '<mwc-dialog open heading=\"Are you still there?\">"
                  "<mwc-button slot=primaryAction>OK</mwc-button></mwc-dialog>'; } })</script>")
    assert PageModel.load(ORIGIN).observe(driver).state is PageState.CAPTCHA


LABELS = {"Connect": PageState.DISCONNECTED, "Connect T4": PageState.DISCONNECTED,
          "Connect GPU": PageState.DISCONNECTED, "Reconnect": PageState.DISCONNECTED,
          "Reconnect T4": PageState.DISCONNECTED, "Connecting": PageState.CONNECTING,
          "Reconnecting": PageState.CONNECTING, "Allocating": PageState.CONNECTING,
          "Initializing": PageState.CONNECTING, "Resuming session": PageState.CONNECTING,
          "Busy": PageState.BUSY, "RAM Disk": PageState.IDLE, "Verbinden": PageState.UNKNOWN}


@pytest.mark.browser
def test_connect_labels_are_matched_by_words_and_reconnect_t4_is_pressed(show):
    model = PageModel.load(ORIGIN)
    for label, state in LABELS.items():
        assert model.observe(show(toolbar(label))).state is state, label
    driver = show(toolbar("Reconnect T4"))
    assert model.act(driver, Action.RECONNECT, "unused") and pressed(driver) == ["connect"]
    busy = show(toolbar("Connecting"))
    assert not model.act(busy, Action.RECONNECT, "unused") and pressed(busy) == []  # never pressed mid-connect


@given(st.sampled_from(["T4", "L4", "A100", "V100", "GPU", "TPU", "v2-8"]),
       st.sampled_from(["Connect", "Reconnect", "Connecting", "Reconnecting"]))
def test_an_accelerator_after_the_word_never_changes_what_the_label_says(accelerator, word):
    connect = PageModel.load(ORIGIN).page["connect"]
    assert label_says(f"{word} {accelerator}", connect) == label_says(word, connect)
    assert not says(f"{word} {accelerator}", ["Connect"]) or word == "Connect"


@pytest.mark.browser
def test_running_is_told_by_the_stop_symbol_and_each_older_signal(show):
    model = PageModel.load(ORIGIN)
    pages = {"stop_symbol": '<div class="cell code"><colab-run-button state="running"></colab-run-button></div>',
             "tooltip": '<div class="cell code"><colab-tooltip-trigger message="Interrupt execution (Ctrl+M I)">'
                        '<colab-run-button></colab-run-button></colab-tooltip-trigger></div>',
             "selector": '<div class="cell running code"><colab-run-button></colab-run-button></div>',
             "title": '<div class="cell code"><colab-run-button title="Interrupt execution (currently executing)">'
                      '</colab-run-button></div>'}
    for signal, cell in pages.items():
        observation = model.observe(show(CONNECTED + cell))
        assert observation.state is PageState.RUNNING and observation.found[f"running:{signal}"], signal
        assert sum(observation.found[f"running:{s}"] for s in pages) == 1
    idle = model.observe(show(CONNECTED + '<div class="cell code"><colab-tooltip-trigger message="Run cell (Ctrl+Enter)">'
                                          '<colab-run-button></colab-run-button></colab-tooltip-trigger></div>'))
    assert idle.state is PageState.IDLE and idle.found["connect_usage"]


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
    pressed(driver).clear()
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
