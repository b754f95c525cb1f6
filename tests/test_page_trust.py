"""Pages keepalive must never act on: Colab unreachable (OFFLINE), Colab's terms (COLAB_POLICY), a cell
running told only by tooltips, and Colab in Japanese. Pure: snapshots and the supervisor, no browser."""

from __future__ import annotations

import pytest

from keepalive.hands.page import PageConfigError, PageModel, classify, shipped_languages
from keepalive.states import Action, Cause, Notice, PageState, Verdict
from keepalive.supervisor import BeatView, Memory, SupervisorConfig, decide
from test_supervisor import beat, view

ORIGIN = "https://colab.research.google.com"
MODEL = PageModel.load(ORIGIN)
BASE = {"url": f"{ORIGIN}/drive/x", "connect": "Connected", "dialogs": [], "running": {}, "captcha": False, "body": ""}
CFG = SupervisorConfig(grace_seconds=60, dead_after=2, offline_backoff_start=10, offline_backoff_cap=40,
                       step_retry_seconds=5)


def state(**snapshot) -> PageState:
    return classify(dict(BASE, **snapshot), MODEL.page, MODEL.origin).state


def test_a_cell_running_is_told_by_a_tooltip_containing_interrupt_or_the_connect_buttons_tooltiptext():
    assert state(running={"tooltips": ["Run cell (Ctrl+Enter)"]}) is PageState.IDLE
    assert state(running={"tooltips": ["Run cell (Ctrl+Enter)", "Interrupt execution (Ctrl+M I)"]}) is PageState.RUNNING
    waiting = "Waiting to finish the current execution.\nPython 3 Google Compute Engine backend\nRAM: 0.94 GB/12.67 GB"
    observation = classify(dict(BASE, connect="Connected", connect_title=waiting), MODEL.page, MODEL.origin)
    assert observation.state is PageState.RUNNING and observation.found["running:connect_tooltip"]
    # "Connected" is not "Connect": a connected notebook is never read as disconnected
    assert state(connect="Connected", connect_title="Connected to\nPython 3 Google Compute Engine backend") is PageState.IDLE


DISALLOWED = ("Runtime disconnected Your runtime has been disconnected due to executing code that is disallowed in our "
              "free of charge tier. If you believe this message is in error, file an appeal")


@pytest.mark.parametrize("snapshot", [
    {"connect": "Reconnect T4", "dialogs": [{"text": DISALLOWED, "buttons": ["Close", "Connect"]}]},
    {"connect": "Reconnect", "dialogs": [{"text": "ランタイムの接続が解除されました Google の無料枠で許可されていないコードを"
                                                  "実行したため、ランタイムの接続が解除されました。", "buttons": ["閉じる"]}],
     "lang": "ja"},
    {"connect": "Connect", "policy_link": True},
], ids=["disallowed_code", "disallowed_code_ja", "appeal_link"])
def test_colabs_terms_are_a_human_state_never_a_plain_disconnect(snapshot):
    model = PageModel.load(ORIGIN)
    model.follow_language(snapshot)
    assert classify(dict(BASE, **snapshot), model.page, model.origin).state is PageState.POLICY


@pytest.mark.parametrize("snapshot", [
    {"url": "chrome-error://chromewebdata/", "connect": None, "body": "This site can’t be reached ERR_NAME_NOT_RESOLVED"},
    {"url": "chrome-error://chromewebdata/", "connect": None, "body": "No internet ERR_INTERNET_DISCONNECTED"},
    {"connect": "Reconnect", "dialogs": [{"text": "Unable to connect to the runtime", "buttons": ["Close"]}]},
], ids=["dns", "offline_pc", "colab_outage"])
def test_an_unreachable_colab_is_offline(snapshot):
    observation = classify(dict(BASE, **snapshot), MODEL.page, MODEL.origin)
    assert observation.state is PageState.OFFLINE
    assert "ERR_" in observation.detail or observation.detail == "dialog: offline"


def test_a_notebook_page_that_mentions_an_error_code_is_not_offline():
    assert state(connect="Connect", body="print('ERR_NAME_NOT_RESOLVED')") is PageState.DISCONNECTED


def rounds(pages, start=1000.0, step=1.0, mem=None, beats=None):
    mem = mem or Memory(session="s1")
    out = []
    for i, page in enumerate(pages):
        bv = beats[i] if beats else view(Verdict.STALE)
        decision = decide(page, bv, mem, start + i * step, CFG)
        mem = decision.memory
        out.append(decision)
    return out


