"""Replacing an internal process that died mid-run (killed, out of memory, crashed).

The new process reopens the run's transaction log after its torn tail, rebuilds the run's state
from it and delivers it again (idempotently); the outbox then re-sends everything the dead
process had not acknowledged, and the new handler skips what the log already held. The user's
loop never waits for any of it: log() keeps appending while this runs on its own thread.
"""

from __future__ import annotations

import signal
from pathlib import Path

from nbtrack import run_lock
from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.transport.outbox import Outbox
from nbtrack.transport.process import InternalProcess

__all__ = ["MAX_RESTARTS", "describe_exit", "replace_process"]

MAX_RESTARTS = 25  # per run: a process that dies over and over has a cause a restart will not fix
EXIT_WAIT = 10.0  # seconds for the dead process to be reaped and its lock on the log released


def replace_process(dead: InternalProcess, setup: pb.SetupRequest, outbox: Outbox) -> InternalProcess:
    """A new internal process that recovers the run from setup.log_path; the outbox writes to it."""
    if not dead.join(EXIT_WAIT):
        dead.kill()  # its pipe is closed, so it can only be stuck: it must not write the log any more
    # Its pipes are not closed here: the results thread closed result_pipe at EOF, and record_pipe is
    # the outbox's pipe thread's to close (it may be inside a write to it right now).
    if setup.log_path and not run_lock.wait_until_released(Path(setup.log_path), EXIT_WAIT):
        raise RuntimeError(f"the transaction log {setup.log_path} is still held by another process")
    process = InternalProcess()
    recover = pb.SetupRequest()
    recover.CopyFrom(setup)
    recover.recover = True
    record = pb.Record(request=pb.Request(setup=recover), control=pb.Control(local=True))
    outbox.reconnect(process.record_pipe, [record.SerializeToString()])
    return process


def describe_exit(process: InternalProcess) -> str:
    """How a process ended, in words: 'killed by SIGKILL', 'exit code 3'."""
    code = process.exitcode
    if code is None:
        return "it stopped answering"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
