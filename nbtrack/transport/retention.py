"""The messages the outbox keeps until the internal process acknowledges them.

Every numbered message stays *retained* until the internal process acknowledges that its writer
has it in the transaction log. If that process dies, the outbox sends every retained message
again, in order, to a new one, which skips what its log already holds; so a row that log()
accepted is never lost with a process.

Memory is bounded: retained messages are kept in memory up to `memory_limit` bytes; past it they
are appended to the spill file (spill.py) and read back from there when their turn comes. The
file is emptied whenever nothing spilled is retained any more. Only if it cannot be written
either (the disk is full) is the outbox full: log() then waits for room.

A spilled message found damaged is never sent: its log() calls are counted in `calls_lost` and
said once, and the exit record sent after it marks the run `crashed`, so a run with such a hole
never ends as `finished`.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.transport.encoder import Message
from nbtrack.transport.spill import SpillDamaged, SpillFile

__all__ = ["Retention"]

logger = logging.getLogger("nbtrack")

# Appended to an exit record, this sets its state (protobuf merges concatenated messages).
_CRASHED = pb.Record(exit=pb.ExitRecord(state="crashed")).SerializeToString()


class Retention:
    """Retained messages, oldest first, in memory or in the spill file. Not a lock of its own:
    the outbox changes it (keep, acknowledge) and copies `messages` with its lock held; read()
    runs on the pipe thread without it."""

    def __init__(self, memory_limit: int, spill_path: Path | None, warn: Callable[[str], None]) -> None:
        """spill_path: where retained messages past memory_limit go (None: nowhere);
        warn: says that the spill file lost rows (once per run)."""
        self.messages: collections.deque[Message] = collections.deque()
        self.memory_limit = memory_limit
        self.bytes = 0  # of retained messages held in memory
        self.spill = SpillFile(spill_path) if spill_path is not None else None
        self._spilled = 0  # retained messages in the spill file
        self.acknowledged = 0  # the last seq the internal process acknowledged
        self.calls_lost = 0  # log() calls of spilled messages found damaged (never sent)
        self.lost_seqs: set[int] = set()
        self.lost_reason: str | None = None  # why (the first damage found)
        self._warn = warn

    def keep(self, message: Message) -> bool:
        """Retain message after the others; False if memory is full and the spill file cannot
        take it either (it stays in memory: log() must wait for room)."""
        room = True
        if self.bytes + message.size > self.memory_limit:
            spilled = self._spill(message)
            if spilled is not None:
                self.messages.append(spilled)
                return True
            room = False
        self.bytes += message.size
        self.messages.append(message)
        return room

    def _spill(self, message: Message) -> Message | None:
        """The message, now in the spill file; None if that cannot be written."""
        assert message.data is not None
        if self.spill is None:
            return None
        try:
            offset = self.spill.append(message.data, message.seq)
        except OSError as exc:
            logger.debug("nbtrack: cannot spill to %s: %s", self.spill.path, exc)
            return None
        self._spilled += 1
        return dataclasses.replace(message, data=None, offset=offset)

    def acknowledge(self, seq: int) -> None:
        """The internal process's log holds everything up to seq: stop keeping it."""
        messages = self.messages
        while messages and messages[0].seq <= seq:
            message = messages.popleft()
            if message.data is None:
                self._spilled -= 1
            else:
                self.bytes -= message.size
        self.acknowledged = max(self.acknowledged, seq)
        if self._spilled == 0 and self.spill is not None:
            self.spill.empty()  # nothing in it is needed any more

    def has_room(self) -> bool:
        """Memory holds no more than its limit."""
        return self.bytes <= self.memory_limit

    def calls(self) -> int:
        """log() calls retained."""
        return sum(message.calls for message in list(self.messages))

    def calls_after(self, seq: int, messages: list[Message]) -> int:
        """log() calls of messages (retained ones) numbered after seq; the calls of damaged
        spilled messages are not counted (they are in calls_lost)."""
        lost = self.lost_seqs
        return sum(min(m.calls, max(0, m.seq - seq)) for m in messages if m.calls and m.seq not in lost)

    def read(self, message: Message) -> bytes | None:
        """The message's bytes; None if there is nothing to send: it was spilled and is
        acknowledged, or the spill file lost it (counted and said)."""
        data = message.data
        if data is None:
            assert self.spill is not None
            try:
                data = self.spill.read(message.offset, message.size, message.seq)
            except OSError as exc:
                if message.seq <= self.acknowledged:
                    return None  # the spill file was emptied after its messages were stored
                if not isinstance(exc, SpillDamaged):
                    raise
                self._lose(message, exc)
                return None
        if message.exit and self.lost_seqs:
            return data + _CRASHED
        return data

    def _lose(self, message: Message, damage: SpillDamaged) -> None:
        """A spilled message cannot be read back: the rows in it are lost. Counted once (a
        reconnect may meet it again) and said once per run."""
        if message.seq in self.lost_seqs:
            return
        self.lost_seqs.add(message.seq)
        self.calls_lost += message.calls
        if self.lost_reason is None:
            self.lost_reason = str(damage)
            self._warn(
                f"{self.lost_reason}: the rows kept there are lost ({self.calls_lost} log() calls so far); "
                "every other row is sent, and the run will end as crashed"
            )

    def remove_spill(self) -> None:
        """Nothing is needed any more (close()): remove the spill file."""
        if self.spill is not None:
            self.spill.remove()
