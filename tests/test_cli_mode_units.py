"""cli mode, the pure parts: what the colab CLI's answers mean, its version range, its settings file, scrubbing."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import given, strategies as st

from keepalive.cli_mode import vm_code
from keepalive.cli_mode.drivemount import consent_url
from keepalive.cli_mode.hands import CliView, Evidence, page_state, weigh
from keepalive.cli_mode.release import Step, next_step
from keepalive.cli_mode.runner import Answer, Outcome, classify, load_answers, parse_sessions, parse_version, \
    scrub, switch_off_update_check, version_problem
from keepalive.cli_mode.settings import RANGES, CliConfig, CliSettingsError, check
from keepalive.states import PageState

ANSWERS = load_answers()
# Lines as google-colab-cli 0.7.5 prints them (docs/colab-cli.md).
REFUSED = ("[colab] Allocation refused (precondition failed). This can mean too many active sessions, or a temporary "
           "usage or capacity limit for the requested runtime. Run `colab stop` to free up a session, wait and retry, "
           "or try a different accelerator.\n")
LOGIN = ("To authorize colab-cli, visit this URL in any browser:\n\n  https://accounts.google.com/o/oauth2/auth?"
         "response_type=code&state=abc\n\nAfter approving, Google will display an authorization code.\n\nAborted.\n")


@pytest.mark.parametrize("answer, outcome", [
    (Answer("new", 0, "[colab] Creating session 'job'...\n[colab] Session READY.\n"), Outcome.OK),
    (Answer("new", 1, "[colab] Creating session 'job'...\n", REFUSED), Outcome.REFUSED),
    (Answer("new", 1, "", "[colab] Backend rejected accelerator 'A100'. You may not have quota or entitlement for "
            "this accelerator on your account.\n"), Outcome.REJECTED),
    (Answer("sessions", 1, "Enter the authorization code: ", LOGIN), Outcome.LOGIN_REQUIRED),
    (Answer("sessions", 1, "", "No valid default credentials found. To authenticate, run:\n"), Outcome.LOGIN_REQUIRED),
    (Answer("exec", 1, "[colab] Session 'job' appears to be lost (404/401). Cleaning up.\n"), Outcome.LOST),
    (Answer("exec", 1, "[colab] Session 'job' not found.\n"), Outcome.GONE),
    (Answer("exec", 1, "", "Traceback (most recent call last):\nRuntimeError: Connection was lost.\n"), Outcome.GONE),
    (Answer("download", 1, "", "colab_cli.client.ColabRequestError: Failed to issue request GET https://x: Bad "
            "Gateway\n"), Outcome.FAILED),
    (Answer("download", 1, "[colab] Download failed: File or directory not found: /content/x\n"), Outcome.FAILED),
    (Answer("exec", None, "partial"), Outcome.TIMED_OUT),
    (Answer("exec", None, "", "not found: colab"), Outcome.MISSING),
])
def test_each_answer_of_the_cli_has_one_meaning(answer, outcome):
    assert classify(answer, ANSWERS) is outcome


def test_a_login_prompt_wins_over_an_exit_code_of_zero():
    assert classify(Answer("sessions", 0, "", LOGIN), ANSWERS) is Outcome.LOGIN_REQUIRED


def test_sessions_lines_give_names_and_endpoints_orphans_included():
    out = ("[colab] A new version of Colab CLI is available: 0.8.0 (current: 0.7.5)\n"
           "[colab] Pruned 1 stale local session(s).\n"
           "[job] gpu-t4-s-abc123 | Hardware: T4 | Shape: Standard | Variant: GPU\n"
           "[?] gpu-a100-s-orph99 | Hardware: A100 | Shape: Standard | Variant: GPU\n")
    assert parse_sessions(out) == {"job": {"endpoint": "gpu-t4-s-abc123", "hardware": "T4"},
                                   "?": {"endpoint": "gpu-a100-s-orph99", "hardware": "A100"}}
    assert parse_sessions("[colab] No active sessions found on server.\n") == {}


@pytest.mark.parametrize("out, problem", [
    ("Version: 0.7.5\n", False), ("Version: 0.7.9\n", False), ("Version: 0.6.0\n", True),
    ("Version: 0.8.0\n", True), ("Version: 1.0\n", True), ("garbage\n", True), ("", True),
])
def test_the_version_is_checked_against_the_supported_range(out, problem):
    said = version_problem(parse_version(out), ANSWERS)
    assert (said is not None) is problem
    if problem:
        assert "\n" not in said and ">= 0.7.5" in said


def test_the_update_check_is_switched_off_keeping_the_other_settings(tmp_path):
    path = tmp_path / ".config" / "colab-cli" / "settings.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"update_url": "https://example.test/json", "enable_update_check": True}))
    switch_off_update_check(tmp_path)
    assert json.loads(path.read_text()) == {"update_url": "https://example.test/json", "enable_update_check": False}


def test_the_update_check_is_switched_off_in_a_new_or_broken_settings_file(tmp_path):
    path = switch_off_update_check(tmp_path)
    assert json.loads(path.read_text()) == {"enable_update_check": False}
    path.write_text("{not json")
    switch_off_update_check(tmp_path)
    assert json.loads(path.read_text()) == {"enable_update_check": False}


TOKENISH = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-", min_size=8,
                   max_size=40)


@given(TOKENISH)
def test_scrub_removes_tokens_in_every_shape_the_cli_writes_them(secret):
    shapes = [f'{{"token": "{secret}"}}', f"Authorization: Bearer {secret}", f"https://x/auth?code={secret}&a=1",
              f"'x-goog-colab-token': '{secret}'", f"refresh_token={secret}", f"ya29.{secret}"]
    for text in shapes:
        assert secret not in scrub(text), text


def test_scrub_keeps_ordinary_lines():
    line = "[colab] Session READY. exit code: 1, chunks 3/7"
    assert scrub(line) == line


def test_markers_are_found_among_other_output():
    text = 'noise\n@@KEEPALIVE_JOB@@{"pid": 42, "started": true}\nTraceback...\n@@KEEPALIVE_END@@{bad json\n'
    assert vm_code.markers(text) == [("JOB", {"pid": 42, "started": True})]
    assert vm_code.marker(text, "JOB") == {"pid": 42, "started": True}
    assert vm_code.marker(text, "END") is None


def test_the_consent_url_is_read_from_what_drivemount_prints():
    text = ("[colab] REQUIRED: Google Drive Authorization needed.\r\nPlease visit:\r\n"
            "https://accounts.google.com/signin/oauth/consent?authuser=0&part=P\r\nPress Enter after you have")
    assert consent_url(text) == "https://accounts.google.com/signin/oauth/consent?authuser=0&part=P"
    assert consent_url("[colab] Authorizing VM...\n") is None
    # as 0.7.5 writes it (commands/automation.py:100), through a terminal (\r\n)
    real = "\r\n[colab] REQUIRED: Google Drive Authorization needed.\r\nPlease visit:\r\n\r\nhttps://x.test/c?a=1\r\n\r\n"
    assert consent_url(real) == "https://x.test/c?a=1"


@pytest.mark.parametrize("settings, wrong", [
    (CliConfig(images="/content/drive/MyDrive/castle"), None),
    (CliConfig(images="/content/drive/MyDrive/castle", gpu=""), None),
    (CliConfig(images="/content/drive/MyDrive/castle", gpu="t4"), "--gpu"),
    (CliConfig(images="MyDrive/castle"), "/content/drive/MyDrive"),
    (CliConfig(images="/content/drive/MyDrive/castle", session="../x"), "session name"),
])
def test_cli_settings_are_checked_with_one_line_saying_what_to_do(settings, wrong):
    if wrong is None:
        assert check(settings, "castle") is settings
    else:
        with pytest.raises(CliSettingsError, match=wrong.replace("-", r"\-")):
            check(settings, "castle")


def test_the_job_is_launched_with_drive_mounted_by_the_cli_not_by_the_job():
    args = vm_code.job_args("/content/drive/MyDrive/castle", "castle", "2023.3", ["--heartbeat-seconds", "10"])
    assert args[args.index("--drive-root") + 1] == "/content/drive/MyDrive"
    assert args[-2:] == ["--heartbeat-seconds", "10"]


def test_a_heartbeat_left_by_an_earlier_run_is_not_taken_for_the_jobs_state(tmp_path):
    from colab_side import heartbeat as hb
    from keepalive.cli_mode.runner import ColabCli
    from keepalive.cli_mode.watch import CliHeartbeatWatch, previous_run

    mirror = tmp_path / "drive"
    path = hb.heartbeat_path(mirror, "castle")
    path.parent.mkdir(parents=True)
    path.write_text(hb.Heartbeat(job="castle", session="old", seq=9, time="2026-12-01T00:00:00+00:00",
                                 phase="blocked", cause="DRIVE_FULL", reason="Drive is full").to_json())
    watch = CliHeartbeatWatch(ColabCli("false"), "keepalive-castle", mirror, "castle", 300.0)  # no runtime
    seen = watch.poll()
    assert seen.verdict == "missing" and seen.beat is None
    assert previous_run(mirror, "castle").reason == "Drive is full"  # kept for `keepalive status`, as the previous
    assert not path.exists()  # run's: this run's heartbeat is only what it fetches


def beat_of(session: str, phase: str, started: str) -> "hb.Heartbeat":
    from colab_side import heartbeat as hb

    return hb.Heartbeat(job="castle", session=session, seq=3, time=started, phase=phase, session_started=started)


@pytest.mark.parametrize("phase, session, alive, own_since, verdict", [
    ("computing", "old", frozenset(), None, True),  # a live beat always counts
    ("blocked", "old", frozenset(), None, False),  # an earlier run's last word, this run started nothing
    ("blocked", "old", frozenset(), 1_800_000_200.0, False),  # began before this run started the job
    ("blocked", "new", frozenset(), 1_800_000_000.0, True),  # began after: this run's verdict
    ("done", "old", frozenset({"old"}), None, True),  # seen running in this run, then done
    ("failed", "old", frozenset({"other"}), None, False),
])
def test_only_what_this_run_saw_counts_as_final(phase, session, alive, own_since, verdict):
    from keepalive.cli_mode.watch import counts

    assert counts(beat_of(session, phase, "2027-01-15T08:01:40+00:00"), alive, own_since) is verdict


def test_the_streamed_job_log_is_rotated_past_its_limit(tmp_path):
    from keepalive.cli_mode.hands import rotate

    log = tmp_path / "vm.log"
    log.write_text("x" * 100)
    rotate(log, limit=200)
    assert log.exists() and not (tmp_path / "vm.log.1").exists()
    rotate(log, limit=50)
    assert not log.exists() and (tmp_path / "vm.log.1").read_text() == "x" * 100
    rotate(tmp_path / "none.log")  # nothing there yet: nothing to do


VIEWS = st.builds(CliView, long_call=st.sampled_from(["", "allocating a runtime"]),
                  refusal=st.sampled_from([None, "[colab] Allocation refused (precondition failed). ..."]),
                  sessions=st.sampled_from([None, *Outcome]), listed=st.booleans(),
                  doubt=st.sampled_from(["", "the runtime looks gone (1 of 3 rounds)"]), gone=st.booleans(),
                  job_running=st.sampled_from([None, False, True]), mounted=st.sampled_from([None, False, True]))


@given(VIEWS)
def test_what_the_cli_says_maps_onto_the_page_states_the_supervisor_knows(view):
    state, detail = page_state(view)
    assert detail
    if state is PageState.IDLE:  # the one state answered with Run all: a live, mounted runtime without a job
        assert view.sessions is Outcome.OK and view.listed and not view.gone and not view.doubt
        assert not view.job_running and view.mounted and not view.long_call and not view.refusal
    if state is PageState.DISCONNECTED:  # the one state answered with a new runtime
        assert view.sessions is Outcome.OK and (view.gone or not view.listed and not view.doubt)
    if view.doubt and not view.gone and view.sessions is Outcome.OK and not view.long_call and not view.refusal:
        assert state is PageState.UNKNOWN  # looks gone, not for long enough: look again, replace nothing
    if view.job_running and view.sessions is Outcome.OK and view.listed and not view.gone and not view.doubt:
        assert state in (PageState.RUNNING, PageState.CONNECTING, PageState.GPU_LIMIT)
    if state is PageState.GPU_LIMIT:
        assert view.refusal  # only a refused allocation backs off
    if view.sessions is Outcome.LOGIN_REQUIRED and not view.long_call and not view.refusal:
        assert state is PageState.SIGNED_OUT and "colab sessions" in detail
    if view.sessions not in (Outcome.OK, Outcome.LOGIN_REQUIRED) and not view.long_call and not view.refusal:
        assert state is PageState.UNKNOWN  # a transport error or a timeout is not a lost runtime


ROUND = st.tuples(st.booleans(), st.booleans(), st.booleans())  # listed, a lost exec, the CLI said "lost"


@given(st.lists(ROUND, max_size=12), st.integers(1, 5))
def test_death_is_taken_only_from_evidence_held_dead_after_rounds_or_the_cli_saying_lost(rounds, dead_after):
    evidence, streak = Evidence(), 0
    for listed, lost_exec, said_lost in rounds:
        evidence = weigh(evidence, listed, lost_exec, said_lost, dead_after)
        streak = 0 if listed and not lost_exec and not said_lost else streak + 1
        assert evidence.rounds == streak
        assert evidence.gone == (said_lost or streak >= dead_after)
        if evidence.gone:
            evidence, streak = Evidence(), 0  # a runtime counted gone is replaced; counting starts afresh


def test_one_omission_or_one_lost_exec_is_not_a_death():
    once = weigh(Evidence(), listed=False, lost_exec=False, said_lost=False, dead_after=3)
    assert once == Evidence(1, False)
    assert weigh(once, listed=True, lost_exec=False, said_lost=False, dead_after=3) == Evidence()
    assert weigh(Evidence(), listed=True, lost_exec=True, said_lost=False, dead_after=3) == Evidence(1, False)
    assert weigh(Evidence(), listed=True, lost_exec=False, said_lost=True, dead_after=3).gone


OURS = "[castle] gpu-t4-s-abc | Hardware: T4 | Shape: Standard | Variant: GPU\n"
ORPHAN = "[?] gpu-t4-s-abc | Hardware: T4 | Shape: Standard | Variant: GPU\n"
OTHER = "[mine] gpu-l4-s-zzz | Hardware: L4 | Shape: Standard | Variant: GPU\n"


@pytest.mark.parametrize("outcome, out, step", [
    (Outcome.OK, OURS + OTHER, Step.STOP),
    (Outcome.OK, OTHER, Step.RELEASED),  # confirmed by the server's list, not by `stop`'s exit code
    (Outcome.OK, "[colab] No active sessions found on server.\n", Step.RELEASED),
    (Outcome.OK, "[colab] Pruned 1 stale local session(s).\n" + ORPHAN, Step.ORPHAN),  # `stop -s` cannot reach it
    (Outcome.LOGIN_REQUIRED, "", Step.SIGN_IN),
    (Outcome.FAILED, "", Step.RETRY), (Outcome.TIMED_OUT, "", Step.RETRY),
])
def test_a_release_is_confirmed_by_colab_sessions(outcome, out, step):
    assert next_step(outcome, out, "castle", "gpu-t4-s-abc") is step


@pytest.mark.parametrize("name", sorted(RANGES))
def test_every_cli_number_has_a_range_said_in_one_line(name):
    low, high = RANGES[name]
    base = CliConfig(images="/content/drive/MyDrive/castle")
    for wrong in (low - 1 if low >= 1 else -1.0, high * 2, float("nan"), float("inf")):
        with pytest.raises(CliSettingsError) as raised:
            check(replace(base, **{name: wrong}), "castle")
        assert f"cli.{name}" in str(raised.value) and "\n" not in str(raised.value)
    assert check(replace(base, **{name: low}), "castle") and check(replace(base, **{name: high}), "castle")


def test_call_seconds_zero_is_refused_by_the_config_file_too(tmp_path):
    from keepalive import config

    path = tmp_path / "config.toml"
    path.write_text("[cli]\ncall_seconds = 0\n")
    with pytest.raises(config.ConfigError, match=r"cli.call_seconds = 0(\.0)? is out of range"):
        config.load(path, env={"KEEPALIVE_HOME": str(tmp_path)})


def test_a_forgotten_runtime_is_given_its_name_back_without_a_token_and_nothing_else_changes():
    from keepalive.cli_mode.adopt import with_entry

    other = {"mine": {"name": "mine", "token": "SECRET", "url": "u", "endpoint": "gpu-l4-s-zzz"}}
    text = with_entry(json.dumps(other), "castle", "gpu-t4-s-abc")
    assert json.loads(text) == {**other, "castle": {"name": "castle", "token": "", "url": "",
                                                    "endpoint": "gpu-t4-s-abc"}}
    assert json.loads(with_entry("", "castle", "e")) == {"castle": {"name": "castle", "token": "", "url": "",
                                                                    "endpoint": "e"}}
    assert with_entry(text, "castle", "gpu-t4-s-abc") is None  # already there: nothing written
    assert with_entry("{not json", "castle", "e") is None  # the CLI reads it as empty: not ours to repair
    assert with_entry("[]", "castle", "e") is None


def test_readopt_writes_the_clis_state_file_in_place_under_its_lock(tmp_path):
    import stat

    from keepalive.cli_mode.adopt import readopt, state_file

    path = state_file(tmp_path)
    assert not readopt(tmp_path, "castle", "e")  # no CLI state here at all: nothing created
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"mine": {"name": "mine", "token": "SECRET", "url": "u", "endpoint": "z"}}))
    path.chmod(0o600)
    assert readopt(tmp_path, "castle", "gpu-t4-s-abc")
    assert set(json.loads(path.read_text())) == {"mine", "castle"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not readopt(tmp_path, "castle", "gpu-t4-s-abc")


class ScriptedCli:
    """Answers of the colab CLI, in order, for what one release asks; records what it was asked."""

    def __init__(self, answers):
        self.answers, self.asked = list(answers), []

    def call(self, *args, timeout=None):
        self.asked.append(args[0])
        return self.answers.pop(0)

    def outcome(self, answer):
        return classify(answer, ANSWERS)


def test_a_release_gives_an_orphan_of_ours_its_name_back_then_stops_it_and_waits_out_a_lost_login(tmp_path):
    from keepalive.cli_mode.adopt import state_file
    from keepalive.cli_mode.release import Release

    state_file(tmp_path).parent.mkdir(parents=True)
    state_file(tmp_path).write_text("{}")  # 0.7.5 pruned our name after an answer that left the runtime out
    cli = ScriptedCli([
        Answer("sessions", 1, "Enter the authorization code: ", LOGIN),  # signed out: told once, waited out
        Answer("sessions", 1, "Enter the authorization code: ", LOGIN),
        Answer("sessions", 0, ORPHAN),  # signed in again; the runtime listed as [?]
        Answer("sessions", 0, OURS),  # its name given back
        Answer("stop", 0, "[colab] Stopping session 'castle'...\n[colab] Session terminated.\n"),
        Answer("sessions", 0, OTHER),
    ])
    told = []
    release = Release(cli, "castle", "gpu-t4-s-abc", lambda kind, message: told.append((kind, message)), 0.01, 0.02,
                      "sign in", tmp_path)
    assert release.run() is Step.RELEASED
    assert cli.asked == ["sessions", "sessions", "sessions", "sessions", "stop", "sessions"]
    assert [kind for kind, _ in told] == ["runtime_assigned"]  # one LOGIN_REQUIRED notice, however long it waits
    assert "LOGIN_REQUIRED" in told[0][1] and "colab stop -s castle" in told[0][1]
    assert json.loads(state_file(tmp_path).read_text())["castle"]["endpoint"] == "gpu-t4-s-abc"


def test_stop_saying_not_found_with_exit_0_is_not_taken_for_a_release():
    from keepalive.cli_mode.release import Release

    cli = ScriptedCli([Answer("sessions", 0, OURS), Answer("stop", 0, "[colab] Session 'castle' not found.\n"),
                       Answer("sessions", 0, OURS), Answer("stop", 1, "", "ColabRequestError: ...: Bad Gateway\n"),
                       Answer("sessions", 0, OURS), Answer("stop", 0, "[colab] Session terminated.\n")])
    release = Release(cli, "castle", "gpu-t4-s-abc", lambda *told: None, 0.01, 0.02, "sign in", "/nonexistent")
    assert release.attempt() is Step.RETRY  # still listed after every stop: not released
