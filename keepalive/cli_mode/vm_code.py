"""The Python that keepalive runs on the VM with ``colab exec``, and the marker lines it prints back.

``colab exec`` exits 0 even when the code raises, so every snippet ends by printing one marker line
(``@@KEEPALIVE_<KIND>@@{json}``) that the daemon parses; no marker means the code did not get there.
``colab exec`` starts in ``/content``: the snippets find every ``/content/...`` path relative to the
folder they start in, so the same code runs on a Colab VM and on the simulator's VM folder.
"""

from __future__ import annotations

import json
import re
import textwrap

ZIP = "/content/colab_side.zip"  # where colab_side is uploaded: the same zip the notebook embeds
STATE = "/content/keepalive-job.json"  # pid and log of the detached job
LOG = "/content/keepalive-job.log"
MOUNT = "/content/drive"
_MARKER = re.compile(r"^@@KEEPALIVE_(?P<kind>[A-Z]+)@@(?P<body>\{.*\})\s*$")

_COMMON = textwrap.dedent('''
    import json, os, subprocess, sys, time
    CONTENT = os.getcwd()  # colab exec starts in /content

    def here(path):
        return os.path.join(CONTENT, os.path.relpath(path, "/content")) if path.startswith("/content/") else path

    def mark(kind, **fields):
        print("@@KEEPALIVE_" + kind + "@@" + json.dumps(fields), flush=True)

    def read_state():
        try:
            with open(here(STATE)) as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return {}

    def alive(pid):
        """Running, not a zombie (a child of the kernel stays one until it is waited for)."""
        try:
            with open("/proc/%d/stat" % pid) as handle:
                return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError, TypeError):
            return False
    ''')


def _snippet(body: str, **constants) -> str:
    values = "".join(f"{name} = {value!r}\n" for name, value in constants.items())
    return values + _COMMON + textwrap.dedent(body)


def launch(args: list[str]) -> str:
    """Start ``python -m colab_side run ARGS`` in a session of its own, unless it already runs."""
    return _snippet('''
        state = read_state()
        if state.get("pid") and alive(state["pid"]):
            mark("JOB", pid=state["pid"], started=False, since=state.get("since"))
        else:
            since = time.time()  # the VM's clock, as the job's heartbeat uses it
            env = dict(os.environ)
            env["PYTHONPATH"] = here(ZIP) + os.pathsep + env.get("PYTHONPATH", "")
            with open(here(LOG), "ab") as log:
                job = subprocess.Popen([sys.executable, "-m", "colab_side", "run"] + [here(a) for a in ARGS],
                                       start_new_session=True, stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, cwd=CONTENT, env=env)
            globals()["_KEEPALIVE_JOB"] = job
            with open(here(STATE), "w") as handle:
                json.dump({"pid": job.pid, "since": since}, handle)
            mark("JOB", pid=job.pid, started=True, since=since)
        ''', ZIP=ZIP, STATE=STATE, LOG=LOG, ARGS=list(args))


def wait(poll_seconds: float, cell_seconds: float) -> str:
    """Stay busy while the job runs, streaming its log, for at most ``cell_seconds``.

    Ends with END (the job ended; its exit code when this kernel started it) or PAUSE (the job still
    runs): a cell of bounded length lets ``colab exec`` run with a ``--timeout`` it never reaches (past
    it, the 0.7.5 client busy-polls at 100 % CPU) and the daemon attaches the next one at once.
    """
    return _snippet('''
        pid, since = read_state().get("pid"), read_state().get("since")
        mark("ATTACHED", pid=pid, alive=bool(pid and alive(pid)), since=since)
        position = os.path.getsize(here(LOG)) if os.path.exists(here(LOG)) else 0
        until = time.monotonic() + CELL

        def follow():
            global position
            try:
                with open(here(LOG), "rb") as handle:
                    handle.seek(position)
                    chunk = handle.read()
            except OSError:
                return
            position += len(chunk)
            if chunk:
                sys.stdout.write(chunk.decode("utf-8", "replace"))
                sys.stdout.flush()

        while pid and alive(pid) and time.monotonic() < until:
            follow()
            time.sleep(POLL)
        follow()
        if pid and alive(pid):
            mark("PAUSE", pid=pid)
        else:
            job = globals().get("_KEEPALIVE_JOB")
            code = job.wait() if job is not None and job.pid == pid else None
            mark("END", pid=pid, code=code)
        ''', STATE=STATE, LOG=LOG, POLL=poll_seconds, CELL=cell_seconds)


def mount_check() -> str:
    """Whether Drive is mounted: a MyDrive folder under the mount point."""
    return _snippet('''
        mark("MOUNT", mounted=os.path.isdir(os.path.join(here(MOUNT), "MyDrive")))
        ''', STATE=STATE, MOUNT=MOUNT)


def markers(text: str) -> list[tuple[str, dict]]:
    """Pure: every marker line in ``text``, in order, as (kind, fields)."""
    found = []
    for line in text.splitlines():
        match = _MARKER.match(line.strip())
        if match:
            try:
                found.append((match["kind"], json.loads(match["body"])))
            except ValueError:
                continue
    return found


def marker(text: str, kind: str) -> dict | None:
    """The last marker of ``kind`` in ``text``."""
    hits = [fields for k, fields in markers(text) if k == kind]
    return hits[-1] if hits else None


def job_args(images: str, job: str, meshroom: str, extra: list[str]) -> list[str]:
    """The ``colab_side run`` arguments: Drive is mounted by ``colab drivemount``, not by the job."""
    return ["--images", images, "--job", job, "--meshroom", meshroom, "--drive-root", f"{MOUNT}/MyDrive",
            "--local-dir", "/content/keepalive-work", *extra]

