"""The runtime's vital signs: read from /proc and nvidia-smi with the standard library, carried by the heartbeat
as optional typed fields (a heartbeat without them, or with a wrong one, is still read)."""

import json
import subprocess
from types import SimpleNamespace

from colab_side import heartbeat as hb
from colab_side import vitals

MEMINFO = "MemTotal:       13290460 kB\nMemFree:          200000 kB\nMemAvailable:    1290460 kB\n"


def fake_proc(tmp_path, meminfo=MEMINFO, status="Name:\tpython3\nVmRSS:\t  524288 kB\n", up="43200.51 1000.0\n"):
    (tmp_path / "self").mkdir(parents=True, exist_ok=True)
    (tmp_path / "meminfo").write_text(meminfo)
    (tmp_path / "self" / "status").write_text(status)
    (tmp_path / "uptime").write_text(up)
    return tmp_path


def answers(stdout, code=0):
    return lambda *args, **kwargs: SimpleNamespace(stdout=stdout, returncode=code)


def test_vitals_from_proc_and_nvidia_smi(tmp_path):
    signs = vitals.read(fake_proc(tmp_path), answers("14000, 15360, 97\n"))
    assert signs == {"ram_used_bytes": 12_000_000 * 1024, "ram_total_bytes": 13290460 * 1024,
                     "process_rss_bytes": 512 << 20, "uptime_seconds": 43200,
                     "gpu_memory_used_bytes": 14000 << 20, "gpu_memory_total_bytes": 15360 << 20,
                     "gpu_utilization": 0.97}


def hangs(*args, **kwargs):
    raise subprocess.TimeoutExpired(args[0], kwargs["timeout"])


def missing(*args, **kwargs):
    raise FileNotFoundError("nvidia-smi")


def test_what_cannot_be_read_is_left_out(tmp_path):
    unknown = {"gpu_memory_used_bytes": None, "gpu_memory_total_bytes": None, "gpu_utilization": None}
    for run in (hangs, missing, answers("", 9), answers("No devices were found\n"), answers("[N/A], 15360, 0\n")):
        assert vitals.gpu(run) == unknown
    signs = vitals.read(fake_proc(tmp_path, meminfo="garbage", status="", up=""), missing)
    assert set(signs.values()) == {None}
    assert vitals.read(tmp_path / "nowhere", missing)["ram_total_bytes"] is None


def test_the_heartbeat_carries_them_and_old_or_wrong_ones_are_still_read(tmp_path):
    beat = hb.Heartbeat(job="j", session="s", seq=1, time="t", phase=hb.COMPUTING,
                        **vitals.read(fake_proc(tmp_path), answers("14000, 15360, 97\n")))
    again = hb.parse(beat.to_json())
    assert again == beat and again.gpu_utilization == 0.97 and again.uptime_seconds == 43200
    old = {"job": "j", "session": "s", "seq": 1, "time": "t", "phase": "computing"}
    assert hb.parse(json.dumps(old)).ram_used_bytes is None
    wrong = hb.parse(json.dumps({**old, "ram_used_bytes": "12 GB", "gpu_utilization": 97, "uptime_seconds": -1}))
    assert (wrong.ram_used_bytes, wrong.gpu_utilization, wrong.uptime_seconds) == (None, None, None)
