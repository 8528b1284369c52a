"""`nbtrack server` and `nbtrack server key create|list`: their arguments and what they run."""

from __future__ import annotations

import argparse
import errno
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nbtrack.store import Store

__all__ = ["DEFAULT_ROOT_HELP", "add_server_command"]

# How every command's --dir help says where the root is when not given (settings.resolve_root).
DEFAULT_ROOT_HELP = "(default $NBTRACK_DIR or ./.nbtrack)"

# `key` is an optional subcommand: without it `nbtrack server` serves. argparse's own usage line
# would show `key ...` as if it were required.
_SERVER_USAGE = """\
%(prog)s [-h] [--host HOST] [--port PORT] [--dir ROOT | --db URL] [options]
       %(prog)s key {create,list} ...
       %(prog)s compact [--older-than AGE] [--dry-run] [--dir ROOT | --db URL] [--files ...]
       %(prog)s gc [--older-than AGE] [--dry-run] [--dir ROOT | --db URL] [--files ...]"""
_SERVER_EPILOG = """\
API keys (instead of serving):
  nbtrack server key create ENTITY   print a new API key acting as ENTITY
  nbtrack server key list            list the keys by prefix
  (--dir ROOT or --db URL after them: the store that holds the keys)

Compacting finished runs' histories into parquet files (instead of serving):
  nbtrack server compact             runs ended over a day ago (--older-than AGE, --dry-run)

Freeing artifact files no version references (instead of serving):
  nbtrack server gc                  older than a day (--older-than AGE, --dry-run first)"""


def add_server_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `server` (and its `key` subcommands) to `nbtrack`'s subcommands (add_subparsers()'s action)."""
    server = commands.add_parser(
        "server",
        help="serve runs over HTTP (the W&B wire protocol) to online runs and clients",
        description="serve a store over HTTP (the W&B wire protocol) to online runs, clients\nand the web UI",
        usage=_SERVER_USAGE,
        epilog=_SERVER_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _server_parser(server)


def _server_parser(server: argparse.ArgumentParser) -> None:
    server.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    server.add_argument(
        "--port", type=int, default=8080, help="port to listen on (default 8080; 0: any free)"
    )
    _store_options(server, "whose store to serve")
    server.add_argument(
        "--files",
        metavar="FOLDER|s3://BUCKET/PREFIX",
        help="where run files live: a folder (default ROOT/files) or an S3-compatible bucket "
        "(endpoint and credentials from the AWS_* variables)",
    )
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
        "--crashed-after",
        type=float,
        metavar="SECONDS",
        help="mark a running run crashed once nothing was heard from it (rows, or the heartbeat a live "
        "client sends every 30 s) for this long; 0: never (default 300)",
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
        "key", help="create or list API keys", description="create or list the server's API keys"
    )
    key_commands = key.add_subparsers(dest="key_command", metavar="COMMAND", required=True)
    about = "print a new API key acting as ENTITY (once a key exists, every request needs one)"
    create = key_commands.add_parser("create", help=about, description=about)
    create.add_argument("entity", metavar="ENTITY", help="the user or team the key acts as")
    _store_options(create, "whose store holds the keys")
    create.set_defaults(func=_key_create)
    about = "list API keys (entity, key prefix, created)"
    listing = key_commands.add_parser("list", help=about, description=about)
    _store_options(listing, "whose store holds the keys")
    listing.set_defaults(func=_key_list)
    from nbtrack.cli_compact import add_compact_command

    add_compact_command(subcommands, _store_options)
    from nbtrack.cli_gc import add_gc_command

    add_gc_command(subcommands, _store_options)


def _store_options(parser: argparse.ArgumentParser, purpose: str) -> None:
    """--dir ROOT | --db URL: the store `purpose` says what for (serving, holding the keys)."""
    # No defaults (SUPPRESS; `server` sets them): an option given before `key create` would be reset.
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--dir", metavar="ROOT", default=argparse.SUPPRESS, help=f"nbtrack root {purpose} {DEFAULT_ROOT_HELP}"
    )
    where.add_argument(
        "--db",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="a database instead of ROOT's SQLite file, e.g. postgresql://user@host/db",
    )


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
        "crashed_after",
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
        return 1  # as any other failure to run (REFUSED, 2, is for a refusal to run as asked)


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
    from nbtrack.tables import format_time, render_table

    with _key_store(args) as store:
        keys = store.list_keys()
    if not keys:
        print("no API keys (open mode on loopback); create one with `nbtrack server key create ENTITY`")
        return 0
    rows = [(k.entity, k.prefix + "...", format_time(k.created_at)) for k in keys]
    print(render_table(["entity", "key", "created"], rows))
    return 0
