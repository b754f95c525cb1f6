"""Notifications: rate-limited per kind, written to the journal, a bell where no desktop answers."""

from __future__ import annotations

import io

from keepalive import notify
from keepalive.journal import Journal


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def sent(journal):
    return [(e["what"], e["message"]) for e in journal.events() if e.get("event") == "notification"]


def test_each_kind_is_rate_limited_on_its_own(tmp_path):
    journal, clock, out = Journal(tmp_path, "castle"), Clock(), io.StringIO()
    notifier = notify.Notifier("record", 600, journal, clock=clock, stream=out)
    assert notifier.send("needs_human", "CAPTCHA: waiting for you in the browser")
    clock.now = 599
    assert not notifier.send("needs_human", "CAPTCHA again")
    assert notifier.send("recovered", "new session")  # another kind is not held back
    clock.now = 600
    assert notifier.send("needs_human", "LOGIN_REQUIRED: sign in")
    assert sent(journal) == [("needs_human", "CAPTCHA: waiting for you in the browser"),
                             ("recovered", "new session"), ("needs_human", "LOGIN_REQUIRED: sign in")]
    assert out.getvalue() == ""  # the record backend only writes the journal


def test_without_a_desktop_notifier_the_terminal_bell_rings(tmp_path, monkeypatch):
    monkeypatch.setattr(notify, "_desktop_send", lambda title, message: False)
    out = io.StringIO()
    notifier = notify.Notifier("desktop", 0, Journal(tmp_path, "castle"), stream=out)
    assert notifier.send("failed", "the job failed: DepthMap_1 ended in ERROR")
    assert out.getvalue() == "\aColab job failed: the job failed: DepthMap_1 ended in ERROR\n"


def test_a_working_desktop_notifier_gets_title_and_message(tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr(notify, "_desktop_send", lambda title, message: shown.append((title, message)) or True)
    out = io.StringIO()
    notify.Notifier("desktop", 0, None, stream=out).send("done", "the job is done")
    assert shown == [("Colab job done", "the job is done")] and out.getvalue() == ""


def test_every_kind_the_daemon_sends_has_a_title():
    for kind in ("done", "failed", "blocked", "needs_human", "recovered", "giving_up"):
        assert notify.TITLES[kind] != "colab-keepalive"


def test_disabled_notifications_stay_silent(tmp_path):
    journal, out = Journal(tmp_path, "castle"), io.StringIO()
    assert not notify.Notifier("bell", 0, journal, enabled=False, stream=out).send("done", "the job is done")
    assert sent(journal) == [] and out.getvalue() == ""
