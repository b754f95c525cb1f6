"""The live terminal view: rich renderables built from a plain dict, apart from the console.

``render`` and ``plain_line`` are pure (dict in, renderable or text out); what they say of the
heartbeat and of where the job stands comes from ``keepalive.status`` (``heartbeat_line``,
``headline``), as ``keepalive status`` says it, so the panel cannot contradict itself or status.
``LiveView`` shows them at 1–2 refreshes a second on a terminal (rich's default 4 flickers on
Windows), and writes one plain line per change where the output is not a terminal (CI logs, files).
"""

from __future__ import annotations

import sys

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from colab_side import heartbeat as hb
from keepalive.status import (action_text, clock_text, count, durable_text, eta_text, headline, heartbeat_line,
                              heartbeat_word, number, text)

TONES = {"good": "green", "warn": "yellow", "bad": "bold red", "plain": ""}
HEADLINE_TONES = {"good": "bold green", "warn": "yellow", "bad": "bold red", "plain": "cyan"}
BORDERS = {"good": "green", "bad": "red"}


def _bytes(value) -> str:
    value = number(value)
    return "-" if value is None else f"{value / 2**30:.1f} GB"


def _progress(info: dict) -> float | None:
    value = number(info.get("progress"))
    return None if value is None else min(1.0, max(0.0, value))


def render(info: dict, grace: float = 300.0) -> Panel:
    """The live panel; every value is shown through ``text``/``number``, so any dict renders."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", justify="right")
    table.add_column()
    final = text(info.get("phase")) in hb.FINAL_PHASES
    progress = _progress(info) or 0.0
    eta = f"  {eta_text(info)}" if eta_text(info) else ""
    bar = Table.grid(padding=(0, 1))
    bar.add_row(ProgressBar(total=1.0, completed=progress, width=40),
                Text(f"{progress * 100:5.1f}%  {count(info.get('chunks_done'))}/{count(info.get('chunks_total'))}"
                     f" chunks{durable_text(info)}{eta}"))
    chunk = number(info.get("chunk"))
    told = headline(info)
    beat, tone = heartbeat_line(info, grace)
    rows = [
        ("phase", Text(text(info.get("phase")) or "-", style="bold green" if told and told[1] == "good" else "bold")),
        ("node", Text((text(info.get("node")) or "-") + ("" if chunk is None else f"  chunk {int(chunk)}"))),
        ("progress", bar),
        ("heartbeat", Text(beat, style=TONES[tone])),
        *([("unreadable", Text(text(info["heartbeat_error"]), style="bold red"))]
          if info.get("heartbeat_error") else []),
        ("session", Text(f"up {clock_text(info.get('session_uptime_seconds'))}"
                         f"  restarts {count(info.get('restarts'))}")),
        ("last action", Text(action_text(info), style="dim" if final else "")),
        ("drive free", Text(_bytes(info.get("drive_free_bytes")))),
        *([("last lost", Text(text(info["last_death"], 400), style="yellow"))] if info.get("last_death") else []),
        ("log", Text(text(info.get("last_log_line")), overflow="ellipsis", no_wrap=True)),
    ]
    for name, value in rows:
        table.add_row(name, value)
    parts = [table]
    if told:
        parts.append(Text(told[0], style=HEADLINE_TONES[told[1]]))
    for key, label, style in (("warnings", "warning", "yellow"), ("history", "history", "dim")):
        entries = info.get(key)
        for entry in entries if isinstance(entries, list) else []:
            parts.append(Text(f"{label}: {text(entry)}", style=style))
    return Panel(Group(*parts), title=Text(f"colab-keepalive — {text(info.get('job'))}"),
                 border_style=BORDERS.get(told[1], "blue") if told else "blue")


def plain_line(info: dict) -> str:
    progress = _progress(info)
    chunk = number(info.get("chunk"))
    final = text(info.get("phase")) in hb.FINAL_PHASES
    acting = info.get("cause") and not final  # an ended recovery's last action is not shown as current
    told = headline(info) if final else None
    return (f"[{text(info.get('job'))}] phase={text(info.get('phase')) or None} node={text(info.get('node')) or None}"
            f" chunk={None if chunk is None else int(chunk)}"
            f" progress={'-' if progress is None else f'{progress * 100:.1f}%'}"
            f" heartbeat={heartbeat_word(info)} restarts={count(info.get('restarts'))}"
            f" action={(acting and text(info.get('last_action'))) or None} cause={text(info.get('cause')) or None}"
            + (f" | {told[0]}" if told else ""))


class LiveView:
    def __init__(self, refresh_per_second: float = 2.0, grace: float = 300.0, stream=None):
        self.stream = stream or sys.stdout
        self.grace = grace
        self.console = Console(file=self.stream)
        self.live = Live(console=self.console, refresh_per_second=refresh_per_second, transient=False) \
            if self.console.is_terminal else None
        self._last_line = None
        self._last_death = ""

    def __enter__(self):
        if self.live:
            self.live.start()
        return self

    def __exit__(self, *exc):
        if self.live:
            self.live.stop()

    def update(self, info: dict) -> None:
        if self.live:
            self.live.update(render(info, self.grace))
            return
        death = text(info.get("last_death"), 600)
        if death and death != self._last_death:  # the panel's "last lost" row, as one line of its own
            print(f"[{text(info.get('job'))}] runtime lost: {death}", file=self.stream, flush=True)
        self._last_death = death or self._last_death
        line = plain_line(info)
        if line != self._last_line:
            self._last_line = line
            print(line, file=self.stream, flush=True)
