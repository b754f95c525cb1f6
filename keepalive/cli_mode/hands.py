"""The CLI hands: what the browser hands do, done with google-colab-cli instead of a page.

What the CLI says (a ``CliView``) is mapped by the pure ``page_state`` onto the page states the
supervisor already knows, so the same rules decide:

====================================================  ===================  ==========================
CLI fact                                              page state           recovery step (act)
====================================================  ===================  ==========================
no runtime held, none listed                          DISCONNECTED         RECONNECT: ``colab new``
our runtime gone: "appears to be lost", or evidence   DISCONNECTED         RECONNECT: ``colab new``
(absent from ``sessions``, a lost ``exec``) held
over ``dead_after`` rounds
the same evidence, fewer rounds                       UNKNOWN              RELOAD: look again
``colab new`` refused (412) or accelerator rejected   GPU_LIMIT            DISMISS_GPU_LIMIT, back off
the interactive sign-in started ("Aborted.")          SIGNED_OUT           a human signs in
a session, Drive not mounted on the VM                DRIVE_CONSENT        CONNECT_DRIVE: drivemount
a session, Drive mounted, no job                      IDLE                 RUN_ALL: upload + launch
the attached ``exec`` waits on the job                RUNNING              (nothing)
``new``/``drivemount`` under way                      CONNECTING           (nothing)
the CLI answered nothing usable (transport, timeout)  UNKNOWN              RELOAD: look again
====================================================  ===================  ==========================

Long calls (``new``, ``drivemount``) run in a thread of their own, so the loop keeps polling. A
``drive.mount`` left waiting (Enter pressed before the human allowed) holds the kernel: it is ended with
``colab restart-kernel`` before the mount is checked. At the job's end the runtime is released for sure
(``release.py``): confirmed by ``colab sessions``, retried, waiting for the login if it is gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from keepalive import notebook
from keepalive.cli_mode import vm_code
from keepalive.cli_mode.adopt import readopt
from keepalive.cli_mode.drivemount import drivemount
from keepalive.cli_mode.release import Release, Step, still_assigned
from keepalive.cli_mode.runner import (INSTALL_HINT, Answer, ColabCli, Outcome, listed_endpoints, load_answers,
                                      parse_sessions,
                                      parse_version, scrub, stop_group, switch_off_update_check, version_problem)
from keepalive.cli_mode.settings import CliSettingsError, check
from keepalive.cli_mode.watch import CliHeartbeatWatch, mirror_folder
from keepalive.config import ConfigError
from keepalive.hands.page import Observation
from keepalive.states import Action, PageState

LOGIN_HINT = "run 'colab sessions' in a terminal and sign in again"


def _interrupt(signum, frame):
    raise KeyboardInterrupt


VM_LOG_LIMIT = 20 << 20  # bytes of the streamed job log kept in one file (the job keeps its own on Drive)


def rotate(path: Path, limit: int = VM_LOG_LIMIT) -> None:
    """Keep a multi-day stream bounded: past ``limit``, the log becomes ``<name>.1`` (replacing the older one)."""
    try:
        if path.stat().st_size > limit:
            os.replace(path, path.with_name(path.name + ".1"))
    except OSError:
        pass


class Waiter:
    """The attached ``colab exec`` that waits on the job (keeping the kernel busy) and streams its log.

    One cell lasts at most ``cell_seconds`` and ends with PAUSE while the job runs; the next one is
    started at once, so the kernel is idle only for the time a ``colab exec`` takes to start.
    """

    def __init__(self, cli: ColabCli, session: str, script: Path, log_path: Path, cell_seconds: float,
                 on_job=lambda since: None):
        # --timeout beyond the cell's own end: past it the 0.7.5 client would busy-poll at 100 % CPU
        self.args = ["exec", "-s", session, "-f", str(script), "--timeout", f"{cell_seconds + 300:.0f}"]
        self.cell_seconds = cell_seconds
        self.cli = cli
        self.on_job = on_job  # told the VM-clock start of the job each time an attached cell finds it running
        self.log_path = log_path
        self.attached: dict | None = None
        self.ended: dict | None = None
        self.outcome: Outcome | None = None
        self.cells = 0
        self._text: list[str] = []
        self._lock = threading.Lock()
        self._stopped = False
        self._next_cell()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _next_cell(self) -> bool:
        with self._lock:
            if self._stopped:
                return False
            self.proc = self.cli.start(*self.args, stdout=subprocess.PIPE)
            self.deadline = time.monotonic() + self.cell_seconds + 600  # our own limit on this call
            self.cells += 1
            return True

    def _read(self) -> None:
        while True:
            rotate(self.log_path)  # at each cell: the stream is bounded however long the job runs
            paused = False
            with open(self.log_path, "a", encoding="utf-8") as log:
                for line in self.proc.stdout:
                    found = vm_code.markers(line)
                    if not found:
                        self._text = (self._text + [line])[-20:]
                        log.write(scrub(line))
                        log.flush()
                    elif found[0][0] == "ATTACHED":
                        self.attached = found[0][1]
                        if self.attached.get("alive"):
                            self.on_job(self.attached.get("since"))
                    elif found[0][0] == "END":
                        self.ended = found[0][1]
                    else:
                        paused = found[0][0] == "PAUSE"
            code = self.proc.wait()
            if not (paused and code == 0 and self._next_cell()):
                break
        self.outcome = self.cli.outcome(Answer("exec", code, "".join(self._text)))

    @property
    def running(self) -> bool:
        if self.outcome is None and time.monotonic() > self.deadline:
            self.stop()
        return self.outcome is None

    def stop(self) -> None:
        """End the local call; the cell on the VM goes on until the job ends (it keeps the runtime busy)."""
        with self._lock:
            self._stopped = True
            if self.proc.poll() is None:
                stop_group(self.proc)
        self._thread.join(timeout=5)
        if self.outcome is None:
            self.outcome = Outcome.TIMED_OUT


@dataclass(frozen=True)
class Evidence:
    """Rounds in a row in which our runtime looked gone, and whether that now counts as gone."""

    rounds: int = 0
    gone: bool = False


def weigh(evidence: Evidence, listed: bool, lost_exec: bool, said_lost: bool, dead_after: int) -> Evidence:
    """Pure: one round's evidence of death, debounced. Absent from one ``colab sessions`` answer or one lost
    ``exec`` is not a death; it is once such evidence held ``dead_after`` rounds in a row, or at once when the
    CLI itself says the session is lost (404/401 from the runtime)."""
    if said_lost:
        return Evidence(evidence.rounds + 1, True)
    if listed and not lost_exec:
        return Evidence()
    rounds = evidence.rounds + 1
    return Evidence(rounds, rounds >= dead_after)


@dataclass(frozen=True)
class CliView:
    """What the CLI said this round, as far as it was asked (None: not asked)."""

    long_call: str = ""  # `colab new` or `drivemount` under way
    refusal: str | None = None  # what a refused `colab new` said
    sessions: Outcome | None = None  # how `colab sessions` went
    listed: bool = False  # our session is on the server
    doubt: str = ""  # our runtime looks gone, not yet for long enough to count
    gone: bool = False  # our runtime counts as gone (or we hold none)
    job_running: bool | None = None  # the attached exec waits on the job
    mounted: bool | None = None  # Drive seen mounted on the VM


def page_state(view: CliView) -> tuple[PageState, str]:
    """Pure: the page state (and why) that the supervisor's rules read from what the CLI said."""
    if view.long_call:
        return PageState.CONNECTING, view.long_call
    if view.refusal:
        return PageState.GPU_LIMIT, view.refusal
    if view.sessions is Outcome.LOGIN_REQUIRED:
        return PageState.SIGNED_OUT, f"signed out: {LOGIN_HINT}"
    if view.sessions is not Outcome.OK:
        return PageState.UNKNOWN, f"colab sessions: {view.sessions.value if view.sessions else 'not asked'}"
    if view.gone:
        return PageState.DISCONNECTED, "no runtime" if not view.listed else "the runtime is lost"
    if view.doubt:
        return PageState.UNKNOWN, view.doubt
    if not view.listed:
        return PageState.DISCONNECTED, "no runtime"
    if view.job_running:
        return PageState.RUNNING, "the job runs"
    if not view.mounted:
        return PageState.DRIVE_CONSENT, "Drive is not mounted on the runtime"
    return PageState.IDLE, "runtime ready, no job"


