"""A Colab stand-in on 127.0.0.1: the notebook page, its runtime, Google's pop-up, and faults.

To Selenium the page looks like Colab (the elements, shadow roots, texts and dialogs described in
``docs/colab-page.md``), in one of several builds (``variant``): ``legacy`` (light-DOM dialogs, plain
labels, a running cell told by its run button's title and class), ``mwc-2023`` (MWC dialogs: an
inline host whose surface is fixed inside its shadow root, the title an ``<h2>`` there; "Connect T4"
labels; the run button's stop symbol) and ``m3-2025`` (Material 3 ``md-dialog`` with
``:host{display:contents}``, ``md-text-button``, RAM/Disk bars without text, a tooltip trigger) and
``tooltip-2025`` (a running cell told only by tooltips: the tooltip trigger's ``message`` containing
"Interrupt execution" and the connect button's ``tooltiptext`` "Waiting to finish the current execution.";
its label says "Connected"). ``language="ja"`` draws Colab's Japanese UI (``<html lang="ja">``).
Colab can be made unreachable (``go_offline``: both origins stop listening; a loaded page that cannot
reach its server shows "Unable to connect to the runtime") and can disconnect a runtime for "disallowed
code" (``kill("disallowed")``).
Behind the page, Run all really runs the notebook's job in a subprocess on a local "Drive" folder. Two servers, two origins: the notebook's, and an "accounts" origin for
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

# Dialog texts, exactly as Colab shows them (docs/colab-page.md).
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
    # Runtime > Disconnect and delete runtime asks first; this wording is the simulator's guess (unconfirmed).
    "delete_runtime": ("Disconnect and delete runtime",
                       "Are you sure you want to disconnect and delete this runtime?", "Yes", "Cancel"),
    # the same title as an idle disconnect, for a reason only the human may answer (docs/colab-page.md)
    "disallowed": ("Runtime disconnected",
                   "Your runtime has been disconnected due to executing code that is disallowed in our free of charge "
                   "tier. If you believe this message is in error, file an appeal. To connect to a new runtime, click "
                   "the connect button below.", "Connect", "Close"),
}
# Colab's Japanese UI as the simulator draws it: the texts of keepalive/hands/colab_page.ja.toml (sourced ones and
# best knowledge alike), so that the test proves the product drives a Japanese page with its own data.
DIALOGS_JA = {
    "disconnected": ("ランタイムの接続が解除されました",
                     "非アクティブ状態が続いたか、最大時間に達したため、ランタイムの接続が解除されました。", "再接続", "閉じる"),
    "authorship": ("警告: このノートブックは Google が作成したものではありません",
                   "このノートブックはユーザーが作成したものです。Google に保存されているデータへのアクセスをリクエストする場合があります。",
                   "このまま実行", "キャンセル"),
    "drive_consent": ("このノートブックに Google ドライブのファイルへのアクセスを許可しますか？",
                      "このノートブックは Google ドライブのファイルへのアクセスをリクエストしています。",
                      "Google ドライブに接続", "スキップ"),
    "gpu_limit": ("GPU バックエンドに接続できません", "Colab の使用量の上限に達したため、現在 GPU に接続できません。",
                  "GPU なしで接続", "閉じる"),
    "delete_runtime": ("ランタイムの接続を解除して削除", "このランタイムの接続を解除して削除しますか？", "はい", "キャンセル"),
    "disallowed": ("ランタイムの接続が解除されました",
                   "Google の無料枠で許可されていないコードを実行したため、ランタイムの接続が解除されました。", "接続", "閉じる"),
}
BACKEND_FAILURES_JA = {
    "no_gpu": ("バックエンドを割り当てられませんでした", "使用可能な GPU バックエンドがありません。アクセラレータなしのランタイムを使用しますか？",
               "接続", "キャンセル"),
    "no_backends": ("バックエンドを割り当てられませんでした", "使用可能なバックエンドがありません。しばらくしてからもう一度お試しください。",
                    "閉じる", ""),
    "location": ("バックエンドを割り当てられませんでした", "バックエンドに接続できませんでした。", "閉じる", ""),
}
# What the notebook page writes besides dialogs, per language.
UI = {
    "en": {"connect": "Connect", "reconnect": "Reconnect", "connected": "Connected", "runtime": "Runtime",
           "run_all": "Run all", "interrupt": "Interrupt execution", "delete_runtime": "Disconnect and delete runtime",
           "run_cell_tip": "Run cell (Ctrl+Enter)", "interrupt_tip": "Interrupt execution (Ctrl+M I)",
           "new_runtime_tip": "Connect to a new runtime", "click_tip": "Click to connect",
           "connected_tip": "Connected to Python 3 Google Compute Engine backend",
           "waiting_tip": "Waiting to finish the current execution.\nPython 3 Google Compute Engine backend",
           "unreachable": "Unable to connect to the runtime", "close": "Close",
           "Allocating": "Allocating", "Initializing": "Initializing", "Connecting": "Connecting"},
    "ja": {"connect": "接続", "reconnect": "再接続", "connected": "接続済み", "runtime": "ランタイム",
           "run_all": "すべてのセルを実行", "interrupt": "実行を中断", "delete_runtime": "ランタイムの接続を解除して削除",
           "run_cell_tip": "セルを実行（Ctrl+Enter）", "interrupt_tip": "実行を中断（Ctrl+M I）",
           "new_runtime_tip": "新しいランタイムに接続", "click_tip": "クリックして接続",
           "connected_tip": "Python 3 Google Compute Engine バックエンドに接続しました",
           "waiting_tip": "現在の実行が終了するのを待っています。\nPython 3 Google Compute Engine バックエンド",
           "unreachable": "ランタイムに接続できません", "close": "閉じる",
           "Allocating": "割り当て中", "Initializing": "初期化中", "Connecting": "接続中"},
}
# Google's pop-up pages in Japanese (their English texts replaced).
ACCOUNTS_JA = {'lang="en"': 'lang="ja"', "Sign in - Google Accounts": "ログイン - Google アカウント",
               "Choose an account": "アカウントの選択", "Use another account": "別のアカウントを使用",
               "Select all": "すべて選択", "Continue": "続行", "Cancel": "キャンセル", ">Sign in<": ">ログイン<"}
# "Failed to assign a backend" and its bodies (googlecolab/colabtools #155, #2750, #5861; docs/colab-page.md). The primary label of the
# no-GPU variant is not documented; "Connect" (a runtime without accelerator) is this simulator's guess.
BACKEND_FAILURES = {
    "no_gpu": ("Failed to assign a backend",
               "No backend with GPU available. Would you like to use a runtime with no accelerator?",
               "Connect", "Cancel"),
    "no_backends": ("Failed to assign a backend", "Sorry, no backends available. Please try again later.",
                    "Close", ""),
    "location": ("Failed to assign a backend",
                 "Sorry, we were unable to connect to your backend. This may be due to a restriction in your location.",
                 "Close", ""),
}
ACCOUNT_EMAIL = "user@example.com"  # the notebook's own account, shown signed in on the notebook page
OTHER_ACCOUNTS = ("work@example.org", "family@example.net")

# What each simulated Colab build shows (see the module docstring).
VARIANTS = {
    "legacy": {"dialogs": "light", "accelerator_label": False, "running": ["title", "class"],
               "connecting": ["Connecting"], "usage": "text", "chevron": False},
    "mwc-2023": {"dialogs": "mwc", "accelerator_label": True, "running": ["stop_symbol"],
                 "connecting": ["Allocating", "Connecting"], "usage": "text", "chevron": True},
    "m3-2025": {"dialogs": "m3", "accelerator_label": True, "running": ["stop_symbol", "tooltip"],
                "connecting": ["Allocating", "Initializing"], "usage": "bars", "chevron": True},
    "tooltip-2025": {"dialogs": "m3", "accelerator_label": True, "running": ["tooltip", "tooltiptext"],
                     "connecting": ["Connecting"], "usage": "word", "chevron": True},
}
LANGUAGES = ("en", "ja")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class ColabSimulator:
    def __init__(self, command: list[str], env: dict | None = None, workdir=None, notebook_id: str = "demo",
                 gpu: bool = True, authored_by_user: bool = False, connect_seconds: float = 0.8,
                 lifetime_seconds: float | None = None, variant: str = "m3-2025", accounts=None,
                 leave_alert: bool = False, idle_timeout_seconds: float | None = None, accelerator: str = "T4",
                 language: str = "en"):
        """``accounts``: the pop-up's account rows in order (the notebook's own is not first by default);
        ``leave_alert``: a native "Leave site?" confirm on the notebook when the pop-up closes;
        ``idle_timeout_seconds``: the runtime is disconnected after this long without a click or key in the page.
        """
        import os
        import tempfile

        if variant not in VARIANTS:
            raise ValueError(f"unknown simulator variant {variant!r}: one of {', '.join(VARIANTS)}")
        if language not in LANGUAGES:
            raise ValueError(f"unknown simulator language {language!r}: one of {', '.join(LANGUAGES)}")
        self.variant = variant
        self.language = language
        self.offline = False
        self._ports: list[int] = [0, 0]
        self.accounts = list(accounts or (OTHER_ACCOUNTS[0], ACCOUNT_EMAIL, OTHER_ACCOUNTS[1]))
        self.leave_alert = leave_alert
        self.idle_timeout_seconds = idle_timeout_seconds
        self.accelerator = accelerator
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
            "backend_refused_until": 0.0,
            "backend_failure": "no_gpu",  # one of BACKEND_FAILURES
            "without_gpu_pressed": 0,
            "connect_started": 0.0,
            "last_interaction": time.time(),
            "grant_email": "",
            "alerts_accepted": 0,
            "alerts_dismissed": 0,
            "run_all_count": 0,
            "connect_count": 0,
            "start_count": 0,
            "kill_count": 0,
            "runtime_deleted": 0,
            "last_kill": "",
            "runtime_gpu": False,
        }
        self.runtime: Runtime | None = None
        self._servers: list[_Server] = []

    # --- servers ------------------------------------------------------------------------------

    def start(self) -> "ColabSimulator":
        self._listen()
        return self

    def _listen(self) -> None:
        """Both servers, on the ports they had before (new ones the first time)."""
        self._servers = [_Server(("127.0.0.1", port), _handler(self, page))
                         for port, page in zip(self._ports, (_notebook_routes, _accounts_routes))]
        self._ports = [server.server_address[1] for server in self._servers]
        for server in self._servers:
            threading.Thread(target=server.serve_forever, daemon=True).start()

    def _close_servers(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    def go_offline(self) -> None:
        """Colab unreachable, as from an offline PC: both origins refuse connections; the runtime goes on."""
        with self._lock:
            if self.offline:
                return
            self.offline = True
            self._close_servers()

    def go_online(self) -> None:
        with self._lock:
            if not self.offline:
                return
            self._listen()
            self.offline = False

    def offline_for(self, seconds: float) -> None:
        """Unreachable for ``seconds``, then back (what ``POST /_sim/offline`` does)."""
        self.go_offline()
        timer = threading.Timer(float(seconds), self.go_online)
        timer.daemon = True
        timer.start()

    def stop(self) -> None:
        with self._lock:
            if self.runtime and self.runtime.alive:
                self.runtime.kill()
            if not self.offline:
                self._close_servers()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._ports[0]}"

    @property
    def accounts_origin(self) -> str:
        return f"http://127.0.0.1:{self._ports[1]}"

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
        state["dialog_texts"] = self._dialog_texts(state["dialog"]) if state["dialog"] else None
        state["accounts_origin"] = self.accounts_origin
        traits = VARIANTS[self.variant]
        phases = traits["connecting"]
        elapsed = time.time() - state["connect_started"]
        phase = phases[min(len(phases) - 1, int(elapsed / self.connect_seconds * len(phases)))]
        state["connecting_label"] = UI[self.language][phase]
        gpu_label = f" {self.accelerator}" if traits["accelerator_label"] and self.gpu else ""
        state["connect_suffix"] = gpu_label
        state["leave_alert"] = self.leave_alert
        return state

    def _dialog_texts(self, name: str) -> tuple:
        """(title, body, primary button, secondary button) of dialog ``name`` as shown now."""
        japanese = self.language == "ja"
        if name == "backend_unavailable":
            return (BACKEND_FAILURES_JA if japanese else BACKEND_FAILURES)[self.s["backend_failure"]]
        return (DIALOGS_JA if japanese else DIALOGS)[name]

    # --- transitions (the one place) --------------------------------------------------------------

    def _do(self, event: str, **args) -> None:
        with self._lock:
            getattr(self, f"_on_{event}")(**args)

    def _on_connect(self):
        s = self.s
        if s["runtime"] in ("connecting", "connected"):
            return
        s["connect_count"] += 1
        for until, dialog in (("gpu_refused_until", "gpu_limit"), ("backend_refused_until", "backend_unavailable")):
            if time.time() < s[until]:
                s["dialog"] = dialog
                s["pending_run"] = False
                return
        self._begin_connecting(gpu=self.gpu)

    def _begin_connecting(self, gpu: bool):
        self.s.update(runtime="connecting", dialog=None, runtime_gpu=gpu, consent_granted=False,
                      connect_started=time.time())
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
        primary = button == self._dialog_texts(name)[2]
        if name in ("disconnected", "disallowed") and primary:
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
        elif name == "delete_runtime" and primary:
            if self.runtime and self.runtime.alive:
                self.runtime.kill()
            s.update(runtime="none", consent_granted=False, authorship_accepted=False, pending_run=False)
            s["runtime_deleted"] += 1
        elif (name == "gpu_limit" or name == "backend_unavailable" and s["backend_failure"] == "no_gpu") and primary:
            s["without_gpu_pressed"] += 1
            self._begin_connecting(gpu=False)

    def _on_grant(self, select_all: bool, email: str):
        s = self.s
        s["popup_open"] = False
        s["grant_email"] = email
        if not select_all or email != ACCOUNT_EMAIL:  # Drive must be mounted by the notebook's own account
            s["cell_error"] = "MessageError: Error: credential propagation was unsuccessful"
            return
        s["consent_granted"] = True
        if s["runtime"] == "connected":
            self._run_cells()

    def _on_lifetime_end(self, runtime: Runtime):
        if runtime is self.runtime and runtime.alive:  # an earlier runtime's timer must not kill this one
            self._on_kill(reason="lifetime")

    def _on_delete_runtime(self):
        """Runtime > Disconnect and delete runtime: asks to confirm first."""
        if self.s["runtime"] in ("connecting", "connected"):
            self.s["dialog"] = "delete_runtime"

    def _on_popup_closed(self):
        self.s["popup_open"] = False

    def _on_alert(self, accepted: bool):
        self.s["alerts_accepted" if accepted else "alerts_dismissed"] += 1

    def _on_interaction(self):
        """A click or key in the page: the idle clock starts again."""
        stamp = self.s["last_interaction"] = time.time()
        if self.idle_timeout_seconds:
            timer = threading.Timer(self.idle_timeout_seconds, self._do, args=("idle_timeout",),
                                    kwargs={"stamp": stamp})
            timer.daemon = True
            timer.start()

    def _on_idle_timeout(self, stamp: float):
        if stamp == self.s["last_interaction"] and self.s["runtime"] == "connected":
            self._on_kill(reason="idle")

    def _on_kill(self, reason: str):
        """The runtime is lost; ``reason`` "disallowed" shows Colab's terms notice instead of the plain dialog."""
        s = self.s
        if self.runtime and self.runtime.alive:
            self.runtime.kill()
        dialog = "disallowed" if reason == "disallowed" else "disconnected"
        s.update(runtime="disconnected", dialog=dialog, consent_granted=False,
                 authorship_accepted=False, pending_run=False, last_kill=reason)
        s["kill_count"] += 1

    # --- fault injection (Python API; also POST /_sim/<name>) --------------------------------------

    def kill(self, reason: str = "disconnect") -> None:
        self._do("kill", reason=reason)

    def refuse_gpu(self, seconds: float) -> None:
        with self._lock:
            self.s["gpu_refused_until"] = time.time() + float(seconds)

    def fail_backend(self, seconds: float, kind: str = "no_gpu") -> None:
        """Connecting shows "Failed to assign a backend" (``kind``: one of BACKEND_FAILURES) for ``seconds``."""
        if kind not in BACKEND_FAILURES:
            raise ValueError(f"unknown backend failure {kind!r}: one of {', '.join(BACKEND_FAILURES)}")
        with self._lock:
            self.s.update(backend_refused_until=time.time() + float(seconds), backend_failure=kind)

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
        page = _static("notebook.html").replace("__VARIANT__", json.dumps(VARIANTS[sim.variant]))
        page = page.replace("__UI__", json.dumps(UI[sim.language], ensure_ascii=False))
        page = page.replace('<html lang="en">', f'<html lang="{sim.language}">')
        return handler.send(page.replace("__EMAIL__", ACCOUNT_EMAIL), "text/html")
    if method == "GET" and path == "/api/state":
        return handler.send_json(sim.page_state())
    if method == "GET" and path == "/_sim/state":
        return handler.send_json(sim.state())
    if method == "POST" and path.startswith("/api/"):
        action = path[len("/api/"):]
        if action == "dialog":
            sim._do("dialog", name=body.get("name", ""), button=body.get("button", ""))
        elif action == "alert":
            sim._do("alert", accepted=bool(body.get("accepted")))
        elif action in ("connect", "run_all", "popup_closed", "delete_runtime"):
            sim._do(action)
        else:
            return handler.send_json({"error": f"unknown action {action}"}, HTTPStatus.NOT_FOUND)
        if action != "popup_closed":
            sim._do("interaction")
        return handler.send_json(sim.page_state())
    if method == "POST" and path.startswith("/_sim/"):
        name = path[len("/_sim/"):]
        faults = {"kill": lambda: sim.kill(body.get("reason", "disconnect")),
                  "refuse_gpu": lambda: sim.refuse_gpu(body.get("seconds", 60)),
                  "fail_backend": lambda: sim.fail_backend(body.get("seconds", 60), body.get("kind", "no_gpu")),
                  "offline": lambda: sim.offline_for(body.get("seconds", 60)),
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
        email = (query.get("email") or [ACCOUNT_EMAIL])[0]
        rows = "\n".join(_ACCOUNT_ROW.format(email=quote(a, safe="@."), name=a.split("@")[0].title())
                         for a in sim.accounts)
        page = _static(pages[path]).replace("__ACCOUNTS__", rows).replace("__NOTEBOOK_EMAIL__", ACCOUNT_EMAIL)
        for english, japanese in (ACCOUNTS_JA.items() if sim.language == "ja" else ()):
            page = page.replace(english, japanese)
        return handler.send(page.replace("__EMAIL__", quote(email, safe="@.")), "text/html")
    if method == "POST" and path == "/grant":
        sim._do("grant", select_all=bool(body.get("select_all")), email=str(body.get("email", "")))
        return handler.send_json({"ok": True})
    return handler.send_json({"error": "not found"}, HTTPStatus.NOT_FOUND)


_ACCOUNT_ROW = ('<div class="account" role="link" tabindex="0" data-email="{email}" data-identifier="{email}">'
                '<div class="name">{name}</div><div class="email">{email}</div></div>')


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
