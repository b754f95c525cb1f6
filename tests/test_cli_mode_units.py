"""cli mode, the pure parts: what the colab CLI's answers mean, its version range, its settings file, scrubbing."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, strategies as st

from keepalive.cli_mode import vm_code
from keepalive.cli_mode.drivemount import consent_url
from keepalive.cli_mode.hands import CliView, page_state
from keepalive.cli_mode.runner import Answer, Outcome, classify, load_answers, parse_sessions, parse_version, \
    scrub, switch_off_update_check, version_problem
from keepalive.cli_mode.settings import CliConfig, CliSettingsError, check
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
    (Answer("exec", 1, "[colab] Session 'job' appears to be lost (404/401). Cleaning up.\n"), Outcome.GONE),
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
    from keepalive.cli_mode.watch import CliHeartbeatWatch

    mirror = tmp_path / "drive"
    path = hb.heartbeat_path(mirror, "castle")
    path.parent.mkdir(parents=True)
    path.write_text(hb.Heartbeat(job="castle", session="old", seq=9, time="2026-12-01T00:00:00+00:00",
                                 phase="blocked", cause="DRIVE_FULL", reason="Drive is full").to_json())
    watch = CliHeartbeatWatch(ColabCli("false"), "keepalive-castle", mirror, "castle", 300.0)  # no runtime
    seen = watch.poll()
    assert seen.verdict == "missing" and seen.beat is None
    assert path.exists()  # kept for `keepalive status`


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
                  sessions=st.sampled_from([None, *Outcome]), listed=st.booleans(), lost=st.booleans(),
                  job_running=st.sampled_from([None, False, True]), mounted=st.sampled_from([None, False, True]))


@given(VIEWS)
def test_what_the_cli_says_maps_onto_the_page_states_the_supervisor_knows(view):
    state, detail = page_state(view)
    assert detail
    if state is PageState.IDLE:  # the one state answered with Run all: a live, mounted runtime without a job
        assert view.sessions is Outcome.OK and view.listed and not view.lost and not view.job_running
        assert view.mounted and not view.long_call and not view.refusal
    if view.job_running and view.sessions is Outcome.OK and view.listed and not view.lost:
        assert state in (PageState.RUNNING, PageState.CONNECTING, PageState.GPU_LIMIT)
    if state is PageState.GPU_LIMIT:
        assert view.refusal  # only a refused allocation backs off
    if view.sessions is Outcome.LOGIN_REQUIRED and not view.long_call and not view.refusal:
        assert state is PageState.SIGNED_OUT and "colab sessions" in detail
    if view.sessions not in (Outcome.OK, Outcome.LOGIN_REQUIRED) and not view.long_call and not view.refusal:
        assert state is PageState.UNKNOWN  # a transport error or a timeout is not a lost runtime
