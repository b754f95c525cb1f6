"""The daemon in a real headless Chromium against the Colab simulator, for each injected fault and each
simulated Colab build (the whole job on the newest build; one disconnect on each older one)."""

from __future__ import annotations

import subprocess
import threading
import time

import pytest

from colab_side import heartbeat as hb
from conftest import chromium_available, wait_for
from keepalive import status
from keepalive.demo import Demo
from keepalive_sim.colab_sim import ACCOUNT_EMAIL, VARIANTS
from keepalive_sim.sample_job import SampleJob

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not chromium_available(), reason="needs chromium and chromedriver")]


def notifications(demo: Demo, what: str) -> int:
    return sum(1 for e in demo.journal.events() if e.get("event") == "notification" and e.get("what") == what)


def actions(demo: Demo) -> list[str]:
    return [e["action"] for e in demo.journal.events() if e.get("event") == "action"]


def in_background(fn):
    thread = threading.Thread(target=fn, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def demo_factory(tmp_path):
    made = []

    def make(variant: str = "m3-2025", leave_alert: bool = True, **options):
        """A demo on simulated Colab build ``variant``, whose Drive pop-up leaves a "Leave site?" alert."""
        demo = Demo(tmp_path / f"demo{len(made)}", headless=True, **options)
        demo.sim.variant, demo.sim.leave_alert = variant, leave_alert
        made.append(demo.start())
        return demo

    yield make
    for demo in made:
        demo.stop()


def test_disconnects_are_recovered_and_the_result_matches_an_uninterrupted_run(demo_factory, tmp_path):
    demo = demo_factory(images=9, chunk_seconds=0.25)
    demo.inject_kills(3)
    code = demo.daemon.run()
    assert code == 0
    assert len(demo.kills) == 3
    assert notifications(demo, "recovered") == 3
    reference = SampleJob(tmp_path / "reference", name="demo", images=9, chunk_seconds=0.01)
    subprocess.run(reference.command(), env=reference.env, check=True, capture_output=True, timeout=120)
    assert demo.job.result_files() == reference.result_files() != {}
    assert_mounted_by_the_notebooks_account(demo)


def assert_mounted_by_the_notebooks_account(demo: Demo) -> None:
    state = demo.sim.state()
    assert state["grant_email"] == ACCOUNT_EMAIL and demo.sim.accounts[0] != ACCOUNT_EMAIL
    assert state["alerts_accepted"] >= 1 and state["alerts_dismissed"] == 0
    assert state["without_gpu_pressed"] == 0


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v != "m3-2025"])
def test_each_older_build_is_run_and_recovered_after_a_disconnect(demo_factory, variant):
    demo = demo_factory(variant=variant, images=4, chunk_seconds=0.25)
    pages = set()  # every round's reading (the journal keeps only rounds that act or tell)
    observe = demo.hands.observe

    def observe_and_note():
        observation = observe()
        pages.add(observation.state.value)
        return observation

    demo.hands.observe = observe_and_note
    demo.inject_kills(1)
    code = demo.daemon.run()
    assert code == 0
    assert len(demo.kills) == 1 and notifications(demo, "recovered") == 1
    assert_mounted_by_the_notebooks_account(demo)
    assert {"running", "disconnected"} <= pages  # the build's page was read, not guessed


@pytest.mark.parametrize("refusal, page", [(lambda sim: sim.refuse_gpu(3), "gpu_limit"),
                                          (lambda sim: sim.fail_backend(3, "no_gpu"), "backend_unavailable")],
                         ids=["gpu_usage_limit", "failed_to_assign_a_backend"])
def test_a_refused_runtime_backs_off_and_is_never_taken_without_gpu(demo_factory, refusal, page):
    demo = demo_factory(images=4, chunk_seconds=0.05)
    refusal(demo.sim)
    code = demo.daemon.run()
    assert code == 0
    assert "dismiss_gpu_limit" in actions(demo)
    assert demo.sim.state()["without_gpu_pressed"] == 0
    decisions = [e for e in demo.journal.events() if e.get("event") == "decision"]
    assert any(d.get("page") == page and d.get("cause") == "GPU_UNAVAILABLE" for d in decisions)


def test_captcha_calls_the_human_once_and_resumes_by_itself(demo_factory):
    demo = demo_factory(images=6, chunk_seconds=1.0)  # the job outlasts the daemon's look at the CAPTCHA

    def human():
        assert wait_for(lambda: demo.sim.state()["running"])
        demo.sim.show_captcha()
        wait_for(lambda: notifications(demo, "needs_human") >= 1, timeout=30)
        time.sleep(3)  # several polls while the CAPTCHA stays up
        demo.sim.solve_captcha()

    in_background(human)
    code = demo.daemon.run()
    assert code == 0
    assert notifications(demo, "needs_human") == 1


