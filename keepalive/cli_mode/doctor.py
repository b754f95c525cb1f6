"""``keepalive doctor --mode cli``: what keepalive sees of the colab CLI: program, version, login, sessions.

Only what the CLI prints to a plain ``colab version`` and ``colab sessions`` is used, scrubbed; the
CLI's own files with secrets in them (``token.json``, ``sessions.json``, the debug log ``colab.log``)
are never read here.
"""

from __future__ import annotations

import os
from pathlib import Path

from keepalive.cli_mode.runner import (INSTALL_HINT, ColabCli, Outcome, load_answers, parse_sessions,
                                      parse_version, scrub, switch_off_update_check, version_problem)
from keepalive.cli_mode.hands import LOGIN_HINT

def run_doctor(cfg, env: dict | None = None) -> dict:
    env = dict(os.environ if env is None else env)
    cli = ColabCli(cfg.cli.path, cfg.cli.call_seconds, load_answers(cfg.cli.answers), env)
    report = {"program": cli.resolved(), "version": None, "version_ok": False, "problem": None, "login": None,
              "sessions": [], "session": cfg.cli.session_name(cfg.job), "update_check": "off"}
    if report["program"] is None:
        report["problem"] = f"the colab CLI ({cfg.cli.path}) is not found: {INSTALL_HINT}"
        return report
    switch_off_update_check(Path(env.get("HOME") or Path.home()))
    found = parse_version(cli.call("version").out)
    report["version"] = ".".join(map(str, found)) if found else None
    report["problem"] = version_problem(found, cli.answers)
    report["version_ok"] = report["problem"] is None
    answer = cli.call("sessions")
    outcome = cli.outcome(answer)
    last_line = scrub(answer.text.strip().splitlines()[-1]) if answer.text.strip() else ""
    report["login"] = {Outcome.OK: "signed in", Outcome.LOGIN_REQUIRED: f"signed out: {LOGIN_HINT}"}.get(
        outcome, f"unknown ({outcome.value}): {last_line}")
    if outcome is Outcome.OK:
        report["sessions"] = [{"name": name, **{k: scrub(v) for k, v in info.items()}}
                              for name, info in parse_sessions(answer.out).items()]
    return report


def render(report: dict) -> str:
    lines = [f"colab CLI: {report['program'] or 'not found'}",
             f"version: {report['version'] or '?'}" + ("" if report["version_ok"] else " (not supported)")]
    if report["problem"]:
        lines.append(f"problem: {report['problem']}")
    if report["login"]:
        lines.append(f"login: {report['login']}")
    lines.append(f"keepalive's session: {report['session']}")
    if report["login"] == "signed in":
        lines.append(f"runtimes on the server: {len(report['sessions'])}")
        for row in report["sessions"]:
            orphan = "  (orphan: not in the CLI's list, still billed; stop it in the Colab page)"
            mark = "  <- keepalive's" if row["name"] == report["session"] else orphan if row["name"] == "?" else ""
            lines.append(f"  [{row['name']}] {row['endpoint']} {row['hardware']}{mark}")
    lines.append(f"update check of the CLI: {report['update_check']} (~/.config/colab-cli/settings.json)")
    return "\n".join(lines)
