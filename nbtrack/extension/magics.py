"""`%nbtrack` (status), `%nbtrack finish [RUN]`, `%nbtrack resume ID`, `%nbtrack code [RUN]`,
`%nbtrack show PROJECT` (the explorer's runs table) and `%%nbtrack [init options]` (a cell-scoped run)."""

from __future__ import annotations

import argparse
import shlex
from typing import TYPE_CHECKING

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class

import nbtrack
from nbtrack.sdk.run import Run
from nbtrack.tables import render_table

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from nbtrack.extension.kernel import KernelTracker

__all__ = ["NBTrackMagics"]

HELP = """\
%nbtrack                     every run started in this kernel, newest first: id, name,
                             project, state, rows, the cell that started it
%nbtrack finish [RUN]        finish RUN (an id or a name), or the current run
%nbtrack code [RUN]          the code that will be stored with RUN (or the current run) when
                             it finishes, if code capture is on (c.NBTrack.save_code = True
                             or init(save_code=True)); nothing is stored otherwise
%nbtrack show PROJECT [--dir D | --base-url URL]
                             the runs of PROJECT as a table under the cell (the
                             store under ./.nbtrack or $NBTRACK_DIR, or a tracking server)
run = %nbtrack resume ID [--project P --mode MODE --dir D]
                             continue the stored run ID (e.g. after a kernel restart):
                             steps go on from its last one
%%nbtrack [options]          run the cell inside its own run: started before the cell,
                             finished after it, failed if the cell raises
    options: --project P --name N --id ID --mode MODE --dir D --tags a,b --notes TEXT
             --group G --job-type J
%nbtrack --help              this text"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}. See %nbtrack --help")


def _init_parser() -> _Parser:
    parser = _Parser(prog="%%nbtrack", add_help=False)
    for option in ("project", "name", "id", "mode", "dir", "tags", "notes", "group", "job-type"):
        parser.add_argument(f"--{option}")
    return parser


def _command_parser(command: str, argument: str, options: tuple[str, ...]) -> _Parser:
    """The parser of `%nbtrack COMMAND ARGUMENT [--OPTION VALUE ...]`."""
    parser = _Parser(prog=f"%nbtrack {command}", add_help=False)
    parser.add_argument(argument)
    for option in options:
        parser.add_argument(f"--{option}")
    return parser


@magics_class
class NBTrackMagics(Magics):
    def __init__(self, shell: InteractiveShell, tracker: KernelTracker) -> None:
        super().__init__(shell)
        self.tracker = tracker

    @line_cell_magic
    def nbtrack(self, line: str, cell: str | None = None) -> Run | None:
        try:
            words = shlex.split(line)
        except ValueError as exc:  # "No closing quotation", "No escaped character"
            raise UsageError(f"%nbtrack: cannot read {line!r}: {exc} (quote each argument fully)") from None
        if "--help" in words or "-h" in words:
            print(HELP)
            return None
        if cell is not None:
            self._cell_run(words, cell)
            return None
        if not words:
            print(self._status())
            return None
        if words[0] == "finish":
            self._finish(words[1:])
            return None
        if words[0] == "resume":
            return self._resume(words[1:])
        if words[0] == "show":
            self._show(words[1:])
            return None
        if words[0] == "code":
            print(self._code(words[1:]))
            return None
        raise UsageError(f"%nbtrack: unknown command {words[0]!r}. See %nbtrack --help")

    def _status(self) -> str:
        """Every run started in this kernel, newest first: live and ended alike, with its state."""
        if not self.tracker.runs:
            return "no runs in this kernel yet: run = nbtrack.init(project=...)"
        # A test's text output (deterministic) leaves out the random ids, and the cell numbers,
        # which depend on how the notebook is run (nbval numbers its cells its own way).
        stable = self.tracker.config.deterministic
        rows = []
        for tracked in reversed(self.tracker.runs):
            run = tracked.run
            live = tracked.last_live
            cell = f"[{tracked.cell[1]}]" if tracked.cell else "-"
            rows.append(
                (
                    *(() if stable else (run.id,)),
                    run.name,
                    run.project,
                    run.state,
                    live.rows_logged if live else "-",
                    *(() if stable else (cell,)),
                )
            )
        # The columns of `nbtrack runs`, in its order, and the cell that started each run.
        headers = [
            *(() if stable else ("id",)),
            "name",
            "project",
            "state",
            "rows",
            *(() if stable else ("cell",)),
        ]
        return render_table(headers, rows)

    def _finish(self, words: list[str]) -> None:
        self._live_run("finish", words).finish()

    def _code(self, words: list[str]) -> str:
        run = self._live_run("code", words)
        code = self.tracker.code_of(run)
        saving = run.save_code if run.save_code is not None else self.tracker.config.save_code
        if not saving:
            return (
                f"code capture is off for run {run.name} ({run.id}): no code will be stored. Turn it "
                "on with c.NBTrack.save_code = True (before init) or nbtrack.init(save_code=True)."
            )
        return code.render()

    def _live_run(self, command: str, words: list[str]) -> Run:
        """The run a command names (an id or a name), or the current run."""
        if len(words) > 1:
            raise UsageError(f"%nbtrack {command} takes at most one run (an id or a name)")
        live = self.tracker.live_runs()
        if not words:
            target = nbtrack.run or (live[-1] if live else None)
            if target is None or target.finished:
                raise UsageError(f"%nbtrack {command}: no live run in this kernel")
            return target
        matches = [run for run in live if words[0] in (run.id, run.name)]
        if not matches:
            names = ", ".join(f"{r.name} ({r.id})" for r in live) or "none"
            raise UsageError(f"%nbtrack {command}: no live run {words[0]!r}; live runs: {names}")
        return matches[-1]

    def _show(self, words: list[str]) -> None:
        """The explorer's runs table under the cell (its errors are nbtrack's UsageError: one line)."""
        from nbtrack.extension.explorer import show

        options = _command_parser("show", "project", ("dir", "base-url", "api-key")).parse_args(words)
        show(options.project, dir=options.dir, base_url=options.base_url, api_key=options.api_key)

    def _resume(self, words: list[str]) -> Run:
        """Continue a stored run; the magic's value is the run (`run = %nbtrack resume ID`)."""
        parsed = _command_parser("resume", "id", ("project", "mode", "dir")).parse_args(words)
        options = {k: v for k, v in vars(parsed).items() if v is not None}
        try:
            return nbtrack.init(**options, resume="must")
        except (TypeError, ValueError, nbtrack.UsageError) as exc:
            raise UsageError(f"%nbtrack resume: {exc}") from None

    def _cell_run(self, words: list[str], cell: str) -> None:
        options = vars(_init_parser().parse_args(words))
        job_type = options.pop("job-type", None) or options.pop("job_type", None)
        tags = options.pop("tags")
        kwargs = {k: v for k, v in options.items() if v is not None}
        try:
            run = nbtrack.init(**kwargs, job_type=job_type, tags=tags.split(",") if tags else None)
        except (TypeError, ValueError, nbtrack.UsageError) as exc:
            raise UsageError(f"%%nbtrack: {exc}") from None
        result = self.shell.run_cell(cell, store_history=False)  # type: ignore[union-attr]
        run.finish(exit_code=0 if result.success else 1)
