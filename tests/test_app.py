"""app.build: one function wires config → hands → watch → journal → notifier → Daemon; App.close lets go of
everything; the PC is kept awake while watching, or one line says why it cannot be."""

from __future__ import annotations

import io
import os
import signal
import sys

import pytest

from colab_side import heartbeat as hb
from keepalive import app, config
from keepalive.hands.browser import BrowserError
from keepalive.hands.keys import KeyHands
from keepalive.hands.page import Observation
from keepalive.hands.protocol import Hands
from keepalive.hands.selenium import SeleniumHands
from keepalive.journal import AlreadyRunning, Journal
from keepalive.states import PageState
from keepalive.view import LiveView


class StandInHands:
    """Hands that show a running page and remember what was asked of them."""

    sees_page = True

    def __init__(self, fail_start: bool = False):
        self.fail_start = fail_start
        self.calls: list[str] = []

    def start(self):
        self.calls.append("start")
        if self.fail_start:
            raise BrowserError("cannot start the browser: test")

    def observe(self):
        return Observation(PageState.RUNNING, {}, "stand-in")

    def act(self, action):
        self.calls.append(action.value)
        return True

    def reopen(self):
        self.calls.append("reopen")

    def release_runtime(self):
        self.calls.append("release_runtime")
        return True

    def close(self):
        self.calls.append("close")


@pytest.fixture
def cfg(tmp_path):
    settings = config.load(env={"KEEPALIVE_HOME": str(tmp_path / "home")}, job="castle", poll_seconds=0.05,
                           drive_folder=str(tmp_path / "drive"), notify_backend="record", keep_awake=False,
                           url="http://127.0.0.1:9/drive/x", origin="http://127.0.0.1:9")
    (tmp_path / "drive").mkdir()
    return settings


@pytest.fixture
def restore_signals():
    saved = {name: signal.getsignal(getattr(signal, name)) for name in ("SIGINT", "SIGTERM")}
    yield
    for name, handler in saved.items():
        signal.signal(getattr(signal, name), handler)


def done_heartbeat(cfg):
    path = hb.heartbeat_path(cfg.drive_folder, cfg.job)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(hb.Heartbeat(job=cfg.job, session="s1", seq=1, time="2026-01-01T00:00:00+00:00",
                                 phase=hb.DONE, chunks_done=4, chunks_total=4, progress=1.0).to_json())


def test_build_wires_the_parts_runs_to_the_end_and_close_lets_go_of_everything(cfg, restore_signals):
    hands = StandInHands()
    done_heartbeat(cfg)
    with app.build(cfg, hands=hands, view=LiveView(stream=io.StringIO())) as watching:
        assert hands.calls == ["start"]
        assert watching.daemon.hands is hands and watching.daemon.journal is watching.journal
        assert watching.daemon.watch.path == hb.heartbeat_path(cfg.drive_folder, "castle")
        with pytest.raises(AlreadyRunning):  # the lock is held while the app lives
            Journal(cfg.dirs.state, cfg.job).lock()
        assert watching.run() == 0
    assert hands.calls[-1] == "close"
    other = Journal(cfg.dirs.state, cfg.job)
    other.lock()  # let go
    other.unlock()


@pytest.mark.parametrize("phase, release", [(hb.DONE, True), (hb.FAILED, True), (hb.DONE, False)])
def test_a_final_heartbeat_found_at_start_is_history_and_no_runtime_is_released(cfg, restore_signals, phase,
                                                                                release):
    """This daemon never saw that session alive: the runtime now assigned may be running something else."""
    cfg.release_runtime_at_end = release
    path = hb.heartbeat_path(cfg.drive_folder, cfg.job)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(hb.Heartbeat(job=cfg.job, session="s1", seq=1, time="2026-01-01T00:00:00+00:00", phase=phase,
                                 cause=None if phase == hb.DONE else hb.CODE_ERROR).to_json())
    hands = StandInHands()
    with app.build(cfg, hands=hands, view=LiveView(stream=io.StringIO())) as watching:
        watching.run()
        released = [e for e in watching.journal.events() if e["event"] == "runtime_released"]
    assert hands.calls.count("release_runtime") == 0 and released == []


def test_the_live_state_notes_when_this_pc_saw_the_heartbeat_and_what_it_sees_durable(cfg, restore_signals):
    done_heartbeat(cfg)
    with app.build(cfg, hands=StandInHands(), view=LiveView(stream=io.StringIO())) as watching:
        watching.run()
        state = watching.journal.load_state()
    assert {k: state["heartbeat_seen"][k] for k in ("session", "seq")} == {"session": "s1", "seq": 1}
    assert state["chunks_durable_on_pc"] is None  # no manifest on this Drive (yet)


def test_a_second_build_for_the_same_job_is_refused_before_its_hands_start(cfg):
    first = app.build(cfg, hands=StandInHands(), view=LiveView(stream=io.StringIO()))
    try:
        second = StandInHands()
        with pytest.raises(AlreadyRunning):
            app.build(cfg, hands=second)
        assert second.calls == []
    finally:
        first.close()


