"""`nbtrack server compact`: finished runs' histories moved from the database into parquet files
in the server's files (server/compaction.py does it; this is its arguments and its report)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from nbtrack.cli_maintenance import add_maintenance_command, open_maintenance

__all__ = ["add_compact_command"]


def add_compact_command(
    subcommands: argparse._SubParsersAction[argparse.ArgumentParser],
    store_options: Callable[[argparse.ArgumentParser, str], None],
) -> None:
    compact = add_maintenance_command(
        subcommands,
        store_options,
        "compact",
        about="move the histories of runs that ended into parquet files in the server's files",
        docs="docs/scaling.md",
        whose="whose runs to compact",
        age="only runs last written at least AGE ago",
        dry_run="list the runs it would compact, change nothing",
    )
    compact.set_defaults(func=_compact)


def _compact(args: argparse.Namespace) -> int:
    opened = open_maintenance(args, "nbtrack server compact")
    if isinstance(opened, int):
        return opened
    from nbtrack.server.compaction import Compactor
    from nbtrack.server.file_backend import open_file_backend
    from nbtrack.store import Store
    from nbtrack.tables import render_table

    with Store(opened.url) as store:
        outcomes = Compactor(store, open_file_backend(opened.files)).compact(
            opened.cutoff, dry_run=args.dry_run
        )
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
