"""`nbtrack server gc`: artifact storage no version needs freed from the server's files
(server/artifact_gc.py does it; this is its arguments and its report)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from nbtrack.cli_maintenance import add_maintenance_command, open_maintenance

__all__ = ["add_gc_command"]


def add_gc_command(
    subcommands: argparse._SubParsersAction[argparse.ArgumentParser],
    store_options: Callable[[argparse.ArgumentParser, str], None],
) -> None:
    gc = add_maintenance_command(
        subcommands,
        store_options,
        "gc",
        about="free the artifact files no version references (deleted versions', uploads never "
        "committed) and PENDING versions never committed",
        docs="docs/wandb-compat.md",
        whose="whose artifacts to collect",
        age="grace age: only what was last written or claimed at least AGE ago, and PENDING "
        "versions created AGE ago",
        dry_run="report what it would free, change nothing",
    )
    gc.set_defaults(func=_gc)


def _gc(args: argparse.Namespace) -> int:
    opened = open_maintenance(args, "nbtrack server gc")
    if isinstance(opened, int):
        return opened
    from nbtrack.server.artifact_gc import ArtifactGc, GcError
    from nbtrack.server.file_backend import open_file_backend
    from nbtrack.store import Store

    with Store(opened.url) as store:
        try:
            report = ArtifactGc(store, open_file_backend(opened.files)).run(
                opened.cutoff, dry_run=args.dry_run
            )
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
