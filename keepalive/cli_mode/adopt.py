"""Giving the colab CLI back the name of a runtime it forgot.

0.7.5's ``colab sessions`` trusts the server's list: every local entry whose runtime the answer leaves
out is pruned at once (``common.py:137-146``). One answer that omits a live runtime therefore makes the
CLI forget it: from then on it is listed as ``[?]`` and no command reaches it by name (``exec``,
``download`` and ``stop -s NAME`` all say ``Session 'NAME' not found.``), while it goes on costing quota.

keepalive puts the name back: it adds to the CLI's state file (``~/.config/colab-cli/sessions.json``)
one entry with the session's name and the runtime's endpoint, and no token, under the CLI's own lock
(``filelock.ReadWriteLock`` on ``sessions.json.lock``, ``state.py:48-86``), only when that name is not
there, and only for the endpoint keepalive itself held. The next ``colab sessions`` fills in the
runtime's proxy token and URL by itself (``common.py:141-143``, ``_apply_proxy_info`` for each local
entry whose endpoint the server lists). Nothing of the file is printed or kept; a file the CLI could
not parse is left alone.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import filelock

LOCK_SECONDS = 10.0


def state_file(home: Path) -> Path:
    return Path(home) / ".config" / "colab-cli" / "sessions.json"


def with_entry(text: str, session: str, endpoint: str) -> str | None:
    """Pure: the state file's text with an entry for ``session`` added, or None when nothing is to be written
    (the name is there, or the text is not the CLI's JSON object)."""
    try:
        data = json.loads(text) if text.strip() else {}
    except ValueError:
        return None
    if not isinstance(data, dict) or session in data:
        return None
    data[session] = {"name": session, "token": "", "url": "", "endpoint": endpoint}
    return json.dumps(data, indent=2)


def readopt(home: Path, session: str, endpoint: str) -> bool:
    """Give ``session`` back to the CLI for ``endpoint``; whether an entry was written."""
    path = state_file(home)
    if not path.parent.is_dir():
        return False
    try:
        with filelock.ReadWriteLock(f"{path}.lock", is_singleton=False).write_lock(timeout=LOCK_SECONDS):
            with open(path, "a+", encoding="utf-8") as handle:  # in place, as the CLI writes it (keeps its mode)
                handle.seek(0)
                text = with_entry(handle.read(), session, endpoint)
                if text is None:
                    return False
                handle.seek(0)
                handle.truncate()
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
    except (OSError, filelock.Timeout):
        return False
    return True
