"""The session log goes to Drive by appending what is new; a hung-mount mark decays after a call succeeds."""

import errno

import pytest

from colab_side.drive import HANG, Drive, DriveError, Fault, FaultPlan
from colab_side.events import Journal


class CountingDrive(Drive):
    """A Drive that counts the bytes each call sends."""

    def __init__(self, root, **options):
        super().__init__(root, log=lambda line: None, sleep=lambda seconds: None, **options)
        self.sent = 0

    def rewrite_bytes(self, path, data, guard=None):
        self.sent += len(data)
        super().rewrite_bytes(path, data, guard)

    def write_at(self, path, offset, data):
        self.sent += len(data)
        return super().write_at(path, offset, data)


def make_journal(tmp_path, drive):
    return Journal(drive, tmp_path / "drive" / "events.jsonl", tmp_path / "drive" / "logs" / "s1.log",
                   tmp_path / "local" / "s1.log", "s1", echo=False)


def test_each_sync_sends_only_what_is_new(tmp_path):
    drive = CountingDrive(tmp_path / "drive")
    journal = make_journal(tmp_path, drive)
    for n in range(300):
        journal.log(f"chunk {n} done " + "x" * 80)
        journal.sync_log()
    journal.sync_log()  # nothing new: nothing sent
    local = journal.local_log_path.read_bytes()
    assert journal.drive_log_path.read_bytes() == local
    assert drive.sent == len(local)  # linear in the log, where copying it whole each time sent ~150 times more


def test_a_failed_copy_is_sent_again_from_the_same_place_and_a_cut_drive_copy_is_rewritten(tmp_path):
    plan = FaultPlan([Fault(3, errno.EACCES, "write")])  # not retried: the copy fails
    drive = CountingDrive(tmp_path / "drive", faults=plan)
    journal = make_journal(tmp_path, drive)
    journal.log("one")
    journal.sync_log()
    journal.log("two")
    journal.sync_log()
    journal.log("three")
    journal.sync_log()  # the third write fails; said in the log, not raised
    journal.sync_log()
    text = journal.drive_log_path.read_text()
    assert text.startswith("one\ntwo\nthree\ncould not copy the session log to Drive")
    assert journal.drive_log_path.read_bytes() == journal.local_log_path.read_bytes()
    journal.drive_log_path.write_bytes(b"on")  # Drive's copy cut (a conflict, a restore)
    journal.log("four")
    journal.sync_log()
    assert journal.drive_log_path.read_bytes() == journal.local_log_path.read_bytes()


def test_a_hung_mark_decays_after_a_call_succeeds(tmp_path):
    plan = FaultPlan([Fault(1, HANG, "write", name="a"), Fault(1, HANG, "write", name="b"),
                      Fault(1, HANG, "write", name="d")])
    drive = Drive(tmp_path, faults=plan, call_limit=1.0, after_hang_limit=0.1)
    try:
        with pytest.raises(DriveError, match="within 1 s"):
            drive.write_bytes(tmp_path / "a", b"x")
        assert drive.hung
        with pytest.raises(DriveError, match="within 0.1 s"):
            drive.write_bytes(tmp_path / "b", b"x")
        drive.write_bytes(tmp_path / "c", b"x")  # the mount answers again
        assert not drive.hung
        with pytest.raises(DriveError, match="within 1 s"):  # the full limit again, not the short one
            drive.write_bytes(tmp_path / "d", b"x")
    finally:
        plan.released.set()