def test_offline_is_told_once_and_looked_at_again_with_back_off_never_pressing_anything():
    decisions = rounds([PageState.OFFLINE] * 200, step=1.0)
    reloads = [i for i, d in enumerate(decisions) if d.action is Action.RELOAD]
    assert {d.action for d in decisions} == {Action.WAIT, Action.RELOAD}
    assert [d.cause for d in decisions] == [Cause.OFFLINE] * 200
    assert sum(Notice.OFFLINE in d.notices for d in decisions) == 1
    gaps = [b - a for a, b in zip([0] + reloads, reloads)]
    assert gaps == [10, 20, 40, 40, 40, 40]  # 10 s, doubling, capped at 40 s
    assert "next look in" in decisions[0].reason


def test_back_from_offline_a_recovery_starts_afresh_and_offline_is_told_again_next_time():
    decisions = rounds([PageState.DISCONNECTED, PageState.OFFLINE, PageState.OFFLINE, PageState.DISCONNECTED,
                        PageState.OFFLINE])
    assert decisions[0].action is Action.RECONNECT
    assert decisions[1].memory.recovering_since is None and decisions[1].action is Action.WAIT
    assert decisions[3].action is Action.RECONNECT and decisions[3].memory.offline_since is None
    assert [Notice.OFFLINE in d.notices for d in decisions] == [False, True, False, False, True]


def test_a_fresh_heartbeat_while_colab_is_unreachable_is_not_acted_on_either():
    decisions = rounds([PageState.OFFLINE] * 30, beats=[view(Verdict.FRESH)] * 30)
    assert {d.action for d in decisions} <= {Action.WAIT, Action.RELOAD}


def test_colabs_terms_are_told_once_and_nothing_is_rerun_until_a_new_session():
    pages = [PageState.POLICY] * 3 + [PageState.DISCONNECTED] * 5 + [PageState.IDLE] * 5
    decisions = rounds(pages)
    assert decisions[0].action is Action.NOTIFY_HUMAN and decisions[0].cause is Cause.COLAB_POLICY
    assert sum(Notice.COLAB_POLICY in d.notices for d in decisions) == 1
    assert not {d.action for d in decisions} & {Action.RECONNECT, Action.RUN_ALL, Action.RUN_ANYWAY, Action.RELOAD}
    after = rounds([PageState.RUNNING], mem=decisions[-1].memory, beats=[BeatView(Verdict.FRESH, beat(session="s2"))])
    assert after[0].cause is None and Cause.COLAB_POLICY.value not in after[0].memory.notified


def test_japanese_texts_ship_as_data_and_are_chosen_by_setting_or_by_the_page():
    assert "ja" in shipped_languages()
    japanese = {"url": f"{ORIGIN}/drive/x", "lang": "ja", "connect": "再接続", "dialogs": [], "running": {},
                "body": ""}
    auto = PageModel.load(ORIGIN)
    auto.follow_language(japanese)
    assert classify(japanese, auto.page, ORIGIN).state is PageState.DISCONNECTED
    english_only = PageModel.load(ORIGIN, {"language": "en"})
    english_only.follow_language(japanese)
    assert classify(japanese, english_only.page, ORIGIN).state is PageState.UNKNOWN
    chosen = PageModel.load(ORIGIN, {"language": "ja"})
    assert "すべてのセルを実行" in chosen.page["run_all"]["menu_item_texts"] and "Run all" in chosen.page["run_all"]["menu_item_texts"]
    assert "このまま実行" in chosen.page["dialogs"]["authorship"]["buttons"]
    assert "ランタイムの接続を解除して削除" in chosen.page["release_runtime"]["menu_item_texts"]
    with pytest.raises(PageConfigError, match="language"):
        PageModel.load(ORIGIN, {"language": "klingon"})


def test_keys_mode_takes_the_languages_window_titles_too():
    from keepalive.hands.keys import load_sequences

    assert "Google アカウント" in load_sequences(None, "ja")["window_titles"]
    assert "Google アカウント" in load_sequences(None, "auto")["window_titles"]  # blind: every shipped language
    english = load_sequences(None, "en")["window_titles"]
    assert "Google アカウント" not in english and "Colab" in english


def test_a_user_override_still_wins_over_a_shipped_language():
    model = PageModel.load(ORIGIN, {"language": "ja", "run_all": {"menu_item_texts": ["全部実行"]}})
    assert model.page["run_all"]["menu_item_texts"] == ["全部実行"]
