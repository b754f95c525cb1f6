"""A Colab stand-in on 127.0.0.1: the notebook page, its runtime, Google's pop-up, and faults.

To Selenium the page looks like Colab (the elements, shadow roots, texts and dialogs of
``shared/facts/colab-ui.md``); behind it, Run all really runs the notebook's job in a subprocess
on a local "Drive" folder. Two servers, two origins: the notebook's, and an "accounts" origin for
the Drive consent pop-up and the sign-in page, as Google's are separate.

Every change of the simulated Colab goes through ``ColabSimulator._do`` (one place for
transitions); the page polls ``/api/state`` and renders what it is told. Faults are injected from
Python (``sim.kill()``) or over HTTP (``POST {origin}/_sim/kill``).
"""

from __future__ import annotations

import json
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, quote, urlparse

from keepalive_sim.runtime import Runtime

# Dialog texts, exactly as Colab shows them (facts/colab-ui.md).
DIALOGS = {
    "disconnected": ("Runtime disconnected",
                     "Your runtime has been disconnected due to inactivity or reaching its maximum duration.",
                     "Reconnect", "Close"),
    "authorship": ("Warning: This notebook was not authored by Google",
                   "This notebook was authored by a user. It may request access to your data stored with Google.",
                   "Run anyway", "Cancel"),
    "drive_consent": ("Permit this notebook to access your Google Drive files?",
                      "This notebook is requesting access to your Google Drive files.",
                      "Connect to Google Drive", "No thanks"),
    "gpu_limit": ("Cannot connect to GPU backend",
                  "You cannot currently connect to a GPU due to usage limits in Colab.",
                  "Connect without GPU", "Close"),
}
ACCOUNT_EMAIL = "user@example.com"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class ColabSimulator:
    def __init__(self, command: list[str], env: dict | None = None, workdir=None, notebook_id: str = "demo",
                 gpu: bool = True, authored_by_user: bool = False, connect_seconds: float = 0.8,
                 lifetime_seconds: float | None = None):
        import os
        import tempfile

        self.command = list(command)
        self.env = dict(os.environ if env is None else env)
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="colab-sim-"))
        self.notebook_id = notebook_id
        self.gpu = gpu
        self.authored_by_user = authored_by_user
        self.connect_seconds = connect_seconds
        self.lifetime_seconds = lifetime_seconds
        self._lock = threading.RLock()
        self.s = {
            "runtime": "none",  # none, connecting, connected, disconnected
            "dialog": None,  # one of DIALOGS, or None
            "popup_open": False,
            "captcha": False,
            "signed_out": False,
            "authorship_accepted": False,
            "consent_granted": False,
            "pending_run": False,
            "cell_error": "",
            "gpu_refused_until": 0.0,
            "without_gpu_pressed": 0,
            "run_all_count": 0,
            "connect_count": 0,
            "start_count": 0,
            "kill_count": 0,
            "last_kill": "",
            "runtime_gpu": False,
        }
        self.runtime: Runtime | None = None
        self._servers: list[_Server] = []

    # --- servers ------------------------------------------------------------------------------

    def start(self) -> "ColabSimulator":
        self._servers = [_Server(("127.0.0.1", 0), _handler(self, page)) for page in (_notebook_routes, _accounts_routes)]
        for server in self._servers:
            threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        with self._lock:
            if self.runtime and self.runtime.alive:
                self.runtime.kill()
        for server in self._servers:
            server.shutdown()
            server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._servers[0].server_address[1]}"

    @property
    def accounts_origin(self) -> str:
        return f"http://127.0.0.1:{self._servers[1].server_address[1]}"

    @property
    def notebook_url(self) -> str:
        return f"{self.origin}/drive/{self.notebook_id}"

    def page_overrides(self) -> dict:
        """The ``[page]`` config that points keepalive's page model at this simulator's Google pages."""
        host = self.accounts_origin.split("://", 1)[1]
        return {"popup": {"hosts": [host]}, "signin": {"hosts": [host]}}

    # --- what the page and the tests see ----------------------------------------------------------

    def state(self) -> dict:
        with self._lock:
            state = dict(self.s)
            running = bool(self.runtime and self.runtime.alive)
            state.update(
                running=running,
                pid=self.runtime.proc.pid if running else None,
                exit_code=self.runtime.exit_code if self.runtime else None,
                output=list(self.runtime.tail) if self.runtime else [],
            )
        return state

    def page_state(self) -> dict:
        state = self.state()
        state["dialog_texts"] = DIALOGS.get(state["dialog"]) if state["dialog"] else None
        state["accounts_origin"] = self.accounts_origin
        return state

    # --- transitions (the one place) --------------------------------------------------------------

    def _do(self, event: str, **args) -> None:
        with self._lock:
            getattr(self, f"_on_{event}")(**args)

    def _on_connect(self):
        s = self.s
        if s["runtime"] in ("connecting", "connected"):
            return
        s["connect_count"] += 1
        if time.time() < s["gpu_refused_until"]:
            s["dialog"] = "gpu_limit"
            s["pending_run"] = False
            return
        self._begin_connecting(gpu=self.gpu)

    def _begin_connecting(self, gpu: bool):
        self.s.update(runtime="connecting", dialog=None, runtime_gpu=gpu, consent_granted=False)
        timer = threading.Timer(self.connect_seconds, self._do, args=("connected",))
        timer.daemon = True
        timer.start()

    def _on_connected(self):
        if self.s["runtime"] != "connecting":
            return
        self.s["runtime"] = "connected"
        if self.s["pending_run"]:
            self._on_run_all(count=False)

    def _on_run_all(self, count: bool = True):
        s = self.s
        if count:
            s["run_all_count"] += 1
        if s["runtime"] != "connected":
            s["pending_run"] = True
            self._on_connect()
            return
        s["pending_run"] = False
        if self.runtime and self.runtime.alive:
            return  # cells already running: Colab queues nothing new
        if not (self.authored_by_user or s["authorship_accepted"]):
            s["dialog"] = "authorship"
            return
        self._run_cells()

    def _run_cells(self):
        s = self.s
        s["cell_error"] = ""
        if not s["consent_granted"]:
            s["dialog"] = "drive_consent"
            return
        s["start_count"] += 1
        self.runtime = Runtime(self.command, self.env, self.workdir / "content", gpu=s["runtime_gpu"])
        if self.lifetime_seconds:
            timer = threading.Timer(self.lifetime_seconds, self._do, args=("lifetime_end",),
                                    kwargs={"runtime": self.runtime})
            timer.daemon = True
            timer.start()

    def _on_dialog(self, name: str, button: str):
        s = self.s
        if s["dialog"] != name:
            return
        s["dialog"] = None
        primary = button == DIALOGS[name][2]
        if name == "disconnected" and primary:
            self._on_connect()
        elif name == "authorship":
            if primary:
                s["authorship_accepted"] = True
                self._run_cells()
        elif name == "drive_consent":
            if primary:
                s["popup_open"] = True
            else:
                s["cell_error"] = "MessageError: Error: credential propagation was unsuccessful"
        elif name == "gpu_limit" and primary:
            s["without_gpu_pressed"] += 1
            self._begin_connecting(gpu=False)

    def _on_grant(self, select_all: bool):
        s = self.s
        s["popup_open"] = False
        if not select_all:
            s["cell_error"] = "MessageError: Error: credential propagation was unsuccessful"
            return
        s["consent_granted"] = True
        if s["runtime"] == "connected":
            self._run_cells()

    def _on_lifetime_end(self, runtime: Runtime):
        if runtime is self.runtime and runtime.alive:  # an earlier runtime's timer must not kill this one
            self._on_kill(reason="lifetime")

    def _on_popup_closed(self):
        self.s["popup_open"] = False

    def _on_kill(self, reason: str):
        s = self.s
        if self.runtime and self.runtime.alive:
            self.runtime.kill()
        s.update(runtime="disconnected", dialog="disconnected", consent_granted=False,
                 authorship_accepted=False, pending_run=False, last_kill=reason)
        s["kill_count"] += 1

    # --- fault injection (Python API; also POST /_sim/<name>) --------------------------------------

    def kill(self, reason: str = "disconnect") -> None:
        self._do("kill", reason=reason)

    def refuse_gpu(self, seconds: float) -> None:
        with self._lock:
            self.s["gpu_refused_until"] = time.time() + float(seconds)

    def show_captcha(self) -> None:
        with self._lock:
            self.s["captcha"] = True

    def solve_captcha(self) -> None:
        with self._lock:
            self.s["captcha"] = False

    def sign_out(self) -> None:
        with self._lock:
            self.s["signed_out"] = True

    def sign_in(self) -> None:
        with self._lock:
            self.s["signed_out"] = False


