"""The user side's one connection to a run's internal process.

`RunConnection` owns everything between `Run` and the internal process: the process itself, the
outbox that numbers and retains what is sent, the mailbox that routes replies, and what happens
when the process dies or stops answering. Every log() call goes through `publish_log`, records
through `publish`, questions through `request`.

A process that dies (EOF on result_pipe) is replaced by a new one that recovers the run from its
transaction log, and the outbox re-sends what the dead one had not acknowledged (restart.py). A
process that lives but stays silent — no Result at all, not even its heartbeat, for
`hang_timeout` seconds (stopped with SIGSTOP, frozen) — is killed, and then replaced the same
way: a hung process is a dead one that has not noticed yet. Only after MAX_RESTARTS does the run
give up, and then it says how many rows it could not keep, and counts every row after.

Its threads are `Worker`s (nbtrack/worker.py): the outbox's two, "nbtrack-results" (mailbox.py)
and "nbtrack-watchdog". One that fails (a bug) never ends the user's process: it is logged, and
a failed outbox thread or result reader gives the run up the same way (waiters woken, the rows
the log lacks counted); a failed watchdog only stops replacing hung processes.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from google.protobuf.message import DecodeError

from nbtrack import txlog
from nbtrack.errors import InternalProcessError
from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.transport.mailbox import Mailbox, ResultReader, Slot
from nbtrack.transport.outbox import DEFAULT_MEMORY_LIMIT, ConsoleLine, LogCall, Outbox
from nbtrack.transport.process import InternalProcess
from nbtrack.transport.restart import MAX_RESTARTS, describe_exit, replace_process
from nbtrack.worker import Until, Worker, failure_text

__all__ = ["HANG_TIMEOUT", "RunConnection"]

logger = logging.getLogger("nbtrack")

HANG_TIMEOUT = 10.0  # seconds of silence (the process beats every second) before it counts as hung
WATCH_INTERVAL = 0.5
START_PATIENCE = 30.0  # seconds a new process may take before its first word (spawn, imports)


class RunConnection:
    """Owns one run's internal process, outbox and mailbox; survives the process's death."""

    def __init__(
        self,
        process: InternalProcess,
        setup: pb.SetupRequest,
        *,
        run_id: str,
        spill_path: Path | None,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        hang_timeout: float = HANG_TIMEOUT,
        warn: Callable[[str], None],
        on_result: Callable[[pb.Result], None],
        on_gone: Callable[[str], None],
    ) -> None:
        """warn: one sentence the user must read; on_result: Results no request waits for
        (notices, live updates); on_gone: the run cannot be kept any more (with the reason)."""
        self._run_id = run_id
        self._setup = setup
        self._warn = warn
        self._on_result_cb = on_result
        self._on_gone = on_gone
        self._hang_timeout = hang_timeout
        self.process = process
        self.restarts = 0  # processes that died (or hung) mid-run and were replaced
        self._rows_lost = 0  # log() calls made after the connection was lost for good, and the like
        self.lost_reason: str | None = None
        self.started = False  # the process accepted the run: from now on it can be replaced
        self._stopping = False  # we asked the process to exit: its end is expected
        self._hung: InternalProcess | None = None  # killed by the watchdog for its silence
        self._quiet_since = 0.0  # silence is counted from here at the earliest (see _watch)
        self._closed = threading.Event()  # no process left to watch: the watchdog ends
        self.mailbox = Mailbox()
        self.outbox = Outbox(
            process.record_pipe,
            memory_limit=memory_limit,
            spill_path=spill_path,
            warn=warn,
            on_failure=self._give_up,
        )
        self._reader = self._read(process)
        self.outbox.send(
            pb.Record(request=pb.Request(setup=setup), control=pb.Control(local=True)), retain=False
        )
        self._watchdog = _Watchdog(self, self._closed)

    # -- sending ---------------------------------------------------------------------------

    def publish_log(self, call: LogCall, exact: bool = False) -> None:
        """One log() call; exact: its row holds NaN or infinity. Never blocks while there is
        room (memory, then the spill file)."""
        if self.lost_reason is not None:
            self._rows_lost += 1
        elif exact:
            self.outbox.log_exact(call)
        else:
            self.outbox.log(call)

    def publish_console(self, line: ConsoleLine) -> None:
        if self.lost_reason is None:
            self.outbox.console(line)

    def publish(self, record: pb.Record, *, urgent: bool = False, retain: bool = True) -> None:
        """A record, after everything published before it; retain=False: not re-sent to a
        process that replaces this one (it gets its own)."""
        self.outbox.send(record, urgent=urgent, retain=retain)

    def request(self, request: pb.Request, what: str, timeout: float) -> pb.Result:
        """Ask and wait up to timeout; raises InternalProcessError (naming `what`) if no answer."""
        slot = self.mailbox.new_slot()
        self.publish(
            pb.Record(request=request, control=pb.Control(mailbox_slot=slot.id, req_resp=True)), urgent=True
        )
        return slot.wait(timeout, what)

    def ask(self, record: pb.Record, *, retain: bool = True, always_send: bool = False) -> Slot:
        """Send a record whose reply is awaited later (the run record, the exit record)."""
        slot = self.mailbox.new_slot()
        record.control.mailbox_slot = slot.id
        record.control.always_send = always_send
        self.publish(record, urgent=True, retain=retain)
        return slot

    # -- progress --------------------------------------------------------------------------

    @property
    def rows_lost(self) -> int:
        """log() calls this run could not keep: logged after the connection was lost for good,
        lost with a damaged spill file, or counted lost by the internal process (count_lost)."""
        return self._rows_lost + self.outbox.calls_lost

    def count_lost(self, rows: int) -> None:
        self._rows_lost += rows

    def spill_loss(self) -> str | None:
        """What a damaged spill file cost, in one sentence; None if nothing."""
        outbox = self.outbox
        if outbox.lost_reason is None:
            return None
        lost = outbox.calls_lost
        return f"{lost} logged rows were lost before they reached the transaction log: {outbox.lost_reason}"

    def pending(self) -> int:
        """log() calls and records not yet handed to the internal process."""
        return self.outbox.pending()

    def not_acknowledged(self) -> int:
        """log() calls not yet in the transaction log."""
        return self.outbox.calls_not_acknowledged()

    def unsent(self) -> int:
        """log() calls not yet handed to the internal process."""
        return self.outbox.calls_unsent()

    # -- the process's life ----------------------------------------------------------------

    def _read(self, process: InternalProcess) -> ResultReader:
        return ResultReader(
            process.result_pipe,
            self.mailbox,
            self._on_result,
            lambda: self._on_closed(process),
            on_fatal=lambda thread, exc: self._reader_failed(process, thread, exc),
        )

    def _reader_failed(self, process: InternalProcess, thread: str, exc: BaseException) -> None:
        """The result reader failed (a bug; the Worker logged it): nothing the process says can be
        heard any more, not even its end. The process is ended (it is ours, not the user's), so
        what its log holds is settled, and the run is given up: waiters wake, and the rows the log
        lacks are counted."""
        self._stopping = True  # its end is expected now: no restart
        process.kill()
        self._give_up(failure_text(thread, exc))

    def _on_result(self, result: pb.Result) -> None:
        if result.HasField("ack"):
            self.outbox.acknowledge(result.ack.seq)
        else:
            self._on_result_cb(result)

    def _on_closed(self, process: InternalProcess) -> None:
        """result_pipe of `process` ended: expected after a shutdown request; otherwise it died
        (or the watchdog killed it), and a new one takes over (up to MAX_RESTARTS)."""
        if self._stopping:
            self.mailbox.close("the internal process has exited")
            return
        if self.started and self.outbox.failure is None and self.restarts < MAX_RESTARTS:
            self.restarts += 1
            threading.Thread(
                target=self._restart, args=(process,), name="nbtrack-restart", daemon=True
            ).start()
            return
        self._give_up(self.outbox.failure or "the internal process has exited")

    def _restart(self, dead: InternalProcess) -> None:
        try:
            process = replace_process(dead, self._setup, self.outbox)
        except Exception as exc:
            logger.exception("nbtrack: could not restart the internal process of run %s", self._run_id)
            self._give_up(f"the internal process has exited and could not be restarted ({exc})")
            return
        how = (
            f"it stopped answering for {self._hang_timeout:g} s and was killed"
            if self._hung is dead
            else describe_exit(dead)
        )
        if self._stopping:  # the run ended meanwhile: the new process is not needed
            process.kill()
            return
        self.process = process
        self._reader = self._read(process)
        self._warn(
            f"run {self._run_id}: its internal process died ({how}); a new one took over from the "
            f"transaction log, and the rows not yet in it are being sent again (restart {self.restarts})"
        )

    def _watch(self, suspended: bool) -> None:
        """One look at the process (every WATCH_INTERVAL, on the watchdog's thread): kill it if it
        stays silent; its death starts the restart (or, once the run is stopping, just ends a
        process that would never exit by itself). suspended: this process itself was not running
        for a while (suspended, a debugger, a stalled VM): the silence is ours, not the internal
        process's, whose replies are still in the pipe."""
        now = time.monotonic()
        if suspended:
            self._quiet_since = now
        process, reader = self.process, self._reader
        if self._hung is process or not process.is_alive():
            return
        # A process that has not said a word yet is starting (spawn, imports): it gets longer.
        patience = self._hang_timeout if reader.heard else max(START_PATIENCE, self._hang_timeout)
        silent = now - max(reader.last_heard, self._quiet_since)
        if silent > patience:
            logger.warning(
                "nbtrack: the internal process of run %s (pid %s) is silent for %.0f s; killing it",
                self._run_id,
                process.pid,
                silent,
            )
            self._hung = process
            process.kill()
        if self._stopping and not process.is_alive():
            self._closed.set()  # the process is gone for good: nothing left to watch

    def silent_for(self) -> float:
        """Seconds since the internal process last sent anything."""
        return time.monotonic() - max(self._reader.last_heard, self._quiet_since)

    def end_if_hung(self) -> int | None:
        """Kill the process now if it has been silent for hang_timeout (the watchdog would, a
        little later). Returns None if it was not hung, else the log() calls its transaction log
        lacks, which are then lost (counted exactly, from the log itself)."""
        if self.silent_for() < self._hang_timeout:
            return None
        self.process.kill()
        self.process.join(1.0)
        lost = self.outbox.calls_after(logged_through(Path(self._setup.log_path)), timeout=0.0)
        self._rows_lost += lost
        return lost

    def report_unsent(self, run_id: str) -> None:
        """At exit: log() calls still in this process (finish() stopped waiting before they were
        handed over) are lost with it; say how many."""
        unsent = self.outbox.calls_unsent()
        if unsent:
            self._rows_lost += unsent
            print(
                # A snapshot: the pipe thread may still hand over a few before the process is gone.
                f"nbtrack: run {run_id}: up to {unsent} logged rows were still in this process when "
                "it ended, before the internal process got them, and are lost",
                file=sys.stderr,
            )

    def _give_up(self, reason: str) -> None:
        """No internal process any more: waiters wake, later rows are counted as lost."""
        if self.lost_reason is not None:
            return
        # Acknowledgements lag the log (a process killed after a write, before its ack): the log
        # itself says which calls it holds.
        self.lost_reason = reason  # from now on log() calls are counted as lost, not queued
        self._closed.set()  # no process left to watch
        unsent = self.outbox.calls_after(logged_through(Path(self._setup.log_path)))
        self._rows_lost += unsent
        self.mailbox.close(reason)
        self.outbox.release()  # a log() waiting for room would wait forever
        if not self.started:
            return  # init() is waiting for the run's start: it raises, and there is no run to lose
        self._on_gone(
            f"{reason}: rows logged in run {self._run_id} from now on are NOT stored"
            + (
                f", nor the last {unsent} rows before it (they never reached the transaction log)"
                if unsent
                else ""
            )
        )

    # -- the end ---------------------------------------------------------------------------

    def shutdown(
        self, request_timeout: float = 5.0, exit_timeout: float = 10.0, *, kill: bool = True
    ) -> pb.ShutdownResponse | None:
        """Ask the process to exit and wait for it, every wait bounded. Returns its answer (what
        the run left behind), or None if none came within request_timeout.

        kill=False: a process still busy after exit_timeout is left to finish on its own (it
        handles everything sent before the shutdown request, writing it to the log, then exits).
        """
        self._stopping = True
        answer = None
        with contextlib.suppress(InternalProcessError):  # then join() and kill() below make sure
            result = self.request(
                pb.Request(shutdown=pb.ShutdownRequest()), "stopping the internal process", request_timeout
            )
            answer = result.response.shutdown
        self.outbox.close(max(0.05, min(1.0, exit_timeout)))
        process = self.process
        exited = process.join(exit_timeout)
        if not exited and kill:
            logger.warning("nbtrack: the internal process of run %s did not exit; killing it", self._run_id)
            process.kill()
        if exited or kill:
            self._closed.set()
        # else the watchdog stays: a process left to finish alone is still ended if it falls silent
        return answer

    def abandon(self) -> None:
        """Kill the process at once (a run that never started)."""
        self._stopping = True
        self._closed.set()
        self.process.kill()
        self.outbox.close(0.5)

    def disown(self) -> None:
        """In a forked child: the threads that served this connection are not here."""
        self._stopping = True
        self._closed.set()


class _Watchdog(Worker[None]):
    """The "nbtrack-watchdog" thread: every WATCH_INTERVAL, one look at the internal process."""

    idle_seconds = WATCH_INTERVAL

    def __init__(self, connection: RunConnection, closed: threading.Event) -> None:
        self._connection = connection
        self._awake = time.monotonic()
        super().__init__("nbtrack-watchdog", Until(closed), self._failed)

    def handle(self, item: None) -> None:
        raise AssertionError("the watchdog is handed nothing")

    def idle(self) -> None:
        now = time.monotonic()
        suspended = now - self._awake > WATCH_INTERVAL + 1.0
        self._awake = now
        self._connection._watch(suspended)

    @staticmethod
    def _failed(thread: str, exc: BaseException) -> None:
        """The Worker logged it; the run goes on, only unwatched: a hung process is no longer
        replaced, and finish() still ends it (its waits are bounded)."""


TAIL_WINDOWS = (1 << 20, 16 << 20)  # bytes of the log's end read before reading all of it


def logged_through(log_path: Path) -> int:
    """The number of the last log() call the transaction log holds (0: none, or no log)."""
    for window in (*TAIL_WINDOWS, None):
        try:
            payloads, whole = txlog.read_tail(log_path, window if window is not None else 1 << 62)
        except (OSError, txlog.LogFormatError):
            return 0
        for payload in reversed(payloads):
            try:
                record = pb.Record.FromString(payload)
            except DecodeError:
                continue
            if record.HasField("history") and record.history.seq:
                return record.history.seq
        if whole:
            return 0
    return 0
