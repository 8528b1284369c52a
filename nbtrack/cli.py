"""The `nbtrack` command: demo, runs, run (cli_runs.py), dump, sync, server."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nbtrack.store import Store
    from nbtrack.sync import SyncReport

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

    sync = command(
        "sync", "replay transaction logs (a file or a folder of them) into the store or to a tracking server"
    )
    sync.add_argument("path", type=Path)
    target = sync.add_mutually_exclusive_group()
    target.add_argument(
        "--dir", help="nbtrack root whose store receives the runs (default $NBTRACK_DIR or ./.nbtrack)"
    )
    target.add_argument("--base-url", help="a tracking server to deliver to (default $NBTRACK_BASE_URL)")
    sync.add_argument("--api-key", help="the server's API key (default $NBTRACK_API_KEY)")
    sync.add_argument(
        "--wait",
        type=float,
        metavar="SECONDS",
        help="how long to wait for the process of a run still being written before refusing its log "
        "(default 5)",
    )
    sync.add_argument(
        "--project",
        help="the run's project ('project' or 'entity/project') for a log whose run record is damaged, "
        "if neither its other segments nor the destination know the run",
    )
    sync.set_defaults(func=_sync)

    from nbtrack.cli_runs import add_run_parser

    add_run_parser(command("run", "rename a run, edit its notes and tags, or delete runs"))

    _server_parser(
        command("server", "serve runs over HTTP (the W&B wire protocol) to online runs and clients")
    )
    return parser


def _server_parser(server: argparse.ArgumentParser) -> None:
    server.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    server.add_argument(
        "--port", type=int, default=8080, help="port to listen on (default 8080; 0: any free)"
    )
    _store_options(server)
    server.add_argument("--files", help="folder of uploaded run files (default ROOT/files)")
    server.add_argument("--max-body", type=int, help="largest JSON body in bytes (default 64 MiB)")
    server.add_argument("--max-upload", type=int, help="largest uploaded file in bytes (default 1 GiB)")
    server.add_argument(
        "--rate-limit",
        type=float,
        metavar="PER_SECOND",
        help="requests a second per entity (or per address without a key) to /graphql and /files; "
        "0: no limit (default 100)",
    )
    server.add_argument(
        "--rate-burst",
        type=float,
        metavar="REQUESTS",
        help="requests at once beyond the rate (default 4 s worth)",
    )
    server.add_argument(
        "--body-timeout",
        type=float,
        metavar="SECONDS",
        help="longest wait for a request's head or the next piece of its body (default 30)",
    )
    server.add_argument(
        "--allowed-host",
        action="append",
        dest="allowed_hosts",
        metavar="NAME",
        help="a host name (or address) clients may reach the server by besides localhost and "
        "127.0.0.1, e.g. a reverse proxy's public name; repeatable",
    )
    server.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        help="server log level (default warning)",
    )
    server.set_defaults(func=_server, dir=None, db=None)
    key = server.add_subparsers(dest="server_command", metavar="key").add_parser(
        "key", help="manage API keys", description="manage API keys"
    )
    key_commands = key.add_subparsers(dest="key_command", metavar="COMMAND", required=True)
    create = key_commands.add_parser("create", help="print a new API key acting as ENTITY")
    create.add_argument("entity")
    _store_options(create)
    create.set_defaults(func=_key_create)
    listing = key_commands.add_parser("list", help="list API keys (entity, key prefix, created)")
    _store_options(listing)
    listing.set_defaults(func=_key_list)


def _store_options(parser: argparse.ArgumentParser) -> None:
    # No defaults (SUPPRESS; `server` sets them): an option given before `key create` would be reset.
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--dir", default=argparse.SUPPRESS, help="nbtrack root whose store to serve (default ./.nbtrack)"
    )
    where.add_argument(
        "--db", default=argparse.SUPPRESS, help="database URL instead, e.g. postgresql://host/db"
    )


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
        print(_sync_line(report))
        if report.error:
            status = 1
        else:
            synced += 1
    print(f"synced to {where}" if synced else f"nothing synced to {where}")
    return status


def _sync_line(report: SyncReport) -> str:
    """One line saying what a log delivered, what it could not and why."""
    if report.error and not report.run:  # nothing delivered, and not even the run is known
        return f"{report.path}: error: {report.error}"
    line = f"{report.path}: {report.run or '?'} {report.rows} rows, {report.state or 'unknown'}"
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


def _say(message: str) -> None:
    print(f"nbtrack sync: {message}", file=sys.stderr)


def _server(args: argparse.Namespace) -> int:
    from nbtrack.server.config import server_config

    try:
        from nbtrack.server.main import serve
    except ImportError as exc:  # the server's libraries are an extra: say which install brings them
        print(
            f"nbtrack server: {exc.name or 'a library'} is missing; "
            "install the server with: pip install 'nbtrack[server]'",
            file=sys.stderr,
        )
        return 2

    options = (
        "host",
        "port",
        "dir",
        "db",
        "files",
        "max_body",
        "max_upload",
        "rate_limit",
        "rate_burst",
        "body_timeout",
        "log_level",
        "allowed_hosts",
    )
    return serve(server_config(**{name: getattr(args, name) for name in options}))


def _key_store(args: argparse.Namespace) -> Store:
    from nbtrack.server.config import resolve_store
    from nbtrack.store import Store

    url, _files = resolve_store(args.dir, args.db, None)
    return Store(url)


def _key_create(args: argparse.Namespace) -> int:
    from nbtrack.server.names import check_name

    with _key_store(args) as store:
        print(store.create_key(check_name(args.entity, "entity")))
    return 0


def _key_list(args: argparse.Namespace) -> int:
    from nbtrack.tables import render_table

    with _key_store(args) as store:
        keys = store.list_keys()
    if not keys:
        print("no API keys (open mode on loopback); create one with `nbtrack server key create ENTITY`")
        return 0
    rows = [(k.entity, k.prefix + "...", _when(k.created_at)) for k in keys]
    print(render_table(["entity", "key", "created"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