# --- HTTP --------------------------------------------------------------------------------------------

def _static(name: str) -> str:
    return resources.files("keepalive_sim").joinpath("static", name).read_text(encoding="utf-8")


def _notebook_routes(sim: ColabSimulator, handler, method: str, path: str, query: dict, body: dict):
    if method == "GET" and path.startswith("/drive/"):
        if sim.state()["signed_out"]:
            target = f"{sim.accounts_origin}/ServiceLogin?continue={quote(sim.notebook_url, safe='')}"
            return handler.redirect(target)
        return handler.send(_static("notebook.html"), "text/html")
    if method == "GET" and path == "/api/state":
        return handler.send_json(sim.page_state())
    if method == "GET" and path == "/_sim/state":
        return handler.send_json(sim.state())
    if method == "POST" and path.startswith("/api/"):
        action = path[len("/api/"):]
        if action == "dialog":
            sim._do("dialog", name=body.get("name", ""), button=body.get("button", ""))
        elif action in ("connect", "run_all", "popup_closed"):
            sim._do(action)
        else:
            return handler.send_json({"error": f"unknown action {action}"}, HTTPStatus.NOT_FOUND)
        return handler.send_json(sim.page_state())
    if method == "POST" and path.startswith("/_sim/"):
        name = path[len("/_sim/"):]
        faults = {"kill": lambda: sim.kill(body.get("reason", "disconnect")),
                  "refuse_gpu": lambda: sim.refuse_gpu(body.get("seconds", 60)),
                  "show_captcha": sim.show_captcha, "solve_captcha": sim.solve_captcha,
                  "sign_out": sim.sign_out, "sign_in": sim.sign_in}
        if name not in faults:
            return handler.send_json({"error": f"unknown fault {name}"}, HTTPStatus.NOT_FOUND)
        faults[name]()
        return handler.send_json(sim.state())
    return handler.send_json({"error": "not found"}, HTTPStatus.NOT_FOUND)


