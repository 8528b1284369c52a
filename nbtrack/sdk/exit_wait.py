"""finish()'s wait for the exit result: bounded by its deadline and by progress, never by hope.

The wait polls the internal process for what is left (rows it has not stored, whether it is
retrying an outage) and gives up, with `StoppedWaiting`, at the deadline or after STALL_TIMEOUT
without progress; what finish() then says is finish_words.py's.
"""

from __future__ import annotations

import time

from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.sdk.finish_words import FinishWords, ProgressLine
from nbtrack.transport.connection import RunConnection
from nbtrack.transport.mailbox import Slot

__all__ = ["PROGRESS_AFTER", "STALL_TIMEOUT", "STOP_ANSWER", "StoppedWaiting", "wait_for_exit"]

STALL_TIMEOUT = 60.0  # finish() gives up when the internal process makes no progress this long
PROGRESS_AFTER = 2.0  # finish() says what it waits for once it has waited this long
STOP_ANSWER = 0.5  # of finish()'s timeout, kept for asking the stopping process what it left behind
POLL_SECONDS = 0.25


class StoppedWaiting(Exception):
    """finish() stops waiting: why, and the internal process's last progress report."""

    def __init__(self, why: str, poll: pb.PollExitResponse) -> None:
        super().__init__(why)
        self.why, self.poll = why, poll


def wait_for_exit(
    connection: RunConnection, slot: Slot, deadline: float | None, words: FinishWords
) -> pb.ExitResult:
    """The exit result awaited in slot; raises StoppedWaiting at the deadline (keeping
    STOP_ANSWER of the budget for the stop itself), or after STALL_TIMEOUT without progress."""
    what = f"finishing run {words.run_id}"
    started = last_progress = time.monotonic()
    last_pending: tuple[int, int, int] | None = None
    poll = pb.PollExitResponse()
    poll_slot = None
    progress = ProgressLine()
    try:
        while True:
            left = POLL_SECONDS if deadline is None else deadline - time.monotonic()
            wait = max(0.0, min(POLL_SECONDS, left))
            result = slot.wait_a_while(wait, what)
            if result is not None:
                return result.exit_result
            # A poll waits in line behind the rows still in the pipe, so it is never awaited
            # with a deadline: its answer is taken whenever it comes.
            if poll_slot is None:
                poll_slot = connection.mailbox.new_slot()
                request = pb.Request(poll_exit=pb.PollExitRequest())
                control = pb.Control(mailbox_slot=poll_slot.id, req_resp=True)
                connection.publish(pb.Record(request=request, control=control))
            answer = poll_slot.wait_a_while(0.0, what)
            if answer is not None:
                poll_slot = None
                poll = answer.response.poll_exit
            pending = (poll.rows_pending, connection.pending(), poll.artifacts_pending)
            now = time.monotonic()
            if pending != last_pending or poll.retrying:
                last_pending, last_progress = pending, now  # retrying an outage is not a stall
            elif now - last_progress > STALL_TIMEOUT:
                raise StoppedWaiting(f"no progress for {STALL_TIMEOUT:g} s", poll)
            # The stop itself (asking the process what it left behind) comes out of the budget.
            if deadline is not None and now >= deadline - min(STOP_ANSWER, (deadline - started) / 2):
                raise StoppedWaiting(f"stopped waiting after {now - started:.1f} s", poll)
            if now - started > PROGRESS_AFTER:
                progress.show(words.progress(pending[0] + pending[1], poll))
    finally:
        progress.end()
