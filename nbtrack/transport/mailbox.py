"""Replies from the internal process: a reader thread (a `Worker`) hands each Result to the slot
that waits for it."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from multiprocessing.connection import Connection

from nbtrack.errors import InternalProcessError
from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.worker import OnFatal, PipeSource, Worker

__all__ = ["Mailbox", "ResultReader", "Slot"]

logger = logging.getLogger("nbtrack")


class Slot:
    """One pending request: wait() returns its Result or raises if the internal process is gone."""

    def __init__(self, slot_id: str, mailbox: Mailbox) -> None:
        self.id = slot_id
        self._mailbox = mailbox
        self._event = threading.Event()
        self._result: pb.Result | None = None

    def deliver(self, result: pb.Result) -> None:
        self._result = result
        self._event.set()

    def wait(self, timeout: float, what: str) -> pb.Result:
        """Block up to timeout seconds; wake early (and raise) when the internal process dies."""
        self._event.wait(timeout)
        self._mailbox.forget(self.id)
        if self._result is not None:
            return self._result
        if self._mailbox.closed_reason is not None:
            raise InternalProcessError(f"{what}: {self._mailbox.closed_reason}")
        raise InternalProcessError(f"{what}: no answer from the internal process within {timeout:g} s")

    def wait_a_while(self, timeout: float, what: str) -> pb.Result | None:
        """Like wait() but a timeout returns None and the slot keeps waiting for its reply."""
        self._event.wait(timeout)
        if self._result is None and self._mailbox.closed_reason is not None:
            raise InternalProcessError(f"{what}: {self._mailbox.closed_reason}")
        if self._result is not None:
            self._mailbox.forget(self.id)
        return self._result


class Mailbox:
    """The slots that wait for replies; closing it wakes every waiter with the reason."""

    def __init__(self) -> None:
        self._slots: dict[str, Slot] = {}
        self._lock = threading.Lock()
        self.closed_reason: str | None = None

    def new_slot(self) -> Slot:
        slot = Slot(uuid.uuid4().hex[:12], self)
        with self._lock:
            if self.closed_reason is None:
                self._slots[slot.id] = slot
            else:
                slot._event.set()  # nobody will answer: wait() raises at once
        return slot

    def forget(self, slot_id: str) -> None:
        with self._lock:
            self._slots.pop(slot_id, None)

    def deliver(self, result: pb.Result) -> bool:
        with self._lock:
            slot = self._slots.get(result.control.mailbox_slot)
        if slot is None:
            return False
        slot.deliver(result)
        return True

    def close(self, reason: str) -> None:
        with self._lock:
            self.closed_reason = reason
            slots = list(self._slots.values())
        for slot in slots:
            slot._event.set()


class ResultReader(Worker[bytes]):
    """Reads result_pipe on the "nbtrack-results" thread; replies go to the mailbox, the rest to
    on_result."""

    idle_seconds = 0.5  # how long one poll of result_pipe waits: how soon a stop() is noticed

    def __init__(
        self,
        result_pipe: Connection,
        mailbox: Mailbox,
        on_result: Callable[[pb.Result], None],
        on_closed: Callable[[], None] | None = None,
        *,
        on_fatal: OnFatal,
    ) -> None:
        """on_closed runs (on this thread) once result_pipe reaches EOF: the internal process is gone.
        It decides what that means (a restart, or closing the mailbox); without it, the mailbox
        is closed at once. on_fatal: this thread failed (a bug; never a bad callback, whose
        failure is logged and skipped)."""
        self._mailbox = mailbox
        self._on_result = on_result
        self._on_closed = on_closed
        self.last_heard = time.monotonic()  # when the last Result of any kind arrived
        self.heard = 0  # Results of any kind seen: once it has spoken, its silence means something
        self._pipe = PipeSource(result_pipe)  # EOF: the internal process is gone
        super().__init__("nbtrack-results", self._pipe, on_fatal)

    def handle(self, item: bytes) -> None:
        self.last_heard = time.monotonic()
        self.heard += 1
        result = pb.Result()
        result.ParseFromString(item)
        if result.HasField("heartbeat"):
            return
        if result.control.mailbox_slot and self._mailbox.deliver(result):
            return
        try:
            self._on_result(result)
        except Exception:  # a bad callback must not stop replies from arriving
            logger.exception("nbtrack: error while handling a result from the internal process")

    def finished(self) -> None:
        if not self._pipe.eof:
            return  # stopped: the process is not known to be gone
        if self._on_closed is None:
            self._mailbox.close("the internal process has exited")
            return
        try:
            self._on_closed()
        except Exception:
            logger.exception("nbtrack: error while handling the internal process's exit")
            self._mailbox.close("the internal process has exited")