def _accounts_routes(sim: ColabSimulator, handler, method: str, path: str, query: dict, body: dict):
    pages = {"/o/oauth2/auth": "accounts_chooser.html", "/signin/oauth/consent": "accounts_consent.html",
             "/ServiceLogin": "accounts_signin.html"}
    if method == "GET" and path in pages:
        return handler.send(_static(pages[path]).replace("__EMAIL__", ACCOUNT_EMAIL), "text/html")
    if method == "POST" and path == "/grant":
        sim._do("grant", select_all=bool(body.get("select_all")))
        return handler.send_json({"ok": True})
    return handler.send_json({"error": "not found"}, HTTPStatus.NOT_FOUND)


def _handler(sim: ColabSimulator, routes):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output quiet
            pass

        def _route(self, method: str):
            url = urlparse(self.path)
            body = {}
            if method == "POST":
                if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
                    # only the simulator's own pages post, with JSON; a form or no-cors post from another
                    # page on this machine must not drive it
                    return self.send_json({"error": "POST needs Content-Type: application/json"},
                                          HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = {}
            routes(sim, self, method, url.path, parse_qs(url.query), body)

        def do_GET(self):
            self._route("GET")

        def do_POST(self):
            self._route("POST")

        def send(self, text: str, kind: str, status=HTTPStatus.OK):
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", f"{kind}; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def send_json(self, data, status=HTTPStatus.OK):
            self.send(json.dumps(data), "application/json", status)

        def redirect(self, target: str):
            self.send_response(HTTPStatus.FOUND)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler
