"""The live terminal view: rich renderables built from a plain dict, apart from the console.

``render`` and ``plain_line`` are pure (dict in, renderable or text out); ``LiveView`` shows them
at 1–2 refreshes a second on a terminal (rich's default 4 flickers on Windows), and writes one
plain line per change where the output is not a terminal (CI logs, files).
"""

from __future__ import annotations

import sys

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from keepalive.status import clock_text, count, durable_text, number, text


def _age_style(verdict, age, grace: float) -> str:
    if verdict != "fresh":
        return "bold red"
    age = number(age)
    return "green" if age is None or age < grace / 2 else "yellow"


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
    progress = _progress(info) or 0.0
    bar = Table.grid(padding=(0, 1))
    bar.add_row(ProgressBar(total=1.0, completed=progress, width=40),
                Text(f"{progress * 100:5.1f}%  {count(info.get('chunks_done'))}/{count(info.get('chunks_total'))}"
                     f" chunks{durable_text(info)}  ETA {clock_text(info.get('eta_seconds'))}"))
    chunk = number(info.get("chunk"))
    rows = [
        ("phase", Text(text(info.get("phase")) or "-", style="bold")),
        ("node", Text((text(info.get("node")) or "-") + ("" if chunk is None else f"  chunk {int(chunk)}"))),
        ("progress", bar),
        ("heartbeat", Text(f"{text(info.get('heartbeat'))}  age {clock_text(info.get('heartbeat_age_seconds'))}"
                           f"  sync lag {clock_text(info.get('sync_lag_seconds'))}",
                           style=_age_style(info.get("heartbeat"), info.get("heartbeat_age_seconds"), grace))),
        *([("unreadable", Text(text(info["heartbeat_error"]), style="bold red"))]
          if info.get("heartbeat_error") else []),
        ("session", Text(f"up {clock_text(info.get('session_uptime_seconds'))}"
                         f"  restarts {count(info.get('restarts'))}")),
        ("last action", Text(f"{text(info.get('last_action')) or '-'}: {text(info.get('last_action_reason'))}")),
        ("drive free", Text(_bytes(info.get("drive_free_bytes")))),
        ("log", Text(text(info.get("last_log_line")), overflow="ellipsis", no_wrap=True)),
    ]
    for name, value in rows:
        table.add_row(name, value)
    parts = [table]
    if info.get("reason"):
        parts.append(Text(f"{text(info.get('cause'))}: {text(info['reason'])} — {text(info.get('what_to_do'))}",
                          style="bold red"))
    elif info.get("note"):
        parts.append(Text(f"{text(info.get('cause'))}: {text(info['note'])}", style="yellow"))
    for key, label, style in (("warnings", "warning", "yellow"), ("history", "history", "dim")):
        entries = info.get(key)
        for entry in entries if isinstance(entries, list) else []:
            parts.append(Text(f"{label}: {text(entry)}", style=style))
    return Panel(Group(*parts), title=Text(f"colab-keepalive — {text(info.get('job'))}"), border_style="blue")


def plain_line(info: dict) -> str:
    progress = _progress(info)
    chunk = number(info.get("chunk"))
    return (f"[{text(info.get('job'))}] phase={text(info.get('phase')) or None} node={text(info.get('node')) or None}"
            f" chunk={None if chunk is None else int(chunk)}"
            f" progress={'-' if progress is None else f'{progress * 100:.1f}%'}"
            f" heartbeat={text(info.get('heartbeat'))} restarts={count(info.get('restarts'))}"
            f" action={text(info.get('last_action')) or None} cause={text(info.get('cause')) or None}")


class LiveView:
    def __init__(self, refresh_per_second: float = 2.0, grace: float = 300.0, stream=None):
        self.stream = stream or sys.stdout
        self.grace = grace
        self.console = Console(file=self.stream)
        self.live = Live(console=self.console, refresh_per_second=refresh_per_second, transient=False) \
            if self.console.is_terminal else None
        self._last_line = None

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
        line = plain_line(info)
        if line != self._last_line:
            self._last_line = line
            print(line, file=self.stream, flush=True)
