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

from keepalive.status import clock_text


def _age_style(verdict: str, age, grace: float) -> str:
    if verdict != "fresh":
        return "bold red"
    return "green" if age is None or age < grace / 2 else "yellow"


def _bytes(value) -> str:
    return "-" if value is None else f"{value / 2**30:.1f} GB"


def render(info: dict, grace: float = 300.0) -> Panel:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", justify="right")
    table.add_column()
    progress = info.get("progress") or 0.0
    bar = Table.grid(padding=(0, 1))
    bar.add_row(ProgressBar(total=1.0, completed=progress, width=40),
                Text(f"{progress * 100:5.1f}%  {info.get('chunks_done') or 0}/{info.get('chunks_total') or 0} chunks"
                     f"  ETA {clock_text(info.get('eta_seconds'))}"))
    chunk = info.get("chunk")
    table.add_row("phase", Text(str(info.get("phase") or "-"), style="bold"))
    table.add_row("node", f"{info.get('node') or '-'}" + (f"  chunk {chunk}" if chunk is not None else ""))
    table.add_row("progress", bar)
    table.add_row("heartbeat", Text(f"{info.get('heartbeat')}  age {clock_text(info.get('heartbeat_age_seconds'))}"
                                    f"  sync lag {clock_text(info.get('sync_lag_seconds'))}",
                                    style=_age_style(info.get("heartbeat"), info.get("heartbeat_age_seconds"), grace)))
    table.add_row("session", f"up {clock_text(info.get('session_uptime_seconds'))}  restarts {info.get('restarts', 0)}")
    table.add_row("last action", f"{info.get('last_action') or '-'}: {info.get('last_action_reason') or ''}")
    table.add_row("drive free", _bytes(info.get("drive_free_bytes")))
    table.add_row("log", Text(info.get("last_log_line") or "", overflow="ellipsis", no_wrap=True))
    parts = [table]
    if info.get("reason"):
        parts.append(Text(f"{info.get('cause')}: {info['reason']} — {info.get('what_to_do') or ''}", style="bold red"))
    for warning in info.get("warnings") or []:
        parts.append(Text(f"warning: {warning}", style="yellow"))
    return Panel(Group(*parts), title=f"colab-keepalive — {info.get('job')}", border_style="blue")


def plain_line(info: dict) -> str:
    progress = info.get("progress")
    return (f"[{info.get('job')}] phase={info.get('phase')} node={info.get('node')} chunk={info.get('chunk')}"
            f" progress={'-' if progress is None else f'{progress * 100:.1f}%'}"
            f" heartbeat={info.get('heartbeat')} restarts={info.get('restarts', 0)}"
            f" action={info.get('last_action')}")


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
