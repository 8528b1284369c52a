"""A named thread that owns a bounded queue: the shape of the Writer and the Sender.

The queue is bounded so that a slow stage pushes back on the one before it (and, through the
pipe, on the user side, where waiting rows stay encoded) instead of piling records up here.
"""

from __future__ import annotations

import queue
import threading
from typing import Generic, TypeVar

__all__ = ["QueueWorker"]

Item = TypeVar("Item")
QUEUE_BATCHES = 4  # batches (of up to 1,000 records) waiting for a worker


class QueueWorker(Generic[Item]):
    """Subclasses implement handle(item), and may implement idle() and finished()."""

    idle_seconds = 0.05  # how often idle() runs when nothing arrives

    def __init__(self, name: str) -> None:
        self._queue: queue.Queue[Item | None] = queue.Queue(maxsize=QUEUE_BATCHES)
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def put(self, item: Item) -> None:
        """Hand over work; blocks while the queue is full (backpressure)."""
        self._queue.put(item)

    def stop(self, timeout: float) -> None:
        """Finish what is queued, then end the thread (waits at most timeout seconds)."""
        self._queue.put(None)
        self._thread.join(timeout)

    def handle(self, item: Item) -> None:
        raise NotImplementedError

    def idle(self) -> None:
        """Called after each item and whenever idle_seconds pass without one."""

    def finished(self) -> None:
        """Called on the thread once the queue is drained after stop()."""

    def _loop(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self.idle_seconds)
            except queue.Empty:
                self.idle()
                continue
            if item is None:
                break
            self.handle(item)
            self.idle()
        self.finished()