class CliHands:
    # what the one LOGIN_REQUIRED notification tells the human to do
    human_hints = {"LOGIN_REQUIRED": f"the colab CLI is signed out: {LOGIN_HINT}"}

    def __init__(self, cfg, notify=None, env: dict | None = None):
        try:
            self.settings = check(cfg.cli, cfg.job)
        except CliSettingsError as exc:
            raise ConfigError(str(exc)) from None
        self.home = Path(env["HOME"]) if env and env.get("HOME") else Path.home()
        self.cli = ColabCli(self.settings.path, self.settings.call_seconds, load_answers(self.settings.answers), env)
        self.session = self.settings.session_name(cfg.job)
        self.job = cfg.job
        self.mirror = mirror_folder(cfg)
        self.notify = notify or (lambda kind, message: None)
        self.folder = Path(cfg.dirs.state) / cfg.job / "cli"
        self.vm_log = self.folder / "vm.log"
        self.job_args = vm_code.job_args(self.settings.images, cfg.job, self.settings.meshroom,
                                         list(self.settings.job_args))
        self.waiter: Waiter | None = None
        self.task: threading.Thread | None = None
        self.task_name = ""
        self.refusal: str | None = None  # what `colab new` said when it was refused
        self.endpoint: str | None = None
        self.mounted = False
        self.consent_told: str | None = None  # the runtime for which the human was sent the consent URL
        self.attach_needed = True  # a job may already run on a runtime we find (daemon restarted)
        self.dead_after = cfg.supervisor.dead_after
        self.evidence = Evidence()
        self.launched = None  # the VM's clock when this run started the job, or saw it running (watch.py)
        self.release: Release | None = None
        self.condemned: str | None = None  # a runtime still listed under our name but counted as gone

    # --- start and stop -----------------------------------------------------------------------------

    def start(self) -> None:
        """Check the CLI (installed, supported version), switch its update check off, write the VM code."""
        if self.cli.resolved() is None:
            raise ConfigError(f"the colab CLI ({self.settings.path}) is not found: {INSTALL_HINT}")
        switch_off_update_check(self.home)
        problem = version_problem(parse_version(self.cli.call("version").out), self.cli.answers)
        if problem:
            raise ConfigError(problem)
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "launch.py").write_text(vm_code.launch(self.job_args), encoding="utf-8")
        waiting = vm_code.wait(self.settings.waiter_poll_seconds, self.settings.waiter_cell_seconds)
        (self.folder / "wait.py").write_text(waiting, encoding="utf-8")
        (self.folder / "mount.py").write_text(vm_code.mount_check(), encoding="utf-8")
        (self.folder / "colab_side.zip").write_bytes(notebook.colab_side_zip())

    def close(self) -> None:
        """Stop watching; a release under way is waited for (Ctrl+C: leave it, saying what is still assigned)."""
        if self.waiter is not None:
            self.waiter.stop()
        if self.release is not None and self.release.running:
            self._wait_for_release()
        self.cli.stop_all()

    def _wait_for_release(self) -> None:
        previous = signal.getsignal(signal.SIGTERM) if threading.current_thread() is threading.main_thread() else None
        try:
            if previous is not None:
                signal.signal(signal.SIGTERM, _interrupt)  # a service stop, like Ctrl+C: say what is left
            print(f"keepalive: releasing the runtime of session {self.session} before ending; "
                  "Ctrl+C leaves it assigned", file=sys.stderr, flush=True)
            while self.release.running:
                self.release.join(0.5)
        except KeyboardInterrupt:
            self.release.cancel()
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        if self.release.outcome is None:
            print(f"keepalive: {still_assigned(self.session, self.release.endpoint)}", file=sys.stderr, flush=True)

    def release_runtime(self) -> bool:
        """Give the runtime back (at done, failed or blocked), so no quota is burnt: True once ``colab sessions``
        confirms it; else False and the release goes on in the background (``close`` waits for it)."""
        if self.waiter is not None:
            self.waiter.stop()
        if self.release is not None and self.release.running:
            return False
        self.release = Release(self.cli, self.session, self.endpoint, self.notify, self.settings.release_backoff_start,
                               self.settings.release_backoff_cap, LOGIN_HINT, self.home)
        step = self.release.attempt()
        if step in (Step.RELEASED, Step.ORPHAN):
            self.release.finish(step)
            return step is Step.RELEASED
        self.release.in_background()
        return False

    def heartbeat_watch(self, grace_seconds: float) -> CliHeartbeatWatch:
        """The heartbeat of this job, fetched from this runtime each poll."""
        return CliHeartbeatWatch(self.cli, self.session, self.mirror, self.job, grace_seconds,
                                 own_since=lambda: self.launched)

    def reopen(self) -> None:
        """Nothing to reload without a page: the next observe looks at the CLI afresh."""

    # --- eyes ---------------------------------------------------------------------------------------

    def observe(self) -> Observation:
        """Ask the CLI only as much as the answer needs (a mount check only when no job runs)."""
        view = CliView(long_call=self.task_name if self.task is not None and self.task.is_alive() else "",
                       refusal=self.refusal)
        if view.long_call or view.refusal:
            return self._seen(view)
        answer = self.cli.call("sessions")
        outcome = self.cli.outcome(answer)
        view = replace(view, sessions=outcome)
        if outcome is not Outcome.OK:
            return self._seen(view)
        ours = parse_sessions(answer.out).get(self.session)
        if ours is None and self.endpoint in listed_endpoints(answer.out) \
                and readopt(self.home, self.session, self.endpoint):  # the CLI pruned it on an answer that left it out
            ours = {"endpoint": self.endpoint, "hardware": ""}
        view = replace(view, listed=ours is not None)
        if self.endpoint is None:  # nothing held: whatever is listed under our name is ours
            if ours is None or ours["endpoint"] == self.condemned:
                return self._seen(replace(view, gone=True))
            self.endpoint, self.mounted, self.evidence = ours["endpoint"], False, Evidence()
        elif ours is not None and ours["endpoint"] != self.endpoint:
            self.endpoint, self.mounted, self.evidence = ours["endpoint"], False, Evidence()
        ended = self.waiter.outcome if self.waiter is not None else None
        self.evidence = weigh(self.evidence, ours is not None, ended is Outcome.GONE, ended is Outcome.LOST,
                              self.dead_after)
        if self.evidence.gone:
            self.condemned = self.endpoint if ours is not None else None
            self._forget_runtime()
            return self._seen(replace(view, gone=True))
        if self.evidence.rounds:
            why = "not listed by 'colab sessions'" if ours is None else "its attached exec lost the connection"
            if self.waiter is not None and self.waiter.outcome is not None:
                self.waiter, self.attach_needed = None, True  # attached again once it is listed
            return self._seen(replace(view, doubt=f"the runtime looks gone ({why}; {self.evidence.rounds} of "
                                                  f"{self.dead_after} rounds): not taken for gone yet"))
        if self.waiter is None and self.attach_needed or self.waiter is not None and self.waiter.running is False \
                and self.waiter.ended is None:
            self._attach()
        view = replace(view, job_running=self.waiter is not None and self.waiter.running)
        if not view.job_running and not self.mounted:
            self.mounted = self._mount_confirmed()
        return self._seen(replace(view, mounted=self.mounted))

    def _seen(self, view: CliView) -> Observation:
        state, detail = page_state(view)
        return Observation(state, {"session": view.listed, "job_waiter": bool(view.job_running),
                                   "drive": bool(view.mounted)}, detail)

    def _forget_runtime(self) -> None:
        if self.waiter is not None:
            self.waiter.stop()
        self.waiter, self.endpoint, self.mounted, self.attach_needed = None, None, False, False
        self.evidence = Evidence()

    def _mount_confirmed(self) -> bool:
        answer = self.cli.call("exec", "-s", self.session, "-f", str(self.folder / "mount.py"))
        found = vm_code.marker(answer.out, "MOUNT")
        return bool(found and found.get("mounted"))

    def _job_seen(self, since) -> None:
        """This run started the job, or found it running: its final word, from then on, is this run's."""
        if isinstance(since, (int, float)) and not isinstance(since, bool):
            self.launched = since if self.launched is None else min(self.launched, since)

    def _attach(self) -> None:
        if self.waiter is not None:
            self.waiter.stop()
        self.waiter = Waiter(self.cli, self.session, self.folder / "wait.py", self.vm_log,
                             self.settings.waiter_cell_seconds, self._job_seen)
        self.attach_needed = False

    # --- hands --------------------------------------------------------------------------------------

    def act(self, action: Action) -> bool:
        if action is Action.RECONNECT:
            return self._in_background("allocating a runtime", self._allocate)
        if action is Action.CONNECT_DRIVE:
            return self._in_background("mounting Drive", self._mount)
        if action is Action.RUN_ALL:
            return self._launch()
        if action is Action.DISMISS_GPU_LIMIT:
            self.refusal = None
            return True
        if action is Action.RELOAD:  # look again: an attached exec that ended is attached anew
            if self.waiter is not None and self.waiter.outcome is not None:
                self.waiter, self.attach_needed = None, True
            return True
        return False  # a page-only step (authorship warning, Drive pop-up): nothing to do here

    def _in_background(self, name: str, work) -> bool:
        if self.task is not None and self.task.is_alive():
            return False
        self.task_name = name
        self.task = threading.Thread(target=work, daemon=True)
        self.task.start()
        return True

    def _allocate(self) -> None:
        answer = self.cli.call("sessions")
        if self.cli.outcome(answer) is not Outcome.OK:
            return  # not knowing what is assigned, assign nothing: looked at again next round
        ours = parse_sessions(answer.out).get(self.session)
        if ours is not None and ours["endpoint"] != self.condemned:
            return  # listed again, alive: never stopped or overwritten by `colab new` (that leaves an orphan)
        if ours is not None and self.cli.outcome(self.cli.call("stop", "-s", self.session)) is not Outcome.OK:
            return  # counted as gone while listed, and not stopped: `colab new` over its name would leave it billed
        args = ["new", "-s", self.session] + (["--gpu", self.settings.gpu] if self.settings.gpu else [])
        answer = self.cli.call(*args, timeout=self.settings.allocate_seconds)
        outcome = self.cli.outcome(answer)
        if outcome in (Outcome.REFUSED, Outcome.REJECTED):
            self.refusal = scrub(answer.err.strip().splitlines()[-1] if answer.err.strip() else outcome.value)
        self.endpoint, self.mounted, self.attach_needed = None, False, False

    def _mount(self) -> None:
        def tell(url: str) -> None:
            if self.consent_told == self.endpoint:
                return  # once per runtime: a retry prints a new URL for the same consent
            self.consent_told = self.endpoint
            self.notify("needs_human", f"Google Drive needs your consent once: open {url} (same Google account); "
                        f"keepalive presses Enter for the colab CLI in {self.settings.consent_wait_seconds:.0f} s")

        answer = drivemount(self.cli.resolved() or self.settings.path, self.session, self.cli.env,
                            self.settings.drivemount_seconds, self.settings.consent_wait_seconds, tell,
                            self.cli.answers)
        if answer.code is None or self.cli.answers["answers"]["drive_error"] in answer.text:
            # drive.mount was left waiting for a reply that never comes: it holds the kernel
            self.cli.call("restart-kernel", "-s", self.session)
        self.mounted = self._mount_confirmed()

    def _launch(self) -> bool:
        upload = self.cli.call("upload", "-s", self.session, str(self.folder / "colab_side.zip"), vm_code.ZIP)
        if self.cli.outcome(upload) is not Outcome.OK:
            return False
        answer = self.cli.call("exec", "-s", self.session, "-f", str(self.folder / "launch.py"))
        with open(self.vm_log, "a", encoding="utf-8") as log:
            log.write(scrub(answer.text))
        job = vm_code.marker(answer.out, "JOB")
        if job is None:
            return False
        self._job_seen(job.get("since"))
        self._attach()
        return True
