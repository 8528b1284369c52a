"""A run's alerts on the user side: checked, held back while their title waits, and capped.

An alert whose title this run raised within the call's wait is held back here (no record: an
alert in a loop costs nothing); the store holds one back by the same rule across processes (a
resumed run). Past ALERTS_PER_RUN the store keeps no more, so none is sent, and that is said once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.sdk.values import check_alert
from nbtrack.vocabulary import ALERTS_PER_RUN

__all__ = ["RunAlerts"]


class RunAlerts:
    """The alerts raised by one run in this process, oldest first (`kept`)."""

    def __init__(self, run_id: str, send: Callable[[pb.Record], None], warn: Callable[[str], None]) -> None:
        self._run_id, self._send, self._warn = run_id, send, warn
        self.kept: list[dict[str, Any]] = []  # {"title", "text", "level", "time"}
        self._last: dict[str, float] = {}  # title -> when it was last kept
        self._full_said = False

    def raise_alert(
        self, title: object, text: object, level: object, wait: float | timedelta
    ) -> dict[str, Any] | None:
        """The alert kept, or None if it was held back (its title waits) or the run has its fill."""
        title, text, level, wait_seconds = check_alert(title, text, level, wait)
        now = time.time()
        last = self._last.get(title)
        if last is not None and abs(now - last) < wait_seconds:
            return None
        if len(self.kept) >= ALERTS_PER_RUN:
            if not self._full_said:
                self._full_said = True
                self._warn(
                    f"run {self._run_id} keeps at most {ALERTS_PER_RUN} alerts: {title!r} and any "
                    "later ones are not kept"
                )
            return None
        key = f"{self._run_id}-{uuid.uuid4().hex}"
        record = pb.AlertRecord(
            title=title, text=text, level=level, wait_seconds=wait_seconds, timestamp=now, key=key
        )
        self._send(pb.Record(alert=record))
        alert = {"title": title, "text": text, "level": level, "time": now}
        self._last[title] = now
        self.kept.append(alert)
        return alert
