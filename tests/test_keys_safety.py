"""Keys mode's safety rules, with a recording stand-in for the keyboard (no display needed)."""

from __future__ import annotations

from types import SimpleNamespace

from keepalive.hands.keys import KeyHands
from keepalive.states import Action


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class Keyboard:
    """Records what would be typed; the mouse moves when ``moving`` is true."""

    def __init__(self, moving=False):
        self.typed, self.moving, self.x = [], moving, 0

    def position(self):
        self.x += 1 if self.moving else 0
        return (self.x, 0)

    def hotkey(self, *keys):
        self.typed.append("+".join(keys))

    def press(self, key):
        self.typed.append(key)


def hands(keyboard, title="demo.ipynb - Colaboratory - Google Chrome", idle=None):
    clock = Clock()
    cfg = SimpleNamespace(url="https://colab.research.google.com/drive/x", keys={"idle_seconds": 1.0,
                          "idle_max_wait_seconds": 10.0, "load_seconds": 0.0}, browser=SimpleNamespace(keep_open=True))
    return KeyHands(cfg, gui=keyboard, clock=clock, sleep=clock.sleep, focus=lambda: title, idle=lambda: idle,
                    raise_window=lambda pattern: False)


def test_types_into_the_notebook_window():
    keyboard = Keyboard()
    assert hands(keyboard).play(["{mod}+f9", "enter"])
    assert keyboard.typed[-1] == "enter" and keyboard.typed[0].endswith("+f9")


def test_never_types_into_another_window():
    keyboard = Keyboard()
    assert not hands(keyboard, title="Terminal — bash").play(["{mod}+f9", "enter"])
    assert keyboard.typed == []


def test_a_terminal_or_editor_named_after_the_project_is_not_the_browser():
    for title in ("me@pc: ~/src/colab-keepalive", "colab notes.txt - gedit"):
        keyboard = Keyboard()
        assert not hands(keyboard, title=title).play(["{mod}+w"])
        assert keyboard.typed == []
    assert hands(Keyboard(), title="Sign in - Google Accounts - Chromium").play(["enter"])


def test_no_second_window_when_the_notebook_window_cannot_be_focused(monkeypatch):
    keyboard = Keyboard()
    key_hands = hands(keyboard, title="Terminal — bash")
    key_hands.raise_window = lambda pattern: True  # a notebook window exists, but the focus stays elsewhere
    opened = []
    monkeypatch.setattr(key_hands, "open", lambda: opened.append(True))
    assert not key_hands.act(Action.RUN_ALL)
    assert keyboard.typed == [] and opened == []


def test_waits_while_the_user_moves_the_mouse_then_gives_up_this_round():
    keyboard = Keyboard(moving=True)
    assert not hands(keyboard).play(["enter"])
    assert keyboard.typed == []


def test_system_idle_time_covers_the_keyboard():
    keyboard = Keyboard()
    assert not hands(keyboard, idle=0.2).play(["enter"])  # someone is typing
    assert hands(keyboard, idle=30.0).play(["enter"])


def test_run_all_reopens_the_tab_then_presses_run_all_and_answers_dialogs(monkeypatch):
    keyboard = Keyboard()
    key_hands = hands(keyboard)
    opened = []
    monkeypatch.setattr(key_hands, "open", lambda: opened.append(True))
    assert key_hands.act(Action.RUN_ALL)
    assert keyboard.typed[0].endswith("+w") and keyboard.typed[1].endswith("+f9") and opened == [True]
    assert "space" in keyboard.typed and keyboard.typed[-1] == "enter"
    assert not key_hands.act(Action.CONNECT_DRIVE)  # keys mode answers dialogs only as part of Run all


def test_after_opening_it_waits_for_the_notebooks_title_not_a_fixed_time():
    """Typing into a window still titled "Untitled" would only close it again next round (a loaded PC)."""
    titles = iter(["Untitled - Chromium"] * 5)
    key_hands = hands(Keyboard())
    key_hands.focus = lambda: next(titles, "demo.ipynb - Colaboratory - Chromium")
    key_hands.seq.update(load_seconds=2.0, load_max_seconds=60.0)
    assert key_hands._wait_until_loaded()
    assert key_hands.clock.now == 2.0 + 5 * 0.5  # the minimum, then until the title showed
    never = hands(Keyboard(), title="Untitled - Chromium")
    never.seq.update(load_seconds=2.0, load_max_seconds=60.0)
    assert not never._wait_until_loaded() and 60.0 <= never.clock.now < 61.0
    unknown = hands(Keyboard())
    unknown.focus = lambda: None  # this platform cannot tell window titles
    unknown.seq.update(load_seconds=2.0, load_max_seconds=60.0)
    assert unknown._wait_until_loaded() and unknown.clock.now == 2.0


def test_a_window_just_opened_gets_its_keys_once_its_title_shows_and_never_before():
    loading = ["Untitled - Chromium"] * 8  # Google's pop-up, still loading
    key_hands = hands(Keyboard())
    key_hands.focus = lambda: loading.pop() if loading else "Sign in - Google Accounts - Chromium"
    typed = []
    key_hands._press = lambda step: typed.append((step, len(loading)))
    assert key_hands.play(["enter"])
    assert typed == [("enter", 0)]  # typed only once the title had shown
