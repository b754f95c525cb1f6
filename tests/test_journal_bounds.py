"""The daemon's journal stays bounded over weeks, and keeps the whole history of sessions."""

from keepalive.journal import REPEAT_FLUSH, Journal


def test_the_event_log_rotates_by_size_and_keeps_one_older_file(tmp_path):
    journal = Journal(tmp_path, "castle", max_bytes=10_000)
    for n in range(2_000):
        journal.record("decision", action="reconnect", cause="RUNTIME_LOST", n=n)
    kept = [journal.events_path, journal.older_path]
    assert sum(path.stat().st_size for path in kept) <= 2 * 10_000 + 200
    assert sorted(p.name for p in journal.folder.glob("events*")) == ["events.1.jsonl", "events.jsonl"]
    numbers = [e["n"] for e in journal.events()]
    assert numbers == list(range(numbers[0], 2_000)) and numbers[0] > 0  # the newest kept, in order


def test_sessions_outlive_the_rotation_and_are_read_without_the_event_log(tmp_path):
    journal = Journal(tmp_path, "castle", max_bytes=2_000)
    for n in range(50):
        journal.record("session_seen", session=f"s{n}", chunks_done=n * 10)
        journal.record("progress", session=f"s{n}", chunks_done=n * 10 + 3)
        journal.record("decision", action="reconnect", cause="RUNTIME_LOST")
        journal.record("decision", action="wait", cause="GPU_UNAVAILABLE")
    journal.events_path.unlink()
    journal.older_path.unlink()
    rows = Journal(tmp_path, "castle").sessions()  # another reader: status
    assert [row["session"] for row in rows] == [f"s{n}" for n in range(50)]
    assert all(row["chunks_gained"] == 3 and row["ended_by"] == "RUNTIME_LOST" for row in rows)
    assert all(row["end"] for row in rows[:-1]) and rows[-1]["end"] is None


def test_a_journal_of_old_without_sessions_file_is_folded_once_and_continued(tmp_path):
    old = Journal(tmp_path, "castle")
    old.record("session_seen", session="s1", chunks_done=0)
    (old.folder / "sessions.json").unlink()
    journal = Journal(tmp_path, "castle")
    assert [row["session"] for row in journal.sessions()] == ["s1"]
    journal.record("session_seen", session="s2", chunks_done=4)
    rows = Journal(tmp_path, "castle").sessions()
    assert [(row["session"], row["ended_by"]) for row in rows] == [("s1", "restart"), ("s2", None)]


def test_a_failure_repeated_word_for_word_is_counted_not_repeated(tmp_path):
    journal = Journal(tmp_path, "castle")
    for n in range(1, REPEAT_FLUSH * 2 + 11):
        journal.record("round_failed", error="RuntimeError: the tab went away", traceback="long " * 200, in_a_row=n)
    journal.record("round_failed", error="OSError: another", traceback="x", in_a_row=1)
    journal.record("decision", action="reconnect")
    events = journal.events()
    assert [e["event"] for e in events] == ["round_failed", "repeated", "repeated", "repeated", "round_failed",
                                            "decision"]
    assert sum(e["times"] for e in events if e["event"] == "repeated") == REPEAT_FLUSH * 2 + 9
    assert events[4]["error"] == "OSError: another"
