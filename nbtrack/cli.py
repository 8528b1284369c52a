"""The `nbtrack` command: demo, runs, dump, sync, server."""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nbtrack.store import ProjectRow, Store
    from nbtrack.sync import SyncReport

__all__ = ["main"]

_DEFAULT_ROOT = "(default $NBTRACK_DIR or ./.nbtrack)"
# `key` is an optional subcommand: without it `nbtrack server` serves. argparse's own usage line
# would show `key ...` as if it were required.
_SERVER_USAGE = """\
%(prog)s [-h] [--host HOST] [--port PORT] [--dir ROOT | --db URL] [options]
       %(prog)s key {create,list} ..."""
_SERVER_EPILOG = """\
API keys (instead of serving):
  nbtrack server key create ENTITY   print a new API key acting as ENTITY
  nbtrack server key list            list the keys by prefix
  (--dir ROOT or --db URL after them: the store that holds the keys)"""


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

        if not isinstance(exc, (_Refusal, NbtrackError, OSError, ValueError, LookupError)):
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
    demo.add_argument("--dir", metavar="ROOT", help=f"nbtrack root the run is written under {_DEFAULT_ROOT}")
    demo.set_defaults(func=_demo)

    runs = command("runs", "list projects, or the runs of PROJECT as a table")
    runs.add_argument(
        "project", nargs="?", metavar="PROJECT", help="'project' or 'entity/project' (default: list projects)"
    )
    runs.add_argument("--dir", metavar="ROOT", help=f"nbtrack root whose store to read {_DEFAULT_ROOT}")
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
        "--dir", metavar="ROOT", help=f"nbtrack root whose store receives the runs {_DEFAULT_ROOT}"
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

    server = commands.add_parser(
        "server",
        help="serve runs over HTTP (the W&B wire protocol) to online runs and clients",
        description="Serve a store over HTTP (the W&B wire protocol) to online runs, clients\n"
        "and the web UI.",
        usage=_SERVER_USAGE,
        epilog=_SERVER_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _server_parser(server)
    return parser


def _server_parser(server: argparse.ArgumentParser) -> None:
    server.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    server.add_argument(
        "--port", type=int, default=8080, help="port to listen on (default 8080; 0: any free)"
    )
    _store_options(server, "whose store to serve")
    server.add_argument("--files", metavar="FOLDER", help="folder of uploaded run files (default ROOT/files)")
    server.add_argument(
        "--max-body", type=int, metavar="BYTES", help="largest JSON body in bytes (default 64 MiB)"
    )
    server.add_argument(
        "--max-upload", type=int, metavar="BYTES", help="largest uploaded file in bytes (default 1 GiB)"
    )
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
    # prog given: argparse would otherwise build the subcommands' prog from the custom usage text.
    # Listed by the epilog: argparse would list `key` as a positional argument.
    subcommands = server.add_subparsers(
        dest="server_command", metavar="key", help=argparse.SUPPRESS, prog="nbtrack server"
    )
    key = subcommands.add_parser(
        "key", help="create or list API keys", description="Create or list the server's API keys."
    )
    key_commands = key.add_subparsers(dest="key_command", metavar="COMMAND", required=True)
    about = "print a new API key acting as ENTITY (once a key exists, every request needs one)"
    create = key_commands.add_parser("create", help=about, description=about[0].upper() + about[1:] + ".")
    create.add_argument("entity", metavar="ENTITY", help="the user or team the key acts as")
    _store_options(create, "whose store holds the keys")
    create.set_defaults(func=_key_create)
    about = "list API keys (entity, key prefix, created)"
    listing = key_commands.add_parser("list", help=about, description=about[0].upper() + about[1:] + ".")
    _store_options(listing, "whose store holds the keys")
    listing.set_defaults(func=_key_list)


def _store_options(parser: argparse.ArgumentParser, purpose: str) -> None:
    """--dir ROOT | --db URL: the store `purpose` says what for (serving, holding the keys)."""
    # No defaults (SUPPRESS; `server` sets them): an option given before `key create` would be reset.
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--dir", metavar="ROOT", default=argparse.SUPPRESS, help=f"nbtrack root {purpose} {_DEFAULT_ROOT}"
    )
    where.add_argument(
        "--db",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="a database instead of ROOT's SQLite file, e.g. postgresql://user@host/db",
    )


def _root(dir: str | None) -> Path:
    from nbtrack.settings import resolve_root

    return resolve_root(dir or None)


def _demo(args: argparse.Namespace) -> int:
    from nbtrack.demo import run_demo

    return run_demo(sys.stdout, steps=args.steps, dir=args.dir)


def _runs(args: argparse.Namespace) -> int:
    from nbtrack.api import Api
    from nbtrack.store import DB_FILENAME
    from nbtrack.tables import render_table, runs_table

    root = _root(args.dir)
    # Checked here rather than by Api(), whose message speaks of its dir= argument.
    if not (root / DB_FILENAME).is_file():
        raise _Refusal(
            f"no runs were found under {root}: run `nbtrack demo` to make some, or pass --dir "
            "with the folder that holds your runs (or set $NBTRACK_DIR)"
        )
    with Api(dir=root) as api:
        projects = api.projects()
        if args.project is None:
            if not projects:
                print("no projects yet: run `nbtrack demo`")
                return 0
            rows = [(f"{p.entity}/{p.name}", p.run_count, _when(p.last_activity)) for p in projects]
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
        raise _Refusal(f"no project {args.project!r} under {root}; {_project_list(projects)}")


class _Refusal(Exception):
    """A command that cannot do what was asked: its message is all the user needs (exit 1)."""


def _project_list(projects: Sequence[ProjectRow], shown: int = 10) -> str:
    if not projects:
        return "there are no projects yet"
    names = [f"{p.entity}/{p.name}" for p in projects]
    more = f" and {len(names) - shown} more (`nbtrack runs` lists them)" if len(names) > shown else ""
    return "projects: " + ", ".join(names[:shown]) + more


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
        from nbtrack.server.main import REFUSED, serve
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
    try:
        return serve(server_config(**{name: getattr(args, name) for name in options}))
    except OSError as exc:
        hint = _listen_hint(exc, args.host, args.port)
        if hint is None:
            raise
        print(f"nbtrack server: {hint}", file=sys.stderr)
        return REFUSED


def _listen_hint(exc: OSError, host: str, port: int) -> str | None:
    """What to do when the server cannot listen where asked; None for any other OSError."""
    if exc.errno == errno.EADDRINUSE:
        return (
            f"port {port} on {host} is already in use (another nbtrack server?); stop that one, or "
            "serve on another port with --port PORT (--port 0 picks a free one)"
        )
    if exc.errno == errno.EACCES:
        return (
            f"not allowed to listen on port {port} on {host} (ports below 1024 need privileges); "
            "choose another with --port PORT"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {host}: no network interface of this machine has that address (--host)"
    return None


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
