"""The fake ``colab`` commands. Lines, streams and exit codes are those of google-colab-cli 0.7.5.

Kept faithful where keepalive depends on it: ``exec`` exits 0 whatever the code does; a busy kernel
makes a second ``exec`` wait (a lock held by the running cell); a lost login starts the interactive
sign-in, which ends in "Aborted." with stdin closed; ``drivemount`` reads "Press Enter" from the
terminal, and a ``drive.mount`` left waiting keeps the kernel busy until ``restart-kernel``; an unknown
``--gpu`` becomes an A100; ``new`` over an existing name leaves an orphan;
"not found" answers of ``stop`` exit 0 and need no login, while unassigning needs it; ``sessions`` prunes
the local entries whose runtime the server's answer omits; ``exec`` notices a lost runtime only when its
``--timeout`` runs out; a failed download names the runtime's URL with its proxy token. Each behaviour
cites the 0.7.5 source (``colab_cli/...:line``) it copies. Not modelled: kernel state across ``exec``
calls (each runs in a fresh Python), notebooks, images, the proxy token's expiry.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import filelock

from keepalive_sim.fake_colab.backend import ROOT_ENV, VERSION, VM_ENV, Server
from keepalive_sim.runtime import fake_gpu_bin

GPUS = ("T4", "L4", "G4", "H100", "A100")
CONFIG = Path.home() / ".config" / "colab-cli"
SESSIONS = CONFIG / "sessions.json"
AUTH_URL = ("https://accounts.google.com/o/oauth2/auth?response_type=code&client_id=764086051850-fake"
            ".apps.googleusercontent.com&redirect_uri=https%3A%2F%2Fsdk.cloud.google.com%2F"
            "applicationdefaultauthcode.html&state=FAKESTATE123&prompt=consent&access_type=offline")
CONSENT_URL = "https://accounts.google.com/signin/oauth/consent?authuser=0&part=FAKEPART&as=FAKEAS"
REFUSED = ("[colab] Allocation refused (precondition failed). This can mean too many active sessions, or a temporary "
           "usage or capacity limit for the requested runtime. Run `colab stop` to free up a session, wait and retry, "
           "or try a different accelerator.")


def say(*lines: str, err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    for line in lines:
        print(line, file=stream, flush=True)


def traceback_exit(exc_line: str) -> int:
    say("Traceback (most recent call last):", '  File "colab_cli/client.py", line 88, in _issue_request',
        exc_line, err=True)
    return 1


def _lock() -> filelock.ReadWriteLock:
    """The CLI's lock on its state file (state.py:48-86): shared reads, exclusive writes."""
    SESSIONS.parent.mkdir(parents=True, exist_ok=True)
    return filelock.ReadWriteLock(f"{SESSIONS}.lock", is_singleton=False)


def local_sessions() -> dict:
    try:
        with _lock().read_lock():
            data = json.loads(SESSIONS.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}  # an unparseable file reads as empty


def save_sessions(data: dict) -> None:
    with _lock().write_lock():
        with open(SESSIONS, "a+", encoding="utf-8") as handle:  # in place, as state.py:65-70 writes it
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps(data, indent=2))


def log_debug(message: str) -> None:
    """The CLI's never-rotated debug log, with tokens in it, as the real one has."""
    CONFIG.mkdir(parents=True, exist_ok=True)
    with open(CONFIG / "colab.log", "a", encoding="utf-8") as handle:
        handle.write(f"DEBUG {time.strftime('%H:%M:%S')} {message}\n")


