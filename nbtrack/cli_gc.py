"""`nbtrack server gc`: artifact storage no version needs freed from the server's files
(server/artifact_gc.py does it; this is its arguments and its report)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

__all__ = ["add_gc_command"]

_DEFAULT_AGE = "1d"


def add_gc_command(
    subcommands: argparse._SubParsersAction[argparse.ArgumentParser],
    store_options: Callable[[argparse.ArgumentParser, str], None],
) -> None:
    about = (
        "free the artifact files no version references (deleted versions', uploads never "
        "committed) and PENDING versions never committed"
    )
    gc = subcommands.add_parser("gc", help=about, description=about + " (docs/wandb-compat.md)")
    store_options(gc, "whose artifacts to collect")
    gc.add_argument(
        "--files",
        metavar="FOLDER|s3://BUCKET/PREFIX",
        default=argparse.SUPPRESS,
        help="the server's --files (default ROOT/files)",
    )
    gc.add_argument(
        "--older-than",
        metavar="AGE",
        default=_DEFAULT_AGE,
        help="grace age: only what was last written or claimed at least AGE ago, and PENDING "
        f"versions created AGE ago, e.g. 90s, 30m, 12h, 7d (default {_DEFAULT_AGE})",
    )
    gc.add_argument("--dry-run", action="store_true", help="report what it would free, change nothing")
    gc.set_defaults(func=_gc)


def _gc(args: argparse.Namespace) -> int:
    try:
        from nbtrack.server.artifact_gc import ArtifactGc, GcError
        from nbtrack.server.compaction import parse_duration
        from nbtrack.server.config import resolve_store
        from nbtrack.server.file_backend import open_file_backend
        from nbtrack.store import Store
    except ImportError as exc:
        print(
            f"nbtrack server gc: {exc.name or 'a library'} is missing; "
            "install the server with: pip install 'nbtrack[server]'",
            file=sys.stderr,
        )
        return 2
    try:
        age = parse_duration(args.older_than)
    except ValueError as exc:
        print(f"nbtrack server gc: --older-than {exc}", file=sys.stderr)
        return 2
    url, files = resolve_store(args.dir, args.db, getattr(args, "files", None))
    with Store(url) as store:
        try:
            report = ArtifactGc(store, open_file_backend(files)).run(time.time() - age, dry_run=args.dry_run)
        except GcError as exc:
            print(f"nbtrack server gc: {exc}", file=sys.stderr)
            return 1
    verb = "would free" if args.dry_run else "freed"
    print(
        f"{verb} {report.objects:,} object(s), {report.freed_bytes:,} bytes: "
        f"{report.blobs:,} unreferenced blob(s) ({report.blob_bytes:,} bytes), "
        f"{report.orphans:,} orphan object(s) ({report.orphan_bytes:,} bytes); "
        f"{report.pending:,} PENDING version(s) never committed removed"
        + (f"; {report.missing:,} record(s) of lost blobs dropped" if report.missing else "")
        + (" (dry run: nothing changed)" if args.dry_run else "")
    )
    return 0
