"""The `nbtrack` command: demo, runs, run (cli_runs.py), dump, sync, and server (cli_server.py)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from nbtrack.cli_server import DEFAULT_ROOT_HELP, add_server_command

if TYPE_CHECKING:
    from nbtrack.store import ProjectRow
    from nbtrack.sync import SyncReport

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # The reader of our output went away (`nbtrack dump LOG | head`): that is its choice, not
        # an error. Whatever is still buffered goes nowhere, so the exit is quiet too.
        _stdout_to_devnull()
        return 0


def _main(argv: Sequence[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:  # a bare `nbtrack`: what there is to do
        parser.print_help()
        sys.stdout.flush()
        return 0
    try:
        status = int(args.func(args))
        sys.stdout.flush()  # a reader gone shows here, not in the interpreter's exit
        return status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        raise
    except Exception as exc:  # one clear line for the user, not a traceback
        from nbtrack.errors import NbtrackError

        if not isinstance(exc, (NbtrackError, OSError, ValueError, LookupError)):
            raise
        print(f"nbtrack {args.command}: {exc}", file=sys.stderr)
        return 1


def _stdout_to_devnull() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real stdout (replaced by a test, closed): nothing to flush
        pass


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nbtrack")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed as a package)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nbtrack", description="An experiment tracker that lives in Jupyter."
    )
    parser.add_argument("--version", action="version", version=f"nbtrack {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        return sub

    demo = command("demo", "run a short simulated training in local mode and read its summary back")
    demo.add_argument("--steps", type=int, default=2000, metavar="N", help="steps to log (default 2000)")
    demo.add_argument(
        "--dir", metavar="ROOT", help=f"nbtrack root the run is written under {DEFAULT_ROOT_HELP}"
    )
    demo.set_defaults(func=_demo)

    runs = command("runs", "list projects, or the runs of PROJECT as a table")
    runs.add_argument(
        "project", nargs="?", metavar="PROJECT", help="'project' or 'entity/project' (default: list projects)"
    )
    runs.add_argument("--dir", metavar="ROOT", help=f"nbtrack root whose store to read {DEFAULT_ROOT_HELP}")
    runs.set_defaults(func=_runs)

    dump = command("dump", "print a transaction log's records as JSON lines (damage reported on stderr)")
    dump.add_argument("path", type=Path, metavar="LOG", help="a transaction log (a run's *.nbt file)")
    dump.set_defaults(func=_dump)

    sync = command(
        "sync", "replay transaction logs (a file or a folder of them) into the store or to a tracking server"
    )
    sync.add_argument(
        "path", type=Path, metavar="PATH", help="a transaction log (*.nbt), or a folder searched for them"
    )
    target = sync.add_mutually_exclusive_group()
    target.add_argument(
        "--dir", metavar="ROOT", help=f"nbtrack root whose store receives the runs {DEFAULT_ROOT_HELP}"
    )
    target.add_argument(
        "--base-url",
        metavar="URL",
        help="a tracking server to deliver to instead (default $NBTRACK_BASE_URL)",
    )
    sync.add_argument("--api-key", metavar="KEY", help="the server's API key (default $NBTRACK_API_KEY)")
    sync.add_argument(
        "--wait",
        type=float,
        metavar="SECONDS",
        help="how long to wait for the process of a run still being written before refusing its log "
        "(default 5)",
    )
    sync.add_argument(
        "--project",
        metavar="PROJECT",
        help="the run's project ('project' or 'entity/project') for a log whose run record is damaged, "
        "if neither its other segments nor the destination know the run",
    )
    sync.set_defaults(func=_sync)

    from nbtrack.cli_runs import add_run_parser

    add_run_parser(command("run", "rename a run, edit its notes and tags, or delete runs"))
    add_server_command(commands)
    return parser


def _root(dir: str | None) -> Path:
    from nbtrack.settings import resolve_root

    return resolve_root(dir or None)


def _demo(args: argparse.Namespace) -> int:
    from nbtrack.demo import run_demo

    return run_demo(sys.stdout, steps=args.steps, dir=args.dir)


def _runs(args: argparse.Namespace) -> int:
    from nbtrack.api import Api
    from nbtrack.errors import UsageError
    from nbtrack.store import DB_FILENAME
    from nbtrack.tables import format_time, render_table, runs_table

    root = _root(args.dir)
    # Checked here rather than by Api(), whose message speaks of its dir= argument.
    if not (root / DB_FILENAME).is_file():
        raise UsageError(
            f"no runs were found under {root}: run `nbtrack demo` to make some, or pass --dir "
            "with the folder that holds your runs (or set $NBTRACK_DIR)"
        )
    with Api(dir=root) as api:
        projects = api.projects()
        if args.project is None:
            if not projects:
                print("no projects yet: run `nbtrack demo`")
                return 0
            rows = [(f"{p.entity}/{p.name}", p.run_count, format_time(p.last_activity)) for p in projects]
            print(render_table(["project", "runs", "last activity"], rows))
            return 0
        runs = api.runs(args.project)
        if runs:
            print(runs_table(runs))
            return 0
        entity, _, name = args.project.rpartition("/")
        if any(p.name == name and entity in ("", p.entity) for p in projects):
            print(f"no runs in {args.project}")  # the project is there, its runs are not (deleted)
            return 0
        raise UsageError(f"no project {args.project!r} under {root}; {_project_list(projects)}")


def _project_list(projects: Sequence[ProjectRow], shown: int = 10) -> str:
    if not projects:
        return "there are no projects yet"
    names = [f"{p.entity}/{p.name}" for p in projects]
    more = f" and {len(names) - shown} more (`nbtrack runs` lists them)" if len(names) > shown else ""
    return "projects: " + ", ".join(names[:shown]) + more


def _dump(args: argparse.Namespace) -> int:
    from nbtrack.internal.dump import dump

    dump(args.path, sys.stdout, sys.stderr)
    return 0


def _sync(args: argparse.Namespace) -> int:
    import os

    from nbtrack.settings import check_base_url, store_url
    from nbtrack.sync import DEFAULT_WAIT, find_logs, sync_log

    wait = DEFAULT_WAIT if args.wait is None else args.wait
    if wait < 0:
        raise ValueError(f"--wait must be 0 or more seconds, not {wait:g}")
    base_url = None if args.dir else args.base_url or os.environ.get("NBTRACK_BASE_URL") or None
    if base_url is not None:
        base_url = check_base_url(base_url)
        api_key = args.api_key or os.environ.get("NBTRACK_API_KEY")
        where = base_url
    else:
        root = _root(args.dir)
        where = str(root / "nbtrack.db")
    status = 0
    synced = 0
    for path in find_logs(args.path):
        if base_url is not None:
            report = sync_log(
                path, base_url=base_url, api_key=api_key, on_notice=_say, wait=wait, project=args.project
            )
        else:
            report = sync_log(path, store_url(root), on_notice=_say, wait=wait, project=args.project)
        _tell(_sync_line(report))
        if report.error:
            status = 1
        else:
            synced += 1
    _tell(f"synced to {where}" if synced else f"nothing synced to {where}")
    return status


def _sync_line(report: SyncReport) -> str:
    """One line saying what a log delivered, what it could not and why."""
    if report.error and not report.run:  # nothing delivered, and not even the run is known
        return f"{report.path}: error: {report.error}"
    state = report.state or ("not (all) delivered" if report.error else "unknown")
    line = f"{report.path}: {report.run or '?'} {report.rows} rows, {state}"
    if report.delivered and not report.complete and report.state == "crashed":
        line += " (the log ends without an exit record: marked crashed)"
    if report.corruption:
        skipped = sum(c.length for c in report.corruption)
        line += f"; {len(report.corruption)} damaged ranges ({skipped} bytes) skipped"
    if report.rows_lost:
        line += (
            f"; {report.rows_lost} rows lost in {report.damaged_ranges} of them "
            "(counted from the steps and record numbers around each; the rows after them keep their lines)"
        )
    if report.rows_unplaced:
        line += f"; {report.rows_unplaced} rows after a damaged range not delivered (their place is unknown)"
    if report.note:
        line += f"; {report.note}"
        if not report.delivered and not report.files:
            line += ": nothing delivered"
    if report.files:
        line += f"; {report.files} run files no record of the log announced (written late) copied"
    if report.error:
        line += f"; error: {report.error}"
    return line


def _tell(line: str) -> None:
    """A line of sync's report. A reader that went away does not stop the sync: every log is
    still delivered, and the exit status still says whether all were."""
    try:
        print(line, flush=True)
    except BrokenPipeError:
        _stdout_to_devnull()


def _say(message: str) -> None:
    print(f"nbtrack sync: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