def update_banner() -> None:
    try:
        settings = json.loads((CONFIG / "settings.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        settings = {}
    if settings.get("enable_update_check", True):
        say(f"[colab] A new version of Colab CLI is available: 0.8.0 (current: {VERSION})")


def sign_in() -> int:
    """The interactive copy-paste authorization that starts when the saved login cannot be refreshed."""
    say("To authorize colab-cli, visit this URL in any browser:", "", f"  {AUTH_URL}", "",
        "After approving, Google will display an authorization code.", "", err=True)
    sys.stdout.write("Enter the authorization code: ")
    sys.stdout.flush()
    try:
        input()
    except EOFError:
        say("", "Aborted.", err=True)
        return 1
    say("", "Aborted.", err=True)  # the fake cannot check a code
    return 1


def request_error(method: str, url: str, reason: str) -> int:
    """An HTTP error of the CLI's own client, uncaught: traceback, exit 1 (client.py ``ColabRequestError``)."""
    return traceback_exit(f"colab_cli.client.ColabRequestError: Failed to issue request {method} {url}: {reason}")


def resolve(server: Server, name: str, contact_vm: bool = True) -> tuple[str | None, int]:
    """The endpoint of session ``name``, or (None, exit code) after printing what the CLI prints."""
    entry = local_sessions().get(name)
    if entry is None:
        say(f"[colab] Session '{name}' not found.")
        return None, 1
    endpoint = entry["endpoint"]
    if endpoint not in server.read()["assignments"]:
        data = local_sessions()
        data.pop(name, None)
        save_sessions(data)
        say(f"[colab] Session '{name}' appears to be lost (404/401). Cleaning up.")
        return None, 1
    if contact_vm and server.take_fault("transport_errors"):
        return None, traceback_exit("colab_cli.client.ColabRequestError: Failed to issue request GET "
                                    f"https://colab.research.google.com/tun/m/{endpoint}/api/kernels: Bad Gateway")
    log_debug(f"GET /tun/m/{endpoint} headers={{'Authorization': 'Bearer {entry['token']}'}}")
    return endpoint, 0


def cmd_version(server, args) -> int:
    say(f"Version: {server.read()['faults'].get('version', VERSION)}")
    return 0


def cmd_new(server, args) -> int:
    if args.gpu is not None and args.gpu not in GPUS:
        accelerator = "A100"  # the CLI's silent fallback
    else:
        accelerator = args.gpu or "NONE"
    name = args.session or "colab"
    say(f"[colab] Creating session '{name}'...")
    server.record_ask(accelerator)
    if server.take_fault("refuse_new"):
        say(REFUSED, err=True)
        return 1
    endpoint = server.allocate(accelerator)
    data = local_sessions()
    data[name] = {"name": name, "token": server.issue_token(endpoint), "endpoint": endpoint,
                  "url": f"https://colab.research.google.com/tun/m/{endpoint}", "accelerator": accelerator,
                  "variant": "GPU" if accelerator != "NONE" else "DEFAULT", "machine_shape": "STANDARD",
                  "running": None}
    save_sessions(data)
    say("[colab] Session READY.")
    return 0


def _hardware_line(name: str, endpoint: str, accelerator: str) -> str:
    hardware = "CPU" if accelerator == "NONE" else accelerator
    variant = "DEFAULT" if accelerator == "NONE" else "GPU"
    return f"[{name}] {endpoint} | Hardware: {hardware} | Shape: Standard | Variant: {variant}"


def cmd_sessions(server, args) -> int:
    assignments = dict(server.read()["assignments"])
    data = local_sessions()
    if data and server.take_fault("sessions_omit"):
        # The server's list leaves out a live runtime once. 0.7.5 trusts it: sync_sessions prunes every local
        # entry whose endpoint is not listed (common.py:137-146), so the runtime comes back as "[?]" after.
        for entry in data.values():
            assignments.pop(entry.get("endpoint"), None)
    stale = [name for name, entry in data.items() if entry.get("endpoint") not in assignments]
    for name, entry in data.items():  # common.py:141-143: each listed entry gets the runtime's proxy token and URL
        if name not in stale:
            entry.update(token=assignments[entry["endpoint"]].get("token", ""),
                         url=f"https://colab.research.google.com/tun/m/{entry['endpoint']}")
    for name in stale:
        data.pop(name)
    if data or stale:
        save_sessions(data)
    if stale:
        say(f"[colab] Pruned {len(stale)} stale local session(s).")
    if not assignments:
        say("[colab] No active sessions found on server.")
        return 0
    names = {entry["endpoint"]: name for name, entry in data.items()}
    for endpoint, info in assignments.items():
        say(_hardware_line(names.get(endpoint, "?"), endpoint, info["accelerator"]))
    return 0


def cmd_stop(server, args) -> int:
    name = args.session
    entry = local_sessions().get(name)
    if entry is None:  # commands/session.py:333-336: a name it does not know is "not found.", exit 0, no login used
        say(f"[colab] Session '{name}' not found.")
        return 0
    say(f"[colab] Stopping session '{name}'...")  # commands/session.py:338
    if server.read()["faults"].get("login_expired"):
        return sign_in()  # commands/session.py:345: state.client.unassign needs the Google login
    unassign = f"https://colab.research.google.com/tun/m/unassign/{entry['endpoint']}"
    if server.take_fault("stop_errors"):  # client.py:266-272 (unassign) raising on a 502: entry kept
        return request_error("GET", unassign, "Bad Gateway")
    if not server.release(entry["endpoint"]):  # a runtime Colab took back: unassign answers 404, entry kept
        return request_error("GET", unassign, "Not Found")
    data = local_sessions()
    data.pop(name, None)
    save_sessions(data)
    say("[colab] Session terminated.")  # commands/session.py:346-348
    return 0


def cmd_exec(server, args) -> int:
    endpoint, code = resolve(server, args.session)
    if endpoint is None:
        return code
    if args.file:
        source = Path(args.file).read_text(encoding="utf-8")
    elif sys.stdin.isatty():
        say("[colab] Error: No input provided. Pipe code or provide a file.")
        return 1
    else:
        source = sys.stdin.read()
    if not source.strip():
        return 0
    root = server.vm_root(endpoint)
    env = dict(os.environ, **{VM_ENV: endpoint})
    env.pop(ROOT_ENV, None)
    if server.read()["assignments"][endpoint]["accelerator"] != "NONE":
        env["PATH"] = f"{fake_gpu_bin(root / 'gpu-bin')}{os.pathsep}{env.get('PATH', '')}"
    with busy_kernel(root) as kernel:
        started = time.time()
        cell = subprocess.Popen([sys.executable, "-c", source], cwd=root / "content", env=env,
                                stdin=subprocess.DEVNULL, pass_fds=(kernel,))  # the kernel stays busy if we die
        (root / "kernel.pid").write_text(str(cell.pid))
        cell.wait()  # its exit code is not the CLI's: exec exits 0
        server.record_cell(endpoint, Path(args.file).name if args.file else "<stdin>", started, time.time())
    if endpoint not in server.read()["assignments"]:
        # jupyter_kernel_client's wsclient.py:1073 notices the dropped connection only when the reply does not
        # come within --timeout (commands/execution.py:258-262 passes it); run: 97 s with --timeout 100
        time.sleep(max(0.0, started + args.timeout - time.time()))
        return traceback_exit("RuntimeError: Connection was lost.")
    return 0


@contextmanager
def busy_kernel(root: Path):
    """The VM's one kernel: a cell waits here until the running one ends (or the kernel is restarted)."""
    with open(root / "kernel.lock", "w") as kernel:
        fcntl.flock(kernel, fcntl.LOCK_EX)
        (root / "kernel.pid").write_text(str(os.getpid()))
        yield kernel.fileno()


def cmd_restart_kernel(server, args) -> int:
    """Silent, exit 0: the running cell is gone; processes started in a session of their own live on."""
    endpoint, code = resolve(server, args.session)
    if endpoint is None:
        return code
    try:
        os.kill(int((server.vm_root(endpoint) / "kernel.pid").read_text()), signal.SIGKILL)
    except (OSError, ValueError):
        pass
    return 0


def _remote(server, endpoint: str, path: str) -> Path:
    return server.vm_root(endpoint) / path.lstrip("/")


def cmd_download(server, args) -> int:
    endpoint, code = resolve(server, args.session)
    if endpoint is None:
        return code
    source = _remote(server, endpoint, args.remote_path)
    if server.take_fault("download_errors"):
        # commands/files.py:130-132 prints the exception of contents.py:45 (raise_for_status), whose text is the
        # request's URL with the runtime-proxy token as a query parameter (contents.py:36); run offline, 0.7.5
        token = local_sessions()[args.session]["token"]
        say(f"[colab] Download failed: 502 Server Error: Bad Gateway for url: https://colab.research.google.com/tun/m/"
            f"{endpoint}/api/contents/{args.remote_path.strip('/')}?authuser=0&colab-runtime-proxy-token={token}"
            "&content=1")
        return 1
    if not source.is_file():
        say(f"[colab] Download failed: File or directory not found: /{args.remote_path.lstrip('/')}")
        return 1
    shutil.copyfile(source, args.local_path)
    say(f"[colab] Downloaded '/{args.remote_path.lstrip('/')}' to '{args.local_path}'")
    return 0


def cmd_upload(server, args) -> int:
    if not Path(args.local_path).is_file():
        say(f"[colab] Local file '{args.local_path}' not found.")
        return 1
    endpoint, code = resolve(server, args.session)
    if endpoint is None:
        return code
    target = _remote(server, endpoint, args.remote_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.local_path, target)
    say(f"[colab] Uploaded '{args.local_path}' to '{args.remote_path}'")
    return 0


def _press_enter() -> None:
    sys.stdout.write("Press Enter after you have granted access... ")
    sys.stdout.flush()
    try:
        with open("/dev/tty") as tty:
            tty.readline()
    except OSError:
        sys.stdin.readline()


def cmd_drivemount(server, args) -> int:
    endpoint, code = resolve(server, args.session)
    if endpoint is None:
        return code
    with busy_kernel(server.vm_root(endpoint)):  # drive.mount runs as a cell
        say("[colab] Intercepted Drive Auth Request. Connecting to https://colab.research.google.com...")
        if server.read()["faults"].get("drive_consent") == "required":
            say("[colab] REQUIRED: Google Drive Authorization needed.", "Please visit:", "", CONSENT_URL, "")
            _press_enter()
        say("[colab] Authorizing VM...")
        if server.read()["faults"].get("drive_consent") == "required":
            say("[colab] Error propagating: 401 Unauthorized")
            while True:  # no reply reaches the kernel: drive.mount keeps waiting, the kernel stays busy
                time.sleep(3600)
        say("[colab] Credentials propagated. Resuming mount...")
    mount = server.vm_root(endpoint) / args.path.lstrip("/")
    mount.mkdir(parents=True, exist_ok=True)
    if not (mount / "MyDrive").exists():
        (mount / "MyDrive").symlink_to(server.read()["drive"], target_is_directory=True)
    say(f"Mounted at {args.path}")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="colab")
    top.add_argument("--auth", choices=["oauth2", "adc"], default="oauth2")
    top.add_argument("--config")
    sub = top.add_subparsers(dest="command", required=True)
    sub.add_parser("version")
    new = sub.add_parser("new")
    new.add_argument("-s", "--session")
    new.add_argument("--gpu")
    new.add_argument("--tpu")
    new.add_argument("--high-mem", action="store_true")
    sub.add_parser("sessions")
    for name in ("stop", "exec", "download", "upload", "drivemount", "restart-kernel"):
        command = sub.add_parser(name)
        command.add_argument("-s", "--session", required=name == "stop")
    sub.choices["exec"].add_argument("-f", "--file")
    sub.choices["exec"].add_argument("--timeout", type=float, default=30.0)
    sub.choices["download"].add_argument("remote_path")
    sub.choices["download"].add_argument("local_path")
    sub.choices["upload"].add_argument("local_path")
    sub.choices["upload"].add_argument("remote_path")
    sub.choices["drivemount"].add_argument("path", nargs="?", default="/content/drive")
    return top


# The commands that reach Colab's API with the Google login (state.client, common.py:70-77): new (session.py:141),
# sessions (common.py:132), drivemount (automation.py: credentials propagation). exec, download, upload and
# restart-kernel talk to the runtime with its proxy token only (common.py:96-112 asks the API only near the
# token's expiry); stop decides for itself (cmd_stop).
NEEDS_LOGIN = ("new", "sessions", "drivemount")
COMMANDS = {"version": cmd_version, "new": cmd_new, "sessions": cmd_sessions, "stop": cmd_stop, "exec": cmd_exec,
            "download": cmd_download, "upload": cmd_upload, "drivemount": cmd_drivemount,
            "restart-kernel": cmd_restart_kernel}


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    server = Server(os.environ[ROOT_ENV])
    server.record_call(args.command, getattr(args, "session", None) is not None)
    if args.command != "version":
        update_banner()
        if server.read()["faults"].get("login_expired") and args.command in NEEDS_LOGIN:
            return sign_in()
    if args.command in ("exec", "download", "upload", "drivemount", "restart-kernel") and not args.session:
        sessions = list(local_sessions())
        if len(sessions) != 1:
            say("[colab] Error: No active sessions found. Create one with 'colab new'." if not sessions else
                f"[colab] Error: Multiple active sessions found. Specify one with -s: {', '.join(sessions)}")
            return 1
        args.session = sessions[0]
    return COMMANDS[args.command](server, args)
