"""Entry point of the internal process: wires Handler -> Writer -> Sender and watches the parent.

The process serves one run. It ends after a shutdown request, or, when the user process dies
(record_q reaches EOF), after it has delivered everything it received and marked the run
crashed. Draining is bounded by STOP_SECONDS per thread, so no internal process outlives its run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from multiprocessing.connection import Connection

from nbtrack.internal.handler import Handler
from nbtrack.internal.sender import Sender, SenderThread
from nbtrack.internal.writer import WriterThread
from nbtrack.proto import nbtrack_pb2 as pb

__all__ = ["serve"]

logger = logging.getLogger("nbtrack")

STOP_SECONDS = 60.0  # longest a shutdown may take to deliver what is left before the process quits
CRASH_EXIT_CODE = -1
IDLE_TICK = 0.1  # seconds the handler waits for a record before it looks at its timers
HEARTBEAT_SECONDS = 1.0  # the user side replaces a process silent for much longer (connection.py)


class _Results:
    """result_q, writable from any thread; a vanished user process is not an error here."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self.closed = False

    def send(self, result: pb.Result) -> None:
        if self.closed:
            return
        data = result.SerializeToString()
        with self._lock:
            try:
                self._conn.send_bytes(data)
            except (OSError, ValueError):
                self.closed = True

    def acknowledge(self, seq: int) -> None:
        self.send(pb.Result(ack=pb.AckResult(seq=seq)))

    def notice(self, message: str) -> None:
        self.send(pb.Result(notice=pb.NoticeResult(level=pb.NoticeResult.WARNING, message=message)))


def serve(records: Connection, results_conn: Connection, preload: bool = False) -> None:
    """Run one internal process until shutdown or until the user process is gone.

    preload: a warm spare imports the store before any run arrives, so init() need not wait.
    """
    # A session of its own: a signal for the user's process group (Ctrl-C in a terminal, a
    # kernel interrupt, Jupyter's SIGTERM/SIGKILL of a kernel's group at shutdown) must not take
    # the run's data with it. The process still ends: record_q's EOF tells it the user side is gone.
    with contextlib.suppress(OSError):
        os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if preload:
        import nbtrack.store  # noqa: F401

    results = _Results(results_conn)
    threading.Thread(target=_beat, args=(results,), name="Heartbeat", daemon=True).start()
    sender = Sender(results.send, results.notice)
    sender_thread = SenderThread(sender)
    writer = WriterThread(sender_thread.put, results.notice, results.acknowledge)
    sender.log_failure = lambda: writer.failed
    handler = Handler(writer, sender, results.send)
    shutdown = threading.Event()
    thread = threading.Thread(target=_handle_records, args=(records, handler, shutdown), name="Handler")
    thread.start()
    thread.join()
    if shutdown.is_set():
        # The user side asked us to stop, after finish() got its answer or gave up waiting for
        # an unreachable server: what is not delivered stays in the log for `nbtrack sync`.
        sender.abort()
    # Drain in order: the writer finishes the log, then the sender delivers the rest.
    writer.stop(STOP_SECONDS)
    sender_thread.stop(STOP_SECONDS)
    with contextlib.suppress(OSError):
        results_conn.close()
    logger.debug("nbtrack internal process %d exits", os.getpid())


def _beat(results: _Results) -> None:
    """Tell the user side this process lives, whatever its other threads are waiting for."""
    beat = pb.Result(heartbeat=pb.HeartbeatResult())
    while not results.closed:
        results.send(beat)
        time.sleep(HEARTBEAT_SECONDS)


def _handle_records(records: Connection, handler: Handler, shutdown: threading.Event) -> None:
    while True:
        try:
            if not records.poll(IDLE_TICK):
                handler.tick()  # idle: a live panel still hears about finishing, pending rows, ...
                continue
            data = records.recv_bytes()
        except (EOFError, OSError):
            # The user process is gone (killed, crashed, exited without finish): deliver what we
            # have and mark the run crashed, unless it had already finished.
            if handler.run is not None and not handler.exited:
                crashed = pb.ExitRecord(exit_code=CRASH_EXIT_CODE, state="crashed")
                handler.finish(pb.Record(exit=crashed, control=pb.Control(always_send=True)))
            break
        record = pb.Record()
        record.ParseFromString(data)
        try:
            handler.handle(record)
            handler.tick()
        except Exception:
            logger.exception("nbtrack: the handler failed on a %s record", record.WhichOneof("record_type"))
        if (
            record.WhichOneof("record_type") == "request"
            and record.request.WhichOneof("request_type") == "shutdown"
        ):
            shutdown.set()
            break
