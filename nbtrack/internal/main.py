"""Entry point of the internal process: wires Handler -> Writer -> Sender and watches the parent.

The process serves one run. It ends after a shutdown request, or, when the user process dies
(record_pipe reaches EOF), after it has delivered everything it received and marked the run
crashed. Draining is bounded by STOP_SECONDS per thread, so no internal process outlives its run.

A thread of its own sends a heartbeat every HEARTBEAT_SECONDS while the process lives: the user
side takes a process that stays silent for long (stopped, frozen) for hung, kills it and starts a
new one. Any stage that fails unexpectedly ends the process at once (`_fatal`): the user side sees
EOF and restarts it, and the new process recovers the run from the transaction log.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection

from nbtrack.internal.feed import Feed
from nbtrack.internal.handler import Handler
from nbtrack.internal.progress import LogProgress, lost_rows
from nbtrack.internal.sender import Sender, SenderThread
from nbtrack.internal.trouble import Trouble
from nbtrack.internal.writer import WriterThread
from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.worker import OnFatal, PipeSource, StageDied, Until, Worker

__all__ = ["FATAL_EXIT_CODE", "serve"]

logger = logging.getLogger("nbtrack")

STOP_SECONDS = 60.0  # longest the user process's death may take to deliver what is left
SHUTDOWN_SECONDS = 1.0  # per stage, after a shutdown request: the user side waits for the answer
CRASH_EXIT_CODE = -1
FATAL_EXIT_CODE = 70  # EX_SOFTWARE: a stage failed; the user side restarts the process
IDLE_TICK = 0.1  # seconds the handler waits for a record before it looks at its timers
HEARTBEAT_SECONDS = 1.0
SEND_PATIENCE = 2.0  # the last words of a failing process wait this long for result_pipe, at most


class _Results:
    """result_pipe, writable from any thread; a vanished user process is not an error here."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self.closed = False

    def send(self, result: pb.Result) -> None:
        if self.closed:
            return
        data = result.SerializeToString()
        with self._lock:
            self._send(data)

    def try_send(self, result: pb.Result, patience: float) -> None:
        """Send unless result_pipe stays busy for patience seconds (a heartbeat, the last words):
        a send in progress is itself a sign of life, and a dying process must not wait."""
        if self.closed or not self._lock.acquire(timeout=patience):
            return
        try:
            self._send(result.SerializeToString())
        finally:
            self._lock.release()

    def _send(self, data: bytes) -> None:
        try:
            self._conn.send_bytes(data)
        except (OSError, ValueError):
            self.closed = True

    def acknowledge(self, seq: int) -> None:
        self.send(pb.Result(ack=pb.AckResult(seq=seq)))

    def notice(self, message: str) -> None:
        self.send(pb.Result(notice=pb.NoticeResult(level=pb.NoticeResult.WARNING, message=message)))


class _Heartbeat(Worker[None]):
    """Sends an empty HeartbeatResult every HEARTBEAT_SECONDS on the thread named "Heartbeat": a
    `Worker` over nothing (`Until`) whose idle() beats. Started once a run is served (a warm
    spare's result_pipe has no reader yet).

    It holds no lock any stage holds, so it beats whatever the stages wait for. If result_pipe is
    busy for a whole interval (a large result being written while the user side reads), that
    beat is skipped: the bytes on their way say as much. A beat that finds result_pipe broken means
    the user process is gone: `user_gone` runs once (a stage waiting for disk space would
    otherwise keep the handler from ever reading record_pipe's EOF), and the beats end.
    """

    idle_seconds = HEARTBEAT_SECONDS

    def __init__(self, results: _Results, user_gone: Callable[[], None], on_fatal: OnFatal) -> None:
        self._results = results
        self._user_gone = user_gone
        self._beat = pb.Result(heartbeat=pb.HeartbeatResult())
        self._until = Until()
        super().__init__("Heartbeat", self._until, on_fatal)

    def handle(self, item: None) -> None:
        raise AssertionError("the heartbeat is handed nothing")

    def idle(self) -> None:
        self._results.try_send(self._beat, HEARTBEAT_SECONDS)
        if self._results.closed:
            self._user_gone()
            self._until.close()


def _fatal(results: _Results, stage: str, exc: BaseException) -> None:
    """A stage failed in a way nobody planned for: say so, then end the process at once.

    Nothing is lost by exiting here: what the log holds is recovered by the next process, and
    what it does not was never acknowledged, so the user side sends it again.
    """
    message = (
        f"nbtrack's internal process failed ({stage} thread: {type(exc).__name__}: {exc}); "
        "a new one takes over from the transaction log"
    )
    with contextlib.suppress(Exception):
        logger.critical("nbtrack: %s", message, exc_info=exc)
        notice = pb.NoticeResult(level=pb.NoticeResult.ERROR, message=message)
        results.try_send(pb.Result(notice=notice), SEND_PATIENCE)
    os._exit(FATAL_EXIT_CODE)


