"""Notifications: each names the job, what happened and what to do; rate-limited per kind, written to the
journal, a bell where no desktop answers (one warning line, never a traceback). Through apprise to a local
endpoint, and to a real notification server on a virtual screen."""

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
    return [(e["what"], e["message"].split(". ")[0]) for e in journal.events() if e.get("event") == "notification"]


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
                             ("recovered", "A new session computes after the runtime was lost (restarts so far: 0)"),
                             ("needs_human", "LOGIN_REQUIRED: sign in")]
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


def test_without_a_desktop_notifier_one_warning_line_then_the_terminal_bell(tmp_path):
    out, desktop = io.StringIO(), FakeDesktop(False)
    notifier = notify.Notifier("desktop", 0, Journal(tmp_path, "castle"), stream=out, desktop=desktop, job="castle")
    assert notifier.send("failed", "the job failed: DepthMap_1 ended in ERROR")
    assert notifier.send("recovered", "a new session computes")
    lines = out.getvalue().splitlines()
    assert lines[0] == ("keepalive: warning: desktop notifications do not work here (no notification service "
                        "answered); the terminal bell rings instead")
    assert lines[1].startswith("\acastle: Colab job failed: Job castle: the job failed: DepthMap_1 ended in ERROR.")
    assert lines[2].startswith("\acastle: Colab job recovered: Job castle: a new session computes after")
    assert len(lines) == 3 and len(desktop.shown) == 1  # the desktop is not tried again


def test_a_working_desktop_notifier_gets_title_and_message(tmp_path):
    desktop, out = FakeDesktop(True), io.StringIO()
    notify.Notifier("desktop", 0, None, stream=out, desktop=desktop, job="castle").send("done", "the job is done")
    assert desktop.shown == [("castle: Colab job done",
                              "Job castle: the job is done. 0 restarts. Nothing to do: the result is on your Drive.")]
    assert out.getvalue() == ""


FACTS = {"job": "castle", "job_seconds": 26 * 3600 + 14 * 60 + 3, "restarts": 3, "result_files_on_pc": 3,
         "what_to_do": "look at logs/DepthMap_1 and fix the input"}


def test_done_names_the_job_its_wall_time_restarts_and_result():
    title, message = notify.compose("done", "the job is done", FACTS)
    assert title == "castle: Colab job done"
    assert message == ("Job castle: the job is done. 26:14:03 from its first start, 3 restarts, result: 3 files "
                       "verified in keepalive/castle/result/ on Drive. Nothing to do: the result is on your Drive.")


@pytest.mark.parametrize("kind,reason,expected", [
    ("failed", "the job failed: DepthMap_1 ended in ERROR in 2 sessions",
     ["26:14:03 from its first start, 3 restarts.", "To do: look at logs/DepthMap_1 and fix the input.",
      "A restart will not mend it"]),
    ("blocked", "the job is blocked: no GPU — Runtime > Change runtime type > GPU",
     ["Runtime > Change runtime type > GPU", "keepalive waits and carries on"]),
    ("needs_human", "CAPTCHA: waiting for you in the browser", ["Only you can do it"]),
    ("giving_up", "7 restarts in 3 h without progress", ["3 restarts", "then run 'keepalive run --job castle' again"]),
    ("source_stalled", "heartbeat source stalled", ["Google Drive for desktop runs and syncs"]),
])
def test_every_notice_names_the_job_what_happened_and_what_to_do(kind, reason, expected):
    title, message = notify.compose(kind, reason, FACTS)
    assert title.startswith("castle: ") and message.startswith(f"Job castle: {reason}")
    for part in expected:
        assert part in message, part
    assert notify.NEXT_STEPS[kind].format(run="keepalive run --job castle") in message


def test_recovered_says_a_new_session_computes_with_the_restarts_and_what_drive_holds():
    title, message = notify.compose("recovered", "heartbeat fresh", {**FACTS, "chunks_durable_on_pc": 42})
    assert title == "castle: Colab job recovered" and "heartbeat fresh" not in message
    assert message.startswith("Job castle: a new session computes after the runtime was lost (restarts so far: 3; "
                              "42 chunks saved on Drive).")


def test_every_kind_has_a_next_step():
    assert set(notify.NEXT_STEPS) == set(Notice)


NO_DBUS = r"""
from keepalive import notify
notifier = notify.Notifier("desktop", 0, None, job="castle")
notifier.send("failed", "the job failed: DepthMap_1 ended in ERROR")
notifier.send("done", "the job is done")
notifier.close()
"""


def test_without_a_dbus_session_no_traceback_one_warning_then_the_bell():
    env = {k: v for k, v in os.environ.items() if k not in ("DBUS_SESSION_BUS_ADDRESS", "DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.run([sys.executable, "-c", NO_DBUS], capture_output=True, text=True, timeout=120, env=env,
                          cwd=Path(__file__).parent.parent)
    assert proc.returncode == 0 and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert "Traceback" not in proc.stderr and len(lines) == 3, proc.stderr
    assert lines[0].startswith("keepalive: warning: desktop notifications do not work here (")
    assert lines[0].endswith("); the terminal bell rings instead")
    assert lines[1].startswith("\acastle: Colab job failed: ") and lines[2].startswith("\acastle: Colab job done: ")


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
        notifier = notify.Notifier("record", 600, journal, clock=clock, urls=[endpoint.url], job="castle")
        assert notifier.send("needs_human", "CAPTCHA: waiting for you in the browser")
        clock.now = 10
        assert not notifier.send("needs_human", "CAPTCHA again")
        assert notifier.send("done", "the job is done", FACTS)
        assert [(m["title"], m["message"]) for m in endpoint.received] == [
            ("castle: Colab needs you in the browser", "Job castle: CAPTCHA: waiting for you in the browser. "
             + notify.NEXT_STEPS["needs_human"]), notify.compose("done", "the job is done", FACTS)]
        assert "26:14:03" in endpoint.received[1]["message"] and "3 restarts" in endpoint.received[1]["message"]
        assert [e["ok"] for e in journal.events() if e["event"] == "phone_notification"] == [True, True]
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


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_lines_told_while_the_live_panel_shows_go_above_it_not_through_it():
    from keepalive.view import LiveView

    terminal = FakeTerminal()
    notifier = notify.Notifier("desktop", 0, None, desktop=FakeDesktop(False), job="castle")  # made before the panel
    with LiveView(stream=terminal) as view:
        view.update({"job": "castle", "phase": "computing"})
        notifier.send("failed", "the job failed: DepthMap_1 ended in ERROR")  # rich routes stderr above its panel
    shown = terminal.getvalue()
    assert "desktop notifications do not work here" in shown and "castle: Colab job failed" in shown
