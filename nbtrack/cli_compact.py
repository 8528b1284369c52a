"""`nbtrack server compact`: finished runs' histories moved from the database into parquet files
in the server's files (server/compaction.py does it; this is its arguments and its report)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

__all__ = ["add_compact_command"]

_DEFAULT_AGE = "1d"


def add_compact_command(
    subcommands: argparse._SubParsersAction[argparse.ArgumentParser],
    store_options: Callable[[argparse.ArgumentParser, str], None],
) -> None:
    about = "move the histories of runs that ended into parquet files in the server's files"
    compact = subcommands.add_parser("compact", help=about, description=about + " (docs/scaling.md)")
    store_options(compact, "whose runs to compact")
    compact.add_argument(
        "--files",
        metavar="FOLDER|s3://BUCKET/PREFIX",
        default=argparse.SUPPRESS,
        help="the server's --files (default ROOT/files)",
    )
    compact.add_argument(
        "--older-than",
        metavar="AGE",
        default=_DEFAULT_AGE,
        help=f"only runs last written at least AGE ago, e.g. 90s, 30m, 12h, 7d (default {_DEFAULT_AGE})",
    )
    compact.add_argument(
        "--dry-run", action="store_true", help="list the runs it would compact, change nothing"
    )
    compact.set_defaults(func=_compact)


def _compact(args: argparse.Namespace) -> int:
    try:
        from nbtrack.server.compaction import Compactor, parse_duration
        from nbtrack.server.config import resolve_store
        from nbtrack.server.file_backend import open_file_backend
        from nbtrack.store import Store
        from nbtrack.tables import render_table
    except ImportError as exc:
        print(
            f"nbtrack server compact: {exc.name or 'a library'} is missing; "
            "install the server with: pip install 'nbtrack[server]'",
            file=sys.stderr,
        )
        return 2
    try:
        age = parse_duration(args.older_than)
    except ValueError as exc:
        print(f"nbtrack server compact: --older-than {exc}", file=sys.stderr)
        return 2
    url, files = resolve_store(args.dir, args.db, getattr(args, "files", None))
    with Store(url) as store:
        compactor = Compactor(store, open_file_backend(files))
        outcomes = compactor.compact(time.time() - age, dry_run=args.dry_run)
    if not outcomes:
        print(f"no run to compact: none ended over {args.older_than} ago with history rows in the database")
        return 0
    rows = [
        (
            o.path,
            o.result,
            f"{o.rows:,}" if o.rows else "",
            f"{o.size / 1e6:,.1f} MB" if o.size else "",
            o.detail,
        )
        for o in outcomes
    ]
    # The reasons are sentences: not cut at a table cell's width.
    print(render_table(["run", "result", "rows", "parquet", "why"], rows, max_width=200))
    return 1 if any(o.result == "failed" for o in outcomes) else 0
