"""What the server's maintenance commands share (`nbtrack server compact`, `nbtrack server gc`):
their options (the store, the server's files, a grace age, a dry run) and their opening (the
server's libraries present, the age read, the store and files resolved as the server does)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Maintenance", "add_maintenance_command", "open_maintenance"]

DEFAULT_AGE = "1d"


@dataclass(frozen=True, slots=True)
class Maintenance:
    url: str  # the store's database
    files: Path | str  # the server's files: a folder, or s3://BUCKET/PREFIX
    cutoff: float  # unix time: only what was last written before it


def add_maintenance_command(
    subcommands: argparse._SubParsersAction[argparse.ArgumentParser],
    store_options: Callable[[argparse.ArgumentParser, str], None],
    name: str,
    *,
    about: str,
    docs: str,
    whose: str,
    age: str,
    dry_run: str,
) -> argparse.ArgumentParser:
    """The subcommand `name` with the options every maintenance command takes; age says what
    --older-than spares, dry_run what --dry-run does."""
    parser = subcommands.add_parser(name, help=about, description=f"{about} ({docs})")
    store_options(parser, whose)
    parser.add_argument(
        "--files",
        metavar="FOLDER|s3://BUCKET/PREFIX",
        default=argparse.SUPPRESS,
        help="the server's --files (default ROOT/files)",
    )
    parser.add_argument(
        "--older-than",
        metavar="AGE",
        default=DEFAULT_AGE,
        help=f"{age}, e.g. 90s, 30m, 12h, 7d (default {DEFAULT_AGE})",
    )
    parser.add_argument("--dry-run", action="store_true", help=dry_run)
    return parser


def open_maintenance(args: argparse.Namespace, command: str) -> Maintenance | int:
    """The store, files and cutoff args name, or the exit code after saying what is wrong."""
    try:
        from nbtrack.server.compaction import parse_duration
        from nbtrack.server.config import resolve_store
    except ImportError as exc:
        print(
            f"{command}: {exc.name or 'a library'} is missing; install the server with: "
            "pip install 'nbtrack[server]'",
            file=sys.stderr,
        )
        return 2
    try:
        age = parse_duration(args.older_than)
    except ValueError as exc:
        print(f"{command}: --older-than {exc}", file=sys.stderr)
        return 2
    url, files = resolve_store(args.dir, args.db, getattr(args, "files", None))
    return Maintenance(url, files, time.time() - age)
