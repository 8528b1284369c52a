"""The `nbtrack` command: demo, runs, dump, sync."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one clear line for the user, not a traceback
        from nbtrack.errors import NbtrackError

        if not isinstance(exc, (NbtrackError, OSError, ValueError, LookupError)):
            raise
        print(f"nbtrack {args.command}: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nbtrack", description="An experiment tracker that lives in Jupyter."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        return sub

    demo = command("demo", "run a short simulated training in local mode and read its summary back")
    demo.add_argument("--steps", type=int, default=2000, help="steps to log (default 2000)")
    demo.add_argument("--dir", help="nbtrack root (default $NBTRACK_DIR or ./.nbtrack)")
    demo.set_defaults(func=_demo)

    runs = command("runs", "list projects, or the runs of PROJECT ('project' or 'entity/project')")
    runs.add_argument("project", nargs="?")
    runs.add_argument("--dir", help="nbtrack root (default $NBTRACK_DIR or ./.nbtrack)")
    runs.set_defaults(func=_runs)

    dump = command("dump", "print a transaction log's records as JSON lines")
    dump.add_argument("path", type=Path)
    dump.set_defaults(func=_dump)

    sync = command("sync", "replay transaction logs (a file or a folder of them) into the store")
    sync.add_argument("path", type=Path)
    sync.add_argument(
        "--dir", help="nbtrack root whose store receives the runs (default $NBTRACK_DIR or ./.nbtrack)"
    )
    sync.set_defaults(func=_sync)
    return parser


def _root(dir: str | None) -> Path:
    from nbtrack.settings import resolve_root

    return resolve_root(dir or None)


def _demo(args: argparse.Namespace) -> int:
    from nbtrack.demo import run_demo

    return run_demo(sys.stdout, steps=args.steps, dir=args.dir)


def _runs(args: argparse.Namespace) -> int:
    from nbtrack.api import Api
    from nbtrack.tables import render_table, runs_table

    api = Api(dir=_root(args.dir))
    if args.project is None:
        projects = api.projects()
        if not projects:
            print("no projects yet: run `nbtrack demo`")
            return 0
        rows = [(f"{p.entity}/{p.name}", p.run_count, _when(p.last_activity)) for p in projects]
        print(render_table(["project", "runs", "last activity"], rows))
        return 0
    runs = api.runs(args.project)
    print(runs_table(runs) if runs else f"no runs in {args.project}")
    return 0


def _when(timestamp: float | None) -> str:
    import time

    return "-" if timestamp is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


def _dump(args: argparse.Namespace) -> int:
    from nbtrack.internal.dump import dump

    dump(args.path, sys.stdout, sys.stderr)
    return 0


def _sync(args: argparse.Namespace) -> int:
    from nbtrack.settings import store_url
    from nbtrack.sync import find_logs, sync_log

    root = _root(args.dir)
    status = 0
    for path in find_logs(args.path):
        report = sync_log(path, store_url(root))
        line = f"{path}: {report.run or '?'} {report.rows} rows, {report.state or 'unknown'}"
        if not report.complete and report.run:
            line += " (the log ends without an exit record: marked crashed)"
        if report.corruption:
            skipped = sum(c.length for c in report.corruption)
            line += f"; {len(report.corruption)} damaged ranges ({skipped} bytes) skipped"
        if report.error:
            line += f"; error: {report.error}"
            status = 1
        print(line)
    print(f"synced into {root / 'nbtrack.db'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
