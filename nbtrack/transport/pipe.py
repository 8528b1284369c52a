"""The "nbtrack-pipe" thread: writes the outbox's encoded messages to record_pipe, blocking while the
internal process catches up.

It owns the connection it writes to: a reconnect hands it a new one, and only this thread closes
the old one, so no other thread pulls a pipe from under a write in progress. After a reconnect it
first sends the new process its preamble (its setup), then every retained message again, in
order; the messages queued behind the reconnect that were among them are not sent twice.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection

from nbtrack.transport.encoder import Message
from nbtrack.transport.retention import Retention
from nbtrack.worker import Inbox, OnFatal, Worker

__all__ = ["PipeThread", "Reconnect"]

logger = logging.getLogger("nbtrack")


@dataclass(frozen=True, slots=True)
class Reconnect:
    """Write to a new internal process from now on."""

    conn: Connection
    preamble: list[bytes]  # sent first, unnumbered (the new process's setup)


class PipeThread(Worker[Message | Reconnect]):
    """Writes each Message (or switches to a new process: Reconnect) as it comes; `sent` runs
    after each message, written or not, and `on_fatal` if the thread fails."""

    idle_seconds = 1.0  # idle() does nothing: a put() or close() wakes it at once

    def __init__(
        self,
        conn: Connection,
        inbox: Inbox[Message | Reconnect],
        retention: Retention,
        lock: threading.Lock,
        sent: Callable[[Message], None],
        on_fatal: OnFatal,
    ) -> None:
        """lock: the outbox's, held while the retained messages change."""
        self._conn = conn
        self._retention = retention
        self._lock = lock
        self._sent = sent
        self._outbox_died = on_fatal
        self.broken: str | None = None  # why the pipe cannot be written (until a reconnect)
        self._resent_through = 0  # seqs up to here were re-sent from retention
        super().__init__("nbtrack-pipe", inbox, self._died)

    def handle(self, item: Message | Reconnect) -> None:
        match item:
            case Reconnect():
                self._resend(item)
            case Message():
                self._write(item)

    def finished(self) -> None:
        """Everything is written (close()): the pipe and the spill file are not needed any more."""
        self._close_conn()
        self._retention.remove_spill()

    def _write(self, message: Message) -> None:
        # While broken, messages wait in retention for a new process; after a reconnect, those
        # already re-sent from retention are not sent twice.
        if self.broken is None and not 0 < message.seq <= self._resent_through:
            data = self._retention.read(message)
            if data is not None:
                self._send(data)
        self._sent(message)

    def _send(self, data: bytes) -> None:
        try:
            self._conn.send_bytes(data)
        except (OSError, ValueError) as exc:  # the internal process is gone (or hung and killed)
            self.broken = f"the internal process stopped reading records ({exc})"
            logger.debug("nbtrack: outbox paused: %s", exc)

    def _resend(self, reconnect: Reconnect) -> None:
        with self._lock:  # everything encoded so far is retained; what follows comes after it
            again = list(self._retention.messages)
        if again:
            self._resent_through = again[-1].seq
        self._close_conn()  # the dead process's end: only this thread ever wrote to it
        self._conn = reconnect.conn
        self.broken = None
        for preamble in reconnect.preamble:
            self._send(preamble)
        for message in again:
            if self.broken is not None:
                break
            data = self._retention.read(message)
            if data is not None:
                self._send(data)

    def _close_conn(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.close()

    def _died(self, thread: str, exc: BaseException) -> None:
        # Nothing will be written any more: the internal process sees EOF, as if this process
        # had ended, and ends the run itself (no other thread writes to the pipe: closing is safe).
        self._close_conn()
        self._outbox_died(thread, exc)
