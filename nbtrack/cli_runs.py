"""`nbtrack run`: rename a run, edit its notes and tags, delete runs, in a folder or on a server.

    nbtrack run rename PROJECT/RUN_ID "new name"
    nbtrack run edit PROJECT/RUN_ID --notes "..." --add-tag best --remove-tag draft
    nbtrack run delete PROJECT/RUN_ID [...] [--yes] [--force]

A delete asks for confirmation on a terminal; without one (a script, a pipe) it is refused unless
--yes says it was meant. Paths are nbtrack.Api's ("project/run_id" or "entity/project/run_id").
"""

from __future__ import annotations

import argparse
import os
import sys
from shlex import quote
from typing import TYPE_CHECKING, TextIO

from nbtrack.cli_server import DEFAULT_ROOT_HELP
from nbtrack.errors import UsageError

if TYPE_CHECKING:
    from nbtrack.api import Api, StoredRun

__all__ = ["add_run_parser"]


def add_run_parser(run: argparse.ArgumentParser) -> None:
    """The `run` command's subcommands, on the parser cli.py made for it."""
    commands = run.add_subparsers(dest="run_command", metavar="COMMAND", required=True)
    rename = commands.add_parser("rename", help="give a run a new name", description="give a run a new name")
    rename.add_argument("path", metavar="PATH", help="the run: 'project/run_id' or 'entity/project/run_id'")
    rename.add_argument("name", metavar="NAME", help="the run's new name")
    _target_options(rename)
    rename.set_defaults(func=_rename)

    edit = commands.add_parser(
        "edit", help="set a run's notes and tags", description="set a run's notes and tags"
    )
    edit.add_argument("path", metavar="PATH", help="the run: 'project/run_id' or 'entity/project/run_id'")
    edit.add_argument("--notes", help="the run's notes (replaced; '' clears them)")
    edit.add_argument("--tags", help="the run's tags, comma-separated (replaced; '' clears them)")
    edit.add_argument("--add-tag", action="append", default=[], metavar="TAG", help="add a tag (repeatable)")
    edit.add_argument(
        "--remove-tag", action="append", default=[], metavar="TAG", help="remove a tag (repeatable)"
    )
    _target_options(edit)
    edit.set_defaults(func=_edit)

    delete = commands.add_parser(
        "delete",
        help="delete runs with their history, console lines, files and logs",
        description="delete runs with their history, console lines, files and logs "
        "(asks first on a terminal)",
    )
    delete.add_argument(
        "paths", nargs="+", metavar="PATH", help="'project/run_id' or 'entity/project/run_id'"
    )
    delete.add_argument(
        "-y", "--yes", action="store_true", help="do not ask; needed when stdin is no terminal"
    )
    delete.add_argument(
        "--force", action="store_true", help="delete a run whose state is still running (its process is gone)"
    )
    _target_options(delete)
    delete.set_defaults(func=_delete)


def _target_options(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--dir", metavar="ROOT", help=f"nbtrack root whose runs to change {DEFAULT_ROOT_HELP}")
    where.add_argument("--base-url", help="a tracking server instead (default $NBTRACK_BASE_URL)")
    parser.add_argument("--api-key", help="the server's API key (default $NBTRACK_API_KEY)")


def _api(args: argparse.Namespace) -> Api:
    from nbtrack.api import Api
    from nbtrack.settings import resolve_root

    base_url = None if args.dir else args.base_url or os.environ.get("NBTRACK_BASE_URL") or None
    if base_url is not None:
        return Api(base_url=base_url, api_key=args.api_key)
    return Api(dir=resolve_root(args.dir or None))


def _find(api: Api, path: str) -> StoredRun:
    """api.run(path), but a missing run's message names `nbtrack runs` (the API's names Api().runs)."""
    from nbtrack.api import RunNotFoundError

    try:
        return api.run(path)
    except RunNotFoundError as error:
        if error.project is None or api.dir is None:
            raise  # `nbtrack runs` reads a local store only: no command of its own to suggest
        raise RunNotFoundError(
            f"{error.missing}; `nbtrack runs {quote(error.project)} --dir {quote(str(api.dir))}` "
            "lists the runs there"
        ) from None


def _rename(args: argparse.Namespace) -> int:
    with _api(args) as api:
        run = _find(api, args.path)
        before = run.name
        run.name = args.name
        run.update()
        print(f"renamed {run.path}: {before!r} -> {run.name!r}")
    return 0


def _edit(args: argparse.Namespace) -> int:
    if args.notes is None and args.tags is None and not args.add_tag and not args.remove_tag:
        raise ValueError("nothing to change: give --notes, --tags, --add-tag or --remove-tag")
    with _api(args) as api:
        run = _find(api, args.path)
        if args.notes is not None:
            run.notes = args.notes
        tags = run.tags if args.tags is None else [tag.strip() for tag in args.tags.split(",") if tag.strip()]
        tags = [tag for tag in [*tags, *args.add_tag] if tag not in args.remove_tag]
        run.tags = tags
        run.update()
        print(f"{run.path}: tags {', '.join(run.tags) or '(none)'}; notes {_short(run.notes)}")
    return 0


def _delete(args: argparse.Namespace) -> int:
    with _api(args) as api:
        runs = [_find(api, path) for path in args.paths]  # every path checked before anything is deleted
        running = [run.path for run in runs if run.state == "running"]
        if running and not args.force:
            from nbtrack.run_manage import running_refusal

            raise UsageError(running_refusal(", ".join(running), force=False) or "")
        if not args.yes:
            if not sys.stdin.isatty():
                print(
                    "nbtrack run delete: stdin is not a terminal, so nobody can confirm; "
                    "pass --yes to delete without asking",
                    file=sys.stderr,
                )
                return 2
            if not _confirm(runs, api, sys.stdin, sys.stderr):
                print("nothing deleted")
                return 1
        for run in runs:
            run.delete(force=args.force)
            print(f"deleted {run.path} ({run.name})")
    return 0


def _confirm(runs: list[StoredRun], api: Api, answers: TextIO, out: TextIO) -> bool:
    where = api.base_url or str(api.dir)
    for run in runs:
        rows = run.row.history_line_count
        print(f"  {run.path}  {run.name!r}  {run.state}, {rows} history rows", file=out)
    what = "this run" if len(runs) == 1 else f"these {len(runs)} runs"
    print(
        f"Delete {what} from {where}, with every row, file and log of it? [y/N] ",
        end="",
        file=out,
        flush=True,
    )
    answer = answers.readline().strip().lower()
    return answer in ("y", "yes")


def _short(text: str | None) -> str:
    if not text:
        return "(none)"
    line = text.splitlines()[0]
    return repr(line[:60] + ("..." if len(line) > 60 or "\n" in text else ""))
