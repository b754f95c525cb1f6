"""The daemon in a real headless Chromium against the simulator, on pages it must never act on blindly:
Colab unreachable for a long spell, Colab's terms, a running cell told only by tooltips, Colab in Japanese."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from conftest import chromium_available, wait_for
from keepalive.demo import DEMO_SUPERVISOR, Demo
from keepalive.states import Action, Cause, PageState

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not chromium_available(), reason="needs chromium and chromedriver")]

# Colab unreachable: look again after 0.5 s, doubling to 2 s (the real defaults are 15 s and 5 min)
FAST_OFFLINE = dataclasses.replace(DEMO_SUPERVISOR, offline_backoff_start=0.5, offline_backoff_cap=2.0)


@pytest.fixture
def demo_factory(tmp_path):
    made = []

    def make(variant: str = "m3-2025", language: str = "en", **options):
        demo = Demo(tmp_path / f"demo{len(made)}", headless=True, **options)
        demo.sim.variant, demo.sim.language = variant, language
        made.append(demo.start())
        return demo

    yield make
    for demo in made:
        demo.stop()


def events(demo, name):
    return [e for e in demo.journal.events() if e.get("event") == name]


def notifications(demo, what):
    return sum(1 for e in events(demo, "notification") if e.get("what") == what)


def counted_rounds(demo) -> list:
    """Every decision the daemon takes from now on (WAIT rounds are not in the journal)."""
    rounds, step = [], demo.daemon.step

    def counting():
        decision = step()
        rounds.append(decision)
        return decision

    demo.daemon.step = counting
    return rounds


def in_background(fn):
    thread = threading.Thread(target=fn, daemon=True)
    thread.start()
    return thread


def test_a_cell_running_told_only_by_tooltips_is_read_running_and_never_gets_run_all(demo_factory):
    demo = demo_factory(variant="tooltip-2025", images=4, chunk_seconds=0.3)
    rounds = counted_rounds(demo)
    assert demo.daemon.run() == 0
    pages = [d.memory.page for d in rounds if d]
    assert PageState.RUNNING in pages
    running = pages.index(PageState.RUNNING)
    assert Action.RUN_ALL not in [d.action for d in rounds[running:] if d]
    state = demo.sim.state()
    assert state["run_all_count"] == 1 and state["start_count"] == 1  # the first start only


def test_a_disconnect_for_disallowed_code_calls_the_human_once_and_nothing_is_rerun(demo_factory):
    demo = demo_factory(images=6, chunk_seconds=0.3)
    rounds = counted_rounds(demo)

    def colab_enforces():
        assert wait_for(lambda: demo.sim.state()["running"])
        demo.sim.kill("disallowed")
        # many rounds with the notice up, then with it closed by the human: still nothing is rerun
        assert wait_for(lambda: [d.cause for d in rounds if d].count(Cause.COLAB_POLICY) >= 10, timeout=90)
        demo.sim._do("dialog", name="disallowed", button="Close")
        assert wait_for(lambda: [d.memory.page for d in rounds if d][-10:] == [PageState.DISCONNECTED] * 10, timeout=90)
        demo.daemon.stopping = True

    in_background(colab_enforces)
    demo.daemon.run()
    assert notifications(demo, "colab_policy") == 1
    state = demo.sim.state()
    assert state["run_all_count"] == 1 and state["connect_count"] == 1 and state["last_kill"] == "disallowed"
    after = [e for e in events(demo, "decision") if e.get("cause") == "COLAB_POLICY"]
    assert after and all(e["action"] in ("notify_human", "wait") for e in after)
    journal = demo.journal.events()
    told = next(i for i, e in enumerate(journal) if e.get("cause") == "COLAB_POLICY")
    assert not [e for e in journal[told:] if e.get("event") == "action"]


def test_offline_for_a_long_spell_then_back_keeps_one_browser_and_recovers(demo_factory):
    demo = demo_factory(images=6, chunk_seconds=0.3, supervisor=FAST_OFFLINE)
    driver_pid = demo.hands.driver.service.process.pid
    spell = {}

    def outage():
        # the daemon has seen the job's session (else its return is a first start, not a recovery)
        assert wait_for(lambda: demo.sim.state()["running"] and demo.daemon.memory.session is not None, timeout=120)
        demo.sim.go_offline()
        demo.sim.kill()  # the runtime is lost while Colab cannot be reached
        assert wait_for(lambda: any(e.get("cause") == "OFFLINE" for e in events(demo, "decision")), timeout=60)
        # a long spell: many back-off steps at 2 s (the test's cap); each reload finds Colab unreachable
        assert wait_for(lambda: len([e for e in events(demo, "action") if e["action"] == "reload"]) >= 6, timeout=120)
        spell["events"] = len(demo.journal.events())
        spell["same_browser"] = demo.hands.driver.service.process.pid == driver_pid
        demo.sim.go_online()

    in_background(outage)
    assert demo.daemon.run() == 0
    assert "events" in spell, "the outage never happened"
    during = demo.journal.events()[:spell["events"]]
    first = next(i for i, e in enumerate(during) if e.get("cause") == "OFFLINE")
    acted = [e["action"] for e in during[first:] if e.get("event") == "action"]
    assert acted and set(acted) == {"reload"}  # nothing pressed on a page it cannot read
    assert notifications(demo, "offline") == 1
    assert demo.hands.restarts == 0 and spell["same_browser"]  # the same browser all along
    assert notifications(demo, "recovered") == 1  # and the job went on after


def test_colabs_japanese_ui_is_read_and_driven_through_run_all_and_the_drive_popup(demo_factory):
    demo = demo_factory(language="ja", images=4, chunk_seconds=0.3)
    demo.inject_kills(1)
    assert demo.daemon.run() == 0
    pages = {e.get("page") for e in events(demo, "decision")}
    assert {"disconnected", "authorship", "drive_consent", "running"} <= pages
    state = demo.sim.state()
    assert state["start_count"] == 2 and state["without_gpu_pressed"] == 0 and state["grant_email"]
    assert notifications(demo, "recovered") == 1
    # the done job's runtime is released through ランタイム > ランタイムの接続を解除して削除, はい: by the daemon when the
    # page no longer showed the job running as it read 'done', else by the same hands now
    if not events(demo, "runtime_released"):
        demo.hands.start()
        assert wait_for(lambda: demo.hands.observe().state is PageState.IDLE, timeout=60)
        assert demo.hands.release_runtime()
    assert all(e["ok"] for e in events(demo, "runtime_released")) and demo.sim.state()["runtime_deleted"] == 1
