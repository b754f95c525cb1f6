"""Notifications: rate-limited per kind, written to the journal, a bell where no desktop answers.
Through apprise to a local endpoint, and to a real notification server on a virtual screen."""

from __future__ import annotations

import http.server
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from keepalive import notify
from keepalive.journal import Journal
from keepalive.states import Notice


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


class FakeDesktop:
    def __init__(self, answers: bool):
        self.answers = answers
        self.shown: list[tuple[str, str]] = []

    def send(self, title, message):
        self.shown.append((title, message))
        return self.answers

    def close(self):
        pass


def test_without_a_desktop_notifier_the_terminal_bell_rings(tmp_path):
    out = io.StringIO()
    notifier = notify.Notifier("desktop", 0, Journal(tmp_path, "castle"), stream=out, desktop=FakeDesktop(False))
    assert notifier.send("failed", "the job failed: DepthMap_1 ended in ERROR")
    assert out.getvalue() == "\aColab job failed: the job failed: DepthMap_1 ended in ERROR\n"


def test_a_working_desktop_notifier_gets_title_and_message(tmp_path):
    desktop, out = FakeDesktop(True), io.StringIO()
    notify.Notifier("desktop", 0, None, stream=out, desktop=desktop).send("done", "the job is done")
    assert desktop.shown == [("Colab job done", "the job is done")] and out.getvalue() == ""


def test_every_kind_the_daemon_sends_has_a_title_of_its_own():
    assert set(notify.TITLES) == set(Notice) and len(set(notify.TITLES.values())) == len(Notice)
    assert notify.TITLES["done"] == "Colab job done"  # plain strings find them too


def test_disabled_notifications_stay_silent(tmp_path):
    journal, out = Journal(tmp_path, "castle"), io.StringIO()
    assert not notify.Notifier("bell", 0, journal, enabled=False, stream=out).send("done", "the job is done")
    assert sent(journal) == [] and out.getvalue() == ""


class Endpoint:
    """A local HTTP endpoint taking apprise's ``json://`` notifications, as a phone service would."""

    def __init__(self):
        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_the_phone_gets_it_through_apprise_rate_limited_like_the_desktop(tmp_path, capfd):
    endpoint, journal, clock = Endpoint(), Journal(tmp_path, "castle"), Clock()
    try:
        notifier = notify.Notifier("record", 600, journal, clock=clock, urls=[endpoint.url])
        assert notifier.send("needs_human", "CAPTCHA: waiting for you in the browser")
        clock.now = 10
        assert not notifier.send("needs_human", "CAPTCHA again")
        assert [(m["title"], m["message"]) for m in endpoint.received] == [
            ("Colab needs you in the browser", "CAPTCHA: waiting for you in the browser")]
        assert [e["ok"] for e in journal.events() if e["event"] == "phone_notification"] == [True]
    finally:
        endpoint.close()
    assert capfd.readouterr().err == ""


def test_an_unreachable_phone_service_is_journaled_never_printed(tmp_path, capfd):
    journal = Journal(tmp_path, "castle")
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        url = f"json://user:secret-token@127.0.0.1:{closed.getsockname()[1]}/"
    notifier = notify.Notifier("record", 0, journal, urls=[url])
    assert notifier.send("failed", "the job failed")
    assert [e["ok"] for e in journal.events() if e["event"] == "phone_notification"] == [False]
    captured = capfd.readouterr()
    assert "secret-token" not in captured.out + captured.err + journal.events_path.read_text()


def test_a_notification_url_apprise_does_not_know_is_one_line_without_its_token():
    with pytest.raises(ValueError) as error:
        notify.check_urls(["ntfy://mytopic", "nosuchservice://secret-token@host"])
    assert "entry 2 (nosuchservice://…)" in str(error.value) and "secret-token" not in str(error.value)


NOTIFICATION_DAEMONS = ["/usr/lib/notification-daemon/notification-daemon", "dunst"]

# Run inside a private D-Bus session: start the notification server, watch what it is sent, send
# through the product's notifier, close it, and leave.
DESKTOP_SESSION = r"""
import subprocess, sys, time
from keepalive import notify

def owned():
    out = subprocess.run(["dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus", "/",
                          "org.freedesktop.DBus.ListNames"], capture_output=True, text=True).stdout
    return "org.freedesktop.Notifications" in out

def wait(condition):
    deadline = time.monotonic() + 60
    while not condition():
        if time.monotonic() > deadline:
            sys.exit("timed out")
        time.sleep(0.1)

server = subprocess.Popen([sys.argv[1]], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
monitor = subprocess.Popen(["dbus-monitor", "--session", "interface='org.freedesktop.Notifications',member='Notify'"],
                           stdout=open(sys.argv[2], "w"), stderr=subprocess.DEVNULL)
wait(owned)
wait(lambda: "NameAcquired" in open(sys.argv[2]).read())  # the monitor listens
notifier = notify.Notifier("desktop", 0, None)
print("shown:", notifier.desktop.send("Colab job recovered", "a new session computes"), flush=True)
print("shown:", notifier.desktop.send("Colab job done", "the job is done"), flush=True)
notifier.close()
wait(lambda: open(sys.argv[2]).read().count("member=Notify") >= 2)
monitor.terminate()
server.terminate()
"""


def test_a_real_notification_server_shows_it_with_the_products_icon_and_nothing_is_printed(xvfb_display, tmp_path):
    server = next((found for found in map(shutil.which, NOTIFICATION_DAEMONS) if found), None)
    if not (server and shutil.which("dbus-run-session") and shutil.which("dbus-monitor")):
        pytest.skip("needs a notification server (Debian: apt-get install notification-daemon dbus-x11)")
    seen = tmp_path / "monitor.txt"
    proc = subprocess.run(["dbus-run-session", "--", sys.executable, "-c", DESKTOP_SESSION, server, str(seen)],
                          capture_output=True, text=True, timeout=120, env=dict(os.environ, NO_AT_BRIDGE="1"))
    assert proc.returncode == 0, proc.stderr
    assert [line for line in proc.stdout.splitlines() if line.startswith("shown:")] == ["shown: True"] * 2
    noise = [line for line in proc.stderr.splitlines() if not line.startswith("dbus-daemon")]
    assert noise == []  # no "Exception ignored ... Invalid file descriptor" traceback
    calls = seen.read_text()
    assert calls.count('string "colab-keepalive"') == 2
    assert calls.count(f'string "{notify.ICON.as_uri()}"') == 2 and "python.png" not in calls
    assert 'string "Colab job done"' in calls and 'string "the job is done"' in calls
