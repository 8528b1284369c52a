"""The outbox's spill file: retained messages that did not fit in memory, appended, and read
back by offset when their turn comes.

The file lives on disk, where something else may truncate or overwrite it. Each message in it is
framed with its length, CRC-32 and sequence number, so a damaged one is never sent (a new
internal process would choke on it, and the next, and so on): reading it raises `SpillDamaged`,
and the outbox counts its rows as lost (retention.py).
"""

from __future__ import annotations

import contextlib
import os
import struct
import zlib
from pathlib import Path

__all__ = ["SpillDamaged", "SpillFile"]


class SpillDamaged(OSError):
    """A spilled message is not what was written (the file was truncated or overwritten)."""


# Each spilled message: its length, CRC-32 and sequence number, then its bytes. The number
# tells a frame copied over another of the same size from the one that belongs there.
_FRAME = struct.Struct("<IIQ")


class SpillFile:
    """Retained messages that did not fit in memory, appended, each framed with its length and
    checksum; read back by offset (the offset of the frame, the size of the message)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self.end = 0

    def append(self, data: bytes, seq: int) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        offset = self.end
        framed = _FRAME.pack(len(data), zlib.crc32(data), seq) + data
        done = 0
        while done < len(framed):
            done += os.pwrite(self._fd, framed[done:], offset + done)
        self.end = offset + len(framed)
        return offset

    def read(self, offset: int, size: int, seq: int) -> bytes:
        """Message seq, written at offset; SpillDamaged if the file no longer holds it."""
        assert self._fd is not None
        framed = os.pread(self._fd, _FRAME.size + size, offset)
        if len(framed) != _FRAME.size + size:
            raise SpillDamaged(f"the spill file {self.path} was cut short (at byte {offset + len(framed)})")
        length, crc, number = _FRAME.unpack_from(framed)
        data = framed[_FRAME.size :]
        if length != size or number != seq or zlib.crc32(data) != crc:
            raise SpillDamaged(
                f"the spill file {self.path} does not hold what was written at byte {offset} "
                "(it was cut short or changed by something else)"
            )
        return data

    def empty(self) -> None:
        if self._fd is not None and self.end:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            self.end = 0

    def remove(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
            with contextlib.suppress(OSError):
                self.path.unlink()
