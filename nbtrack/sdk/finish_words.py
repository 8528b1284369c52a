"""What finish() says when it cannot end a run as asked: the rows and artifacts left behind, where
they are, and the `nbtrack sync` command that delivers them; and its progress line while it waits.

Every count comes from where it is known exactly: the internal process's answer to the shutdown
request, the connection's own counts (rows not acknowledged by the log, rows still in this
process), or the transaction log itself. Nothing here decides anything: `Run.finish` does.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from nbtrack.proto import nbtrack_pb2 as pb

__all__ = ["FinishWords", "ProgressLine"]

PROGRESS_EVERY = 5.0  # seconds between progress lines when stderr is not a terminal


@dataclass(frozen=True)
class FinishWords:
    """The sentences of one run's finish()."""

    run_id: str
    mode: str
    log: Path
    base_url: str | None
    hang_timeout: float

    @property
    def where(self) -> str:
        return "the tracking server" if self.mode == "online" else "the store"

    def sync_command(self) -> str:
        """The command that delivers this run's transaction log to where the run goes."""
        base_url = f" --base-url {self.base_url}" if self.mode == "online" else ""
        return f"nbtrack sync {self.log}{base_url}"

    def lost_for_good(self, reason: str, lost: int) -> str:
        """A run that lost its internal process for good; lost: the rows no log has (counted
        exactly by the connection)."""
        message = f"run {self.run_id}: finish(): {reason}, so the run could not be ended"
        if lost:
            message += f"; {lost} logged rows are in no transaction log and are lost"
        return message + self._rest_in_log("every other row")

    def answered(self, why: str, answer: pb.ShutdownResponse) -> str:
        """finish() stopped waiting and the internal process said what the store lacks (exact)."""
        log, command, where = self.log, self.sync_command(), self.where
        head = f"run {self.run_id}: finish() {why}"
        lost_rows, not_stored = answer.exit_result.rows_lost, answer.rows_not_stored
        if self.mode == "offline":
            return head + "; the transaction log is complete" if not lost_rows else head + self._lost(answer)
        # The artifacts logged before finish() that the store lacks are named with the rows.
        left = ([f"{not_stored} rows"] if not_stored or not answer.artifacts_not_delivered else []) + list(
            answer.artifacts_not_delivered
        )
        one = len(left) == 1 and not not_stored
        message = f"{head}: {_and(left)} {'is' if one else 'are'} not in {where} yet"
        if lost_rows:
            message += self._lost(answer)
            if not_stored > lost_rows:
                message += f"; the other {not_stored - lost_rows} are in it: `{command}` delivers them"
            if answer.artifacts_not_delivered:
                message += f"; it may lack {_and(list(answer.artifacts_not_delivered))} too"
        elif not_stored or answer.artifacts_not_delivered:
            every = "it" if one else "every one of them"
            message += (
                f"; {every} is in the transaction log {log}: `{command}` delivers {'it' if one else 'them'}"
            )
        return message

    def _lost(self, answer: pb.ShutdownResponse) -> str:
        return (
            f"; {answer.exit_result.rows_lost} rows (steps {answer.exit_result.lost_steps}) are in "
            f"neither {self.where} nor the transaction log {self.log}, and are lost"
        )

    def unanswered(self, why: str, lost: int | None, unlogged: int, here: int) -> str:
        """finish() stopped waiting without an answer: the internal process is busy (writing what
        it holds to the log) or hung. lost: it was hung and ended, and this many calls the log
        lacks are lost (counted from the log); unlogged: calls the log has not acknowledged; here:
        of those, the ones still in this process."""
        head = f"run {self.run_id}: finish() {why}"
        if self.mode != "offline":
            head += f" before the internal process said how many rows {self.where} lacks"
        if lost is not None:
            message = f"{head}; it had stopped answering and was ended"
            if lost:
                message += f"; {lost} logged rows never reached the transaction log {self.log} and are lost"
            return message + self._rest_in_log("every other row")
        if not unlogged:
            if self.mode == "offline":
                return head + "; the transaction log is complete"
            return head + self._rest_in_log("every row")
        message = f"{head}; up to {unlogged} logged rows are not in the transaction log {self.log} yet"
        if here:
            message += (
                f": {here} of them are still in this process, which goes on handing them to the "
                "internal process (they are lost if this process ends first), and"
            )
        message += (
            " the internal process goes on writing them there (if it stops answering for "
            f"{self.hang_timeout:g} s it is ended, and they are lost)"
        )
        return message + ("" if self.mode == "offline" else f"; then `{self.sync_command()}` delivers them")

    def progress(self, rows: int, poll: pb.PollExitResponse) -> str:
        where = self.base_url if self.mode == "online" else "the store"
        size = f" ({poll.bytes_pending / 1e6:.1f} MB)" if poll.bytes_pending else ""
        trouble = "the server is unreachable" if self.mode == "online" else "the store refuses for now"
        retrying = f" — {trouble}, retrying" if poll.retrying else ""
        artifacts = poll.artifacts_pending
        if artifacts:
            size += f" and {artifacts} artifact{'s' if artifacts > 1 else ''}"
        return f"nbtrack: waiting for {rows} rows{size} to reach {where}{retrying}"

    def _rest_in_log(self, rows: str) -> str:
        if self.mode == "offline":
            return f"; {rows} is in the transaction log {self.log}"
        return f"; {rows} is in the transaction log {self.log}: `{self.sync_command()}` delivers them"


def _and(names: list[str]) -> str:
    """["a", "b", "c"] -> "a, b and c"."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


class ProgressLine:
    """finish()'s progress on stderr: one line rewritten in place on a terminal; elsewhere (a
    log file, CI) a whole line at most every PROGRESS_EVERY seconds, only when it changed."""

    def __init__(self) -> None:
        self._tty = sys.stderr.isatty()
        self._shown = ""
        self._at = 0.0

    def show(self, line: str) -> None:
        if line == self._shown:
            return
        now = time.monotonic()
        if self._tty:
            print(f"\r{line}", end="", file=sys.stderr, flush=True)
        elif now - self._at >= PROGRESS_EVERY:
            print(line, file=sys.stderr, flush=True)
            self._at = now
        else:
            return
        self._shown = line

    def end(self) -> None:
        if self._tty and self._shown:
            print(file=sys.stderr)
