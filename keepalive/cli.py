"""The ``keepalive`` command: run, status, doctor, notebook, service, demo."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import signal
import sys
import tempfile
from pathlib import Path

from keepalive import __version__, config
from keepalive.hands.browser import BrowserError
from keepalive.journal import AlreadyRunning
from keepalive.status import EXIT_CODES_HELP


def _parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="keepalive", description="Keep a long Colab job alive from your PC.")
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    top.add_argument("--config", help="config file (default: the user's config folder)")
    sub = top.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="watch the notebook and restart it whenever it dies",
                         epilog="exit codes: 0 the job is done; 1 it failed, or restarting was given up; 2 it could not start "
                                "(config, URL, browser, another daemon watches the job); 3 the daemon itself crashed; 130 stopped "
                                "by Ctrl+C or a signal. With --service: 0 for every end but a crash")
    run.add_argument("url", nargs="?", help="the Colab notebook URL (asked once, then remembered)")
    run.add_argument("--mode", choices=config.MODES,
                     help="controlled Chrome, keystrokes in your own browser, or cli: Google's colab CLI, no browser")
    run.add_argument("--origin", help="the Colab site (default https://colab.research.google.com)")
    run.add_argument("--job", help="job name, as in the notebook (default: the one 'keepalive notebook' or the last "
                                   "'run --job' remembered, else meshroom); remembered, with its URL")
    run.add_argument("--drive-folder", help="your 'My Drive' folder from Google Drive for desktop")
    run.add_argument("--headless", action="store_true", help="run the controlled browser without a window")
    run.add_argument("--poll-seconds", type=float, help="how often to look (default 10)")
    run.add_argument("--service", action="store_true",
                     help="as the user's service runs it: exit 0 on every end a restart would not mend")
    run.add_argument("--images", help="cli mode: the images folder as Colab sees it, /content/drive/MyDrive/...")
    run.add_argument("--gpu", help="cli mode: the accelerator to ask for (default T4; '' for a CPU runtime)")

    status = sub.add_parser("status", help="one look at the job, and whether a daemon watches it",
                            description="One look at the job, with or without a daemon running.",
                            epilog=EXIT_CODES_HELP)
    status.add_argument("--job", help="job name, as in the notebook (default meshroom)")
    status.add_argument("--mode", choices=config.MODES, help="cli: the heartbeat as the cli-mode daemon last fetched it")
    status.add_argument("--drive-folder", help="your 'My Drive' folder from Google Drive for desktop")
    status.add_argument("--json", action="store_true", help="print every field as one JSON object")

    doctor = sub.add_parser("doctor", help="open the page once and report what is seen")
    doctor.add_argument("url", nargs="?", help="the Colab notebook URL (default: the job's, from your config)")
    doctor.add_argument("--job", help="the job whose remembered notebook to open (default: the remembered job)")
    doctor.add_argument("--mode", choices=config.MODES, help="cli: report on the colab CLI instead of the page")
    doctor.add_argument("--origin", help="the Colab site (default https://colab.research.google.com)")
    doctor.add_argument("--headless", action="store_true", help="open the page without a browser window")
    doctor.add_argument("--out", help="folder for the screenshot and the page HTML")
    doctor.add_argument("--json", action="store_true", help="print the report as one JSON object")

    notebook = sub.add_parser("notebook", help="write the notebook to upload to Colab once")
    notebook.add_argument("--out", default="keepalive_meshroom.ipynb", help="the notebook file to write (default %(default)s)")
    notebook.add_argument("--images", default="/content/drive/MyDrive/images",
                          help="images folder as Colab sees it (default %(default)s)")
    notebook.add_argument("--job", default=None, help="job name: its folder on Drive (default: the remembered job, else "
                          "meshroom); remembered for run, status, doctor and service")
    notebook.add_argument("--meshroom", default="2019.2", help="Meshroom release: 2019.2, 2021.1, 2023.3 or 2025.1 "
                          "(default %(default)s)")
    notebook.add_argument("--engine", default="meshroom", choices=("meshroom", "colmap"),
                          help="the program that computes: meshroom, or colmap (pycolmap: a sparse model, and with "
                               "CUDA a dense point cloud and mesh; docs/colmap.md)")
    notebook.add_argument("--pipeline", default=None, help="your own Meshroom pipeline (.mg) on Drive, as seen in Colab")
    notebook.add_argument("--param", dest="params", action="append", default=[], metavar="NODE.ATTR=VALUE",
                          help="a parameter of the graph, e.g. DepthMap_1.downscale=4 (repeatable)")
    notebook.add_argument("--overrides", default=None, help="a JSON overrides file on Drive, as seen in Colab")
    notebook.add_argument("--drive-budget", dest="drive_budget_gb", type=float, default=None, metavar="GB",
                          help="most GB the job's store may hold on Drive, as 'python -m colab_side plan' advises")

    service = sub.add_parser("service", help="run the daemon as your own service (starts at login, after a crash)")
    service.add_argument("action", choices=["install", "uninstall", "status"],
                         help="install: register 'keepalive run --service --job JOB'; uninstall: remove it; status: what runs")
    service.add_argument("--job", help="the job the service watches (default: the remembered job)")

    demo = sub.add_parser("demo", help="the whole product against the built-in Colab simulator")
    demo.add_argument("--headless", action="store_true", help="run the browser without a window")
    demo.add_argument("--kills", type=int, default=3, help="disconnects to inject (default %(default)s)")
    demo.add_argument("--workdir", help="where the local Drive goes (default: a new temp folder)")
    demo.add_argument("--json", action="store_true", help="print a JSON summary at the end")
    return top


def _load(path, **overrides):
    """The config, its warnings (unknown keys) said now, one line each, by every command; the list is emptied
    once said, so that the daemon ``run`` builds does not say them again."""
    cfg = config.load(path, **overrides)
    for warning in cfg.warnings:
        print(f"keepalive: warning: {warning}", file=sys.stderr, flush=True)
    cfg.warnings.clear()
    return cfg


def _ask_url(cfg, given: str | None) -> str:
    url = given or cfg.url
    if not url:
        if not sys.stdin.isatty():
            raise config.ConfigError("no notebook URL: pass it, as in 'keepalive run https://colab.research.google.com/drive/...'")
        url = input("Paste the Colab notebook URL: ").strip()
    url = config.check_colab_url(url, cfg.origin)
    if url != cfg.url:
        config.save_url(cfg, url)
    return url


def _command(args, *words: str) -> str:
    """A keepalive command line as the user should type it next (with --config when one was given)."""
    given = ["--config", str(args.config)] if args.config else []
    return shlex.join(["keepalive", *given, *words])


def cmd_run(args) -> int:
    from keepalive import app

    cfg = _load(args.config, origin=args.origin, mode=args.mode, job=args.job,
                      drive_folder=args.drive_folder, poll_seconds=args.poll_seconds)
    given = {key: value for key, value in (("images", args.images), ("gpu", args.gpu)) if value is not None}
    cfg.cli = dataclasses.replace(cfg.cli, **given)
    if args.job and not args.service:  # the job named is the one later commands use without --job (a service's
        config.remember_job(cfg, args.job)  # own --job is only its own)
    if cfg.mode != "cli":  # cli mode has no notebook page
        cfg.url = _ask_url(cfg, args.url)
    if args.headless:
        cfg.browser = dataclasses.replace(cfg.browser, headless=True)
    with app.build(cfg) as watching:
        try:
            return watching.run()
        except Exception:  # the daemon has written it down and said it in one line
            return EXIT_CRASHED


def cmd_status(args) -> int:
    from keepalive import status

    cfg = _load(args.config, job=args.job, drive_folder=args.drive_folder, mode=args.mode)
    previous = None
    if cfg.mode == "cli":
        from keepalive.cli_mode.watch import mirror_folder, previous_run, previous_text

        cfg.drive_folder = str(mirror_folder(cfg))  # the heartbeat as the daemon last fetched it
        previous = previous_run(mirror_folder(cfg), cfg.job)
    info = status.collect(cfg)
    if previous is not None:  # an earlier run's final word that this run did not take as its verdict
        info["previous_run"] = {"phase": previous.phase, "cause": previous.cause, "reason": status.text(previous.reason),
                                "session": status.text(previous.session)}
    text = status.render_text(info, cfg.supervisor.grace_seconds) + \
        (f"\n{status.text(previous_text(previous))}" if previous else "")
    print(json.dumps(info, sort_keys=True) if args.json else text)
    return info["exit_code"]


def cmd_doctor(args) -> int:
    from keepalive import doctor

    cfg = _load(args.config, origin=args.origin, mode=args.mode, job=args.job)
    if cfg.mode == "cli":
        from keepalive.cli_mode import doctor as cli_doctor

        report = cli_doctor.run_doctor(cfg)
        print(json.dumps(report, sort_keys=True) if args.json else cli_doctor.render(report))
        return 0 if report["problem"] is None else 1
    if not (args.url or cfg.url):
        raise config.ConfigError(f"no notebook URL is remembered for job {cfg.job}: pass it, as in "
                                 f"'{_command(args, 'doctor')} <its URL>', or run '{_command(args, 'run', '--job', cfg.job)}"
                                 " <its URL>' once")
    cfg.url = config.check_colab_url(args.url or cfg.url, cfg.origin)
    if args.headless:
        cfg.browser = dataclasses.replace(cfg.browser, headless=True)
    report = doctor.run_doctor(cfg, args.out or cfg.dirs.state / "doctor")
    print(json.dumps(report, sort_keys=True) if args.json else doctor.render(report))
    return 0 if report["problem"] is None else 1


def cmd_notebook(args) -> int:
    from keepalive import notebook

    cfg = _load(args.config, job=args.job)
    try:
        notebook.write(args.out, args.images, cfg.job, args.meshroom,
                       pipeline=args.pipeline, params=args.params, overrides=args.overrides,
                       drive_budget_gb=args.drive_budget_gb, engine=args.engine)
    except ValueError as exc:
        raise config.ConfigError(f"{exc}; nothing written") from None
    except OSError as exc:
        raise config.ConfigError(f"cannot write {args.out}: {exc.strerror}; choose another --out") from None
    if args.job:
        config.remember_job(cfg, cfg.job)
    remembered = f"job {cfg.job} is remembered for run, status, doctor and service; " if args.job else ""
    print(f"wrote {args.out}: upload it to Colab (File > Upload notebook), choose a GPU runtime; {remembered}then run "
          f"'{_command(args, 'run')} <its URL>'")
    return 0


def cmd_service(args) -> int:
    from keepalive import service

    cfg = _load(args.config, job=args.job)
    platform = service.platform_for(service.command(cfg.path, job=cfg.job), cfg.dirs.state,
                                    label=service.service_name(cfg.job))
    legacy = service.platform_for(service.command(cfg.path), cfg.dirs.state)  # from before one service per job
    try:
        print(getattr(service, args.action)(platform))
        if args.action == "uninstall" and legacy.path.exists():
            print(service.uninstall(legacy))
    except service.ServiceError as exc:
        raise config.ConfigError(str(exc)) from None
    return 0


def cmd_demo(args) -> int:
    from keepalive.demo import run_demo

    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="keepalive-demo-"))
    summary = run_demo(workdir, headless=args.headless, kills=args.kills,
                       stream=sys.stderr if args.json else None)
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    else:
        same = "identical to" if summary["result_identical"] else "DIFFERENT from"
        print(f"demo {'finished' if summary['done'] else 'did NOT finish'}: {summary['kills']} disconnects, "
              f"{summary['recoveries']} recoveries, {summary['seconds']} s; result {same} an uninterrupted run; "
              f"files in {workdir}")
    return 0 if summary["done"] and summary["result_identical"] else 1


COMMANDS = {"run": cmd_run, "status": cmd_status, "doctor": cmd_doctor, "notebook": cmd_notebook,
            "service": cmd_service, "demo": cmd_demo}
EXIT_BAD_INPUT, EXIT_CRASHED, EXIT_SIGNAL = 2, 3, 130


def _interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if hasattr(signal, "SIGTERM"):  # a SIGTERM ends every command like Ctrl+C: the browser is closed on the way out
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        code = COMMANDS[args.command](args)
    except (config.ConfigError, BrowserError, AlreadyRunning) as exc:
        print(f"keepalive: {exc}", file=sys.stderr)
        code = EXIT_BAD_INPUT
    except KeyboardInterrupt:
        code = EXIT_SIGNAL
    if getattr(args, "service", False) and code != EXIT_CRASHED:
        return 0  # the service manager starts it again only after a crash
    return code