def test_hands_that_cannot_start_leave_nothing_held(cfg):
    hands = StandInHands(fail_start=True)
    with pytest.raises(BrowserError):
        app.build(cfg, hands=hands)
    assert hands.calls == ["start", "close"]
    again = Journal(cfg.dirs.state, cfg.job)
    again.lock()
    again.unlock()


def test_blind_hands_make_the_supervisor_rely_on_run_all(cfg):
    hands = StandInHands()
    hands.sees_page = False
    with app.build(cfg, hands=hands, view=LiveView(stream=io.StringIO())):
        assert cfg.supervisor.blind


def test_the_mode_chooses_the_hands_and_both_kinds_keep_the_protocol(cfg):
    assert isinstance(app.make_hands(cfg), SeleniumHands)
    cfg.mode = "keys"
    keys = app.make_hands(cfg)
    assert isinstance(keys, KeyHands) and not keys.sees_page
    for hands in (keys, SeleniumHands(cfg), StandInHands()):
        assert isinstance(hands, Hands)


def test_the_pc_is_kept_awake_while_watching(monkeypatch):
    monkeypatch.setenv("WAKEPY_FAKE_SUCCESS", "1")  # wakepy's own stand-in for a power manager that says yes
    said = []
    with app.keep_awake(True, said.append):
        pass
    assert said == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a PC without a power manager: Linux here")
def test_where_nothing_can_keep_it_awake_one_warning_says_what_to_do(monkeypatch):
    monkeypatch.delenv("WAKEPY_FAKE_SUCCESS", raising=False)
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)  # no session bus: no inhibitor to ask
    said = []
    with app.keep_awake(True, said.append):
        said.append("watching")
    assert len(said) == 2 and said[1] == "watching"
    assert "cannot keep this PC awake" in said[0] and "org.freedesktop.PowerManagement" in said[0]
    assert "\n" not in said[0]


def test_keeping_awake_can_be_switched_off(monkeypatch):
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    said = []
    with app.keep_awake(False, said.append):
        pass
    assert said == []


@pytest.mark.browser
def test_selenium_hands_disconnect_and_delete_the_runtime_through_the_runtime_menu(tmp_path, sleeper_sim):
    from conftest import chromium_available, headless_config, wait_for
    from keepalive.states import Action

    if not chromium_available():
        pytest.skip("needs chromium and chromedriver")
    settings = config.load(env={"KEEPALIVE_HOME": str(tmp_path / "home")}, origin=sleeper_sim.origin,
                           url=sleeper_sim.notebook_url)
    settings.browser = headless_config()
    settings.page = sleeper_sim.page_overrides()
    hands = SeleniumHands(settings)
    hands.start()
    try:
        assert wait_for(lambda: hands.observe().state is PageState.DISCONNECTED)
        assert hands.act(Action.RECONNECT)
        assert wait_for(lambda: sleeper_sim.state()["runtime"] == "connected")
        assert hands.release_runtime()
        state = sleeper_sim.state()
        assert state["runtime_deleted"] == 1 and state["runtime"] == "none" and state["dialog"] is None
        assert hands.release_runtime() and sleeper_sim.state()["runtime_deleted"] == 1  # nothing left to delete
    finally:
        hands.close()


@pytest.mark.browser
def test_a_restarted_daemon_facing_a_running_page_and_an_old_final_heartbeat_releases_nothing(
        tmp_path, sleeper_sim, cfg, restore_signals, capsys):
    """Real Chromium, the simulator's page running a job; on the PC the final heartbeat of an earlier session."""
    from conftest import chromium_available, headless_config, wait_for
    from keepalive.states import Action
    from keepalive.supervisor import RECOVERY_STEPS

    if not chromium_available():
        pytest.skip("needs chromium and chromedriver")
    cfg.origin, cfg.url = sleeper_sim.origin, sleeper_sim.notebook_url
    cfg.browser = headless_config()
    cfg.page = sleeper_sim.page_overrides()
    done_heartbeat(cfg)

    def start_by_hand():  # the user started the job again: connect, Run all, the dialogs
        state = hands.observe().state
        step = RECOVERY_STEPS.get(state, Action.WAIT)
        if state is not PageState.RUNNING and step not in (Action.WAIT, Action.RELOAD):
            hands.act(step)
        return state is PageState.RUNNING

    with app.build(cfg, view=LiveView(stream=io.StringIO())) as watching:
        hands = watching.daemon.hands
        assert wait_for(start_by_hand, timeout=90)
        watching.run()
        released = [e for e in watching.journal.events() if e["event"] == "runtime_released"]
    assert released == [] and sleeper_sim.state()["runtime_deleted"] == 0
    assert "runtime was not released" in capsys.readouterr().err  # and the user is told how to do it