def serve(records: Connection, results_conn: Connection, preload: bool = False) -> None:
    """Run one internal process until shutdown or until the user process is gone.

    preload: a warm spare imports the store before any run arrives, so init() need not wait.
    """
    # A session of its own: a signal for the user's process group (Ctrl-C in a terminal, a
    # kernel interrupt, Jupyter's signals to a kernel's group at shutdown) must not take the
    # run's data with it. The process still ends: record_pipe's EOF tells it the user side is gone.
    with contextlib.suppress(OSError):
        os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if preload:
        import nbtrack.store  # noqa: F401

    results = _Results(results_conn)

    def fatal(stage: str, exc: BaseException) -> None:
        _fatal(results, stage, exc)

    trouble = Trouble(results.notice)
    log = LogProgress()
    feed = Feed()
    sender = Sender(results.send, results.notice, log=log, trouble=trouble, keep_alive=True)
    sender_thread = SenderThread(sender, feed, fatal)
    writer = WriterThread(feed, trouble, results.acknowledge, fatal, log)
    handler = Handler(writer, log, sender.progress, results.send, fatal)

    def user_gone() -> None:
        # Once the user process is gone, nothing may wait longer than STOP_SECONDS (not even for space).
        writer.expire(STOP_SECONDS)

    heartbeat: _Heartbeat | None = None

    def serving() -> None:
        nonlocal heartbeat
        heartbeat = _Heartbeat(results, user_gone, fatal)

    _HandlerThread(records, handler, fatal, user_gone, serving).join(None)
    if handler.shutdown is not None:
        # The user side asked us to stop: after finish() got its answer, or gave up waiting (a
        # store or server still being retried, a full disk). Stop promptly; what is not
        # delivered stays in the log for `nbtrack sync`, and the answer says what is where.
        sender.abort()
        sender_thread.abandon()
        writer.stop(SHUTDOWN_SECONDS)
        # Answered once the log is complete, not after the sender: a store call in flight (a
        # locked SQLite waits out its busy timeout) may still land, which only makes the answer's
        # "not stored yet" an overcount of rows the log has anyway. The user side is waiting.
        _answer_shutdown(results, handler, log, sender)
        sender_thread.stop(SHUTDOWN_SECONDS)
    else:
        # The user process is gone: finish the log, then deliver the rest, within bounds.
        writer.stop(STOP_SECONDS)
        sender_thread.stop(STOP_SECONDS)
        lost = lost_rows(handler.lines, log, sender.progress)
        if lost.runs:
            logger.error("nbtrack: %d rows (steps %s) could not be kept", lost.lines(), lost.steps_text())
    if heartbeat is not None:
        heartbeat.stop(0.0)  # not waited for: a beat may be blocked on a full result_pipe
    with contextlib.suppress(OSError):
        results_conn.close()
    logger.debug("nbtrack internal process %d exits", os.getpid())


def _answer_shutdown(results: _Results, handler: Handler, log: LogProgress, sender: Sender) -> None:
    """What the run left behind, as the answer to the shutdown request."""
    request = handler.shutdown
    assert request is not None
    response = pb.Response()
    shutdown = response.shutdown
    delivered = sender.progress.exit_result
    if delivered is not None:
        shutdown.exit_result.CopyFrom(delivered)
    else:
        shutdown.exit_result.state = "running"  # the exit was not delivered: the store says so
    if handler.run is not None:
        not_stored = handler.lines.select(sender.progress.stored_end).merged(sender.progress.dropped)
        shutdown.rows_not_stored = not_stored.lines()
        if sender.progress.backend is not None:  # offline: the log is where they go
            shutdown.artifacts_not_delivered.extend(
                handler.artifacts.in_log[sender.progress.artifacts_done :]
            )
        lost = lost_rows(handler.lines, log, sender.progress)
        if lost.runs and delivered is None:
            shutdown.exit_result.rows_lost = lost.lines()
            shutdown.exit_result.lost_steps = lost.steps_text()
            shutdown.exit_result.error.message = (
                f"{lost.lines()} rows (steps {lost.steps_text()}) are in neither the store nor the "
                f"transaction log ({log.lost or log.failing or 'not written yet'})"
            )
    if request.control.req_resp:
        results.send(pb.Result(control=request.control, response=response))


class _HandlerThread(Worker[bytes]):
    """The "Handler" thread: reads record_pipe (a `PipeSource`) and hands each record to the handler,
    which forwards it to the writer.

    It ends after a shutdown request, or once record_pipe reaches EOF: the user process is gone, and
    the run is marked crashed unless it had finished. Failing ends the process (`_fatal`), except
    with `StageDied`: a stage after it failed and is already ending the process with its own
    notice, so the handler only waits for that.
    """

    idle_seconds = IDLE_TICK  # how long one poll of record_pipe waits before the handler's timers
    quiet_failures = (StageDied,)

    def __init__(
        self,
        records: Connection,
        handler: Handler,
        fatal: OnFatal,
        user_gone: Callable[[], None],
        serving: Callable[[], None],
    ) -> None:
        """user_gone: record_pipe reached EOF. serving: the first record (the setup) arrived."""
        self._handler = handler
        self._fatal = fatal
        self._user_gone = user_gone
        self._serving: Callable[[], None] | None = serving
        self._records = PipeSource(records)
        super().__init__("Handler", self._records, self._failed)

    def handle(self, item: bytes) -> None:
        if self._serving is not None:  # the setup: a run is served from now on
            serving, self._serving = self._serving, None
            serving()
        record = pb.Record()
        record.ParseFromString(item)
        self._handler.handle(record)
        if self._handler.shutdown is not None:
            self._records.close()  # asked to stop: nothing after the request is read

    def idle(self) -> None:
        # After each record, and while none comes: a live panel still hears about finishing,
        # pending rows, ...
        self._handler.tick()

    def finished(self) -> None:
        if not self._records.eof:
            return  # a shutdown request
        # The user process is gone (killed, crashed, exited without finish): deliver what we have
        # and mark the run crashed, unless it had already finished.
        self._user_gone()
        handler = self._handler
        if handler.run is not None and not handler.exited:
            crashed = pb.ExitRecord(exit_code=CRASH_EXIT_CODE, state="crashed")
            handler.finish(pb.Record(exit=crashed, control=pb.Control(always_send=True)))

    def _failed(self, thread: str, exc: BaseException) -> None:
        if isinstance(exc, StageDied):
            time.sleep(SEND_PATIENCE + 1.0)  # the stage that died is ending the process (_fatal)
            return
        self._fatal(thread, exc)