def test_signed_out_calls_the_human_once_and_does_not_restart(demo_factory):
    demo = demo_factory(images=4, chunk_seconds=0.05)
    demo.sim.sign_out()
    demo.hands.reopen()

    def stop_later():
        wait_for(lambda: notifications(demo, "needs_human") >= 1, timeout=30)
        time.sleep(3)
        demo.daemon.stopping = True

    in_background(stop_later)
    demo.daemon.run()
    assert notifications(demo, "needs_human") == 1
    assert demo.sim.state()["run_all_count"] == 0
    assert not set(actions(demo)) & {"run_all", "reconnect"}


def test_a_failing_job_is_reported_and_never_restarted_again(demo_factory):
    demo = demo_factory(images=4, chunk_seconds=0.05, job_env={"MESHROOM_STANDIN_FAIL": "StructureFromMotion_1"})
    code = demo.daemon.run()
    assert code == 1
    assert notifications(demo, "failed") == 1
    beat = demo.heartbeat()
    assert beat.phase == "failed" and beat.cause == "CODE_ERROR" and "StructureFromMotion_1" in beat.reason
    assert demo.sim.state()["start_count"] == 2  # the error had to happen in 2 sessions, then no more


def test_a_daemon_watching_another_job_name_says_so_and_never_runs_the_finished_job_again(demo_factory):
    """The notebook runs job 'demo'; the daemon was told 'meshroom' (the default, --job never given)."""
    demo = demo_factory(images=4, chunk_seconds=0.2, watch_job="meshroom")
    seen = {}

    def watch_after_the_job():
        seen["done"] = wait_for(lambda: demo.heartbeat() is not None and demo.heartbeat().phase == hb.DONE, 180)
        seen["idle"] = wait_for(lambda: not demo.sim.state()["running"], 60)
        # before: Run all within seconds of the idle page (dead_after 2 rounds of 0.5 s), again and again after
        seen["run_again"] = wait_for(lambda: demo.sim.state()["run_all_count"] > 1, 20)
        demo.daemon.stopping = True

    in_background(watch_after_the_job)
    demo.daemon.run()
    assert seen == {"done": True, "idle": True, "run_again": False}
    assert demo.sim.state()["run_all_count"] == 1  # the first start only
    assert notifications(demo, "other_job") == 1
    told = [e for e in demo.journal.events() if e.get("event") == "decision" and e.get("cause") == "OTHER_JOB"]
    assert told and f"To watch it: keepalive run {demo.sim.notebook_url} --job demo" in told[0]["reason"]


def test_each_runtime_death_gets_its_cause_from_what_the_page_showed_next(demo_factory):
    demo = demo_factory(images=9, chunk_seconds=0.25)

    def computing(after: str | None = None, chunks: int = 1):
        beat = demo.heartbeat()
        return (beat is not None and beat.session != after and beat.phase == hb.COMPUTING
                and beat.chunks_done >= chunks and demo.sim.state()["running"])

    def world():
        assert wait_for(computing, timeout=300)
        first = demo.heartbeat().session
        demo.sim.refuse_gpu(4)  # the next connect meets the usage-limit dialog
        demo.sim.kill("disconnect")
        assert wait_for(lambda: computing(after=first), timeout=300)
        resumed = demo.heartbeat().chunks_done
        assert wait_for(lambda: computing(after=first, chunks=resumed + 1), timeout=300)  # it computes again
        demo.sim.show_captcha()  # the idle check covers the page as the runtime goes
        demo.sim.kill("disconnect")
        assert wait_for(lambda: notifications(demo, "needs_human") >= 1, timeout=60)
        demo.sim.solve_captcha()

    in_background(world)
    assert demo.daemon.run() == 0
    rows = demo.journal.sessions()
    assert [(row.get("cause"), row.get("certainty")) for row in rows] == \
        [("usage_limit", "likely"), ("human", "likely"), (None, None)]
    assert "GPU usage-limit dialog" in rows[0]["evidence"] and "CAPTCHA" in rows[1]["evidence"]
    told = [e["message"] for e in demo.journal.events() if e.get("what") == "recovered"]
    assert len(told) == 2 and "Colab's GPU usage limit" in told[0] and "a check only a human" in told[1]
    table = "\n".join(status.sessions_table(rows))
    assert "Colab's GPU usage limit (likely: the next connect showed the GPU usage-limit dialog)" in table
