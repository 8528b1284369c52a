"""The transaction log: LevelDB-style blocks of checksummed chunks, one protobuf Record per entry.

The format is specified in docs/log-format.md; every constant of it is defined here and nowhere
else. `LogWriter` is the writer thread's hot path; `read_log` and `iter_records` read a log back,
reporting damage through a callback instead of raising.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import BinaryIO, Self, TypeAlias

from google.protobuf.message import DecodeError

from nbtrack.errors import NbtrackError
from nbtrack.proto import nbtrack_pb2

__all__ = [
    "BLOCK_SIZE",
    "FILE_HEADER",
    "FIRST",
    "FULL",
    "HEADER_SIZE",
    "LAST",
    "MAGIC",
    "MIDDLE",
    "VERSION",
    "Corruption",
    "LogFormatError",
    "LogReader",
    "LogWriter",
    "iter_records",
    "read_log",
    "read_tail",
]

# ---- The format (docs/log-format.md) ---------------------------------------------------------
MAGIC = b"\x89NBTLOG\n"  # non-ASCII first byte: never taken for text; "\n" catches newline mangling
VERSION = 1
FILE_HEADER = MAGIC + bytes([VERSION])  # at offset 0, inside block 0
BLOCK_SIZE = 32768
HEADER_SIZE = 7  # chunk header: crc32 (uint32 LE) + payload length (uint16 LE) + type (uint8)
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
_CHUNK_HEADER = struct.Struct("<IHB")
# ----------------------------------------------------------------------------------------------

# The checksum covers the type byte and then the payload; starting zlib.crc32 from the type
# byte's own crc saves concatenating them. Indexed by any byte so the reader can check a bad type.
_TYPE_CRC = [zlib.crc32(bytes([byte])) for byte in range(256)]
_PADDING = bytes(HEADER_SIZE)
_FLUSH_AT = 256 * 1024  # buffered bytes that trigger a write: few syscalls, bounded memory

StrPath: TypeAlias = str | os.PathLike[str]


class LogFormatError(NbtrackError, ValueError):
    """The file is not a transaction log, or one written in a format version this nbtrack cannot read."""


@dataclass(frozen=True)
class Corruption:
    """Bytes [offset, offset + length) of the log that the reader skipped, and why."""

    offset: int
    length: int
    reason: str


OnCorruption = Callable[[Corruption], None]


def _ignore(_: Corruption) -> None:
    pass


class LogWriter:
    """Appends records to a transaction log. Owned by one thread; not safe to share."""

    def __init__(self, file: BinaryIO, end: int) -> None:
        """Private: use `create` or `open_for_append`. `file` is unbuffered and positioned at `end`."""
        self._file = file
        self._fd = file.fileno()
        self._buf = bytearray()
        self._written = end  # bytes handed to the OS; the file's size
        self._synced = end  # callers fsync `file` up to `end` before handing it over
        self._block_offset = end % BLOCK_SIZE
        self._closed = False
        if end == 0:
            self._buf += FILE_HEADER
            self._block_offset = len(FILE_HEADER)
            try:
                self.flush()  # so that the file is recognisably a log from the start
            except BaseException:
                file.close()
                raise

    @classmethod
    def create(cls, path: StrPath) -> LogWriter:
        """Create a new log (FileExistsError if path exists) and write its file header."""
        # "x": two writers can never share one log, and an old run's log is never clobbered.
        return cls(open(path, "xb", buffering=0), 0)

    @classmethod
    def open_for_append(cls, path: StrPath, on_corruption: OnCorruption | None = None) -> LogWriter:
        """Reopen a log after a crash: truncate it after its last intact record and append from there.

        Damage before that record is reported, not repaired; a non-log raises LogFormatError.
        """
        end = 0  # a file holding only part of the header gets a fresh one
        with open(path, "rb") as log:
            if _check_header(log, path):
                end = len(FILE_HEADER)
                for _start, record_end, _payload in _records(log, on_corruption or _ignore):
                    end = record_end
        file = open(path, "r+b", buffering=0)  # noqa: SIM115 -- the writer owns it until close()
        try:
            file.truncate(end)
            file.seek(end)
            os.fsync(file.fileno())  # the truncation must be durable before new records land after it
            return cls(file, end)
        except BaseException:
            file.close()
            raise

    @property
    def bytes_written(self) -> int:
        """Logical end of the log, buffered bytes included."""
        return self._written + len(self._buf)

    @property
    def bytes_flushed(self) -> int:
        """Bytes handed to the OS: another reader of the file sees every record that ends here."""
        return self._written

    @property
    def bytes_buffered(self) -> int:
        """Bytes appended but not yet handed to the OS (kept for a retry after a failed write)."""
        return len(self._buf)

    @property
    def bytes_synced(self) -> int:
        """Bytes known to be on disk (fsynced)."""
        return self._synced

    def append(self, payload: bytes) -> None:
        """Buffer one record; it reaches the OS at flush() or once the buffer passes 256 KiB."""
        if self._closed:
            raise ValueError("append to a closed transaction log")
        buf = self._buf
        data = memoryview(payload)
        left = len(data)
        start = 0
        first = True
        room = BLOCK_SIZE - self._block_offset
        # One loop emits every chunk: FULL if the rest fits, else FIRST / MIDDLE / LAST.
        while True:
            if room < HEADER_SIZE:
                buf += _PADDING[:room]  # too small for a chunk header: pad, go to the next block
                room = BLOCK_SIZE
            n = min(left, room - HEADER_SIZE)
            last = n == left
            ctype = (FULL if last else FIRST) if first else (LAST if last else MIDDLE)
            chunk = data[start : start + n]
            buf += _CHUNK_HEADER.pack(zlib.crc32(chunk, _TYPE_CRC[ctype]), n, ctype)
            buf += chunk
            room -= HEADER_SIZE + n
            if last:
                break
            start += n
            left -= n
            first = False
        self._block_offset = BLOCK_SIZE - room
        if len(buf) >= _FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        """Hand every buffered byte to the OS (no fsync)."""
        if self._closed:
            # After close the fd number may already belong to another file: never write to it.
            raise ValueError("flush of a closed transaction log")
        buf = self._buf
        done = 0
        try:
            with memoryview(buf) as view:
                while done < len(view):
                    done += os.write(self._fd, view[done:])
        finally:
            # After a failed write (disk full), keep exactly the unwritten bytes for a retry.
            del buf[:done]
            self._written += done

    def sync(self) -> None:
        """Flush, then fsync: everything up to bytes_written survives a power loss."""
        self.flush()
        os.fsync(self._fd)
        self._synced = self._written

    def close(self) -> None:
        """Sync and close; closing twice is a no-op."""
        if self._closed:
            return
        try:
            self.sync()
        finally:
            self._closed = True
            self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class LogReader:
    """Reads records back from a log another thread is appending to, by byte range.

    The writer knows the offset before each append (a record boundary, or padding that precedes
    one) and how far it has handed bytes to the OS; records in such a range read back whole. The
    file is opened once, so a log whose name was removed meanwhile still reads.
    """

    def __init__(self, path: StrPath) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 -- kept open until close()

    def records(
        self, start: int, end: int, on_corruption: OnCorruption | None = None
    ) -> Iterator[tuple[int, int, bytes]]:
        """(start, end, payload) of each record in bytes [start, end): start must be a record
        boundary; a record cut off by end is not yielded."""
        report = on_corruption or _ignore
        yield from _records(self._file, report, start, end)

    def close(self) -> None:
        self._file.close()


def read_log(path: StrPath, on_corruption: OnCorruption | None = None) -> Iterator[bytes]:
    """Yield each intact record's payload in order, reporting skipped bytes to on_corruption.

    Raises LogFormatError (when iteration starts) if the file is not a log this version reads.
    """
    for _start, _end, payload in _scan(path, on_corruption or _ignore):
        yield payload


def read_tail(path: StrPath, size: int) -> tuple[list[bytes], bool]:
    """The intact records that start in about the last `size` bytes of the log (from the block
    boundary before them), and whether that is the whole log. Reading the end of a long log
    costs what it holds, not what the log holds."""
    with open(path, "rb") as file:
        if not _check_header(file, path):
            return [], True
        end = file.seek(0, os.SEEK_END)
        first = max(len(FILE_HEADER), (end - size) // BLOCK_SIZE * BLOCK_SIZE)
        # A record that began before `first` shows up as a stray chunk there: not damage, skipped.
        payloads = [payload for _start, _end, payload in _records(file, _ignore, first)]
        return payloads, first == len(FILE_HEADER)


def iter_records(path: StrPath, on_corruption: OnCorruption | None = None) -> Iterator[nbtrack_pb2.Record]:
    """Like read_log, parsed; a payload that is not a Record is reported and skipped."""
    report = on_corruption or _ignore
    for start, end, payload in _scan(path, report):
        try:
            record = nbtrack_pb2.Record.FromString(payload)
        except DecodeError as exc:
            report(Corruption(start, end - start, f"not a Record: {exc}"))
            continue
        yield record


def _check_header(file: BinaryIO, path: StrPath) -> bool:
    """True if file starts with the file header, False if it holds only a prefix of it; else raise.

    Leaves the file at offset 0, where _records expects it.
    """
    head = file.read(len(FILE_HEADER))
    file.seek(0)
    if head == FILE_HEADER:
        return True
    if FILE_HEADER.startswith(head):
        return False  # empty, or a prefix of the header: the crash came before the header was written
    if head.startswith(MAGIC):
        raise LogFormatError(
            f"{os.fsdecode(path)}: transaction log format version {head[-1]} "
            f"cannot be read by this nbtrack (it reads version {VERSION}); upgrade nbtrack"
        )
    raise LogFormatError(f"{os.fsdecode(path)}: not an nbtrack transaction log (bad magic)")


def _scan(path: StrPath, report: OnCorruption) -> Iterator[tuple[int, int, bytes]]:
    """Yield (start, end, payload) of each intact record of the log at path."""
    with open(path, "rb") as file:  # buffered: read(n) returns n bytes unless at the end
        if _check_header(file, path):
            yield from _records(file, report)


def _records(
    file: BinaryIO, report: OnCorruption, first: int = len(FILE_HEADER), limit: int | None = None
) -> Iterator[tuple[int, int, bytes]]:
    """Reassemble chunks into records: yield (start, end, payload); report records that lost a part.

    Reads bytes [first, limit) of the file (limit None: to its end); first is a record boundary."""
    parts: list[bytes] = []
    start = end = 0  # byte range of the chunks in `parts`

    def drop_partial(reason: str) -> None:
        if parts:
            report(Corruption(start, end - start, reason))
            parts.clear()

    def skipped(offset: int, length: int, reason: str) -> None:
        drop_partial("record cut short by the damage that follows")
        report(Corruption(offset, length, reason))

    for offset, ctype, data in _chunks(file, skipped, first, limit):
        chunk_end = offset + HEADER_SIZE + len(data)
        if ctype == FULL:
            drop_partial("record whose last chunk is missing")
            yield offset, chunk_end, data
        elif ctype == FIRST:
            drop_partial("record whose last chunk is missing")
            parts.append(data)
            start, end = offset, chunk_end
        elif not parts:
            report(Corruption(offset, chunk_end - offset, "chunk of a record whose first chunk is missing"))
        else:
            parts.append(data)
            end = chunk_end
            if ctype == LAST:
                yield start, end, b"".join(parts)
                parts.clear()
    # An unfinished record here was cut off by the end of the file: a torn tail, not damage.


def _chunks(
    file: BinaryIO, skipped: Callable[[int, int, str], None], first: int, limit: int | None
) -> Iterator[tuple[int, int, bytes]]:
    """Yield (offset, type, payload) of each intact chunk in bytes [first, limit); report damage
    and resume at the next block."""
    crc32, unpack_from = zlib.crc32, _CHUNK_HEADER.unpack_from
    pos = first % BLOCK_SIZE
    block_start = first - pos  # block 0 holds the file header: first is past it
    file.seek(block_start)
    while True:
        want = BLOCK_SIZE if limit is None else min(BLOCK_SIZE, limit - block_start)
        if want <= 0:
            return
        block = file.read(want)
        size = len(block)
        # Fewer than HEADER_SIZE bytes left: padding in a full block, a torn header in the last.
        while size - pos >= HEADER_SIZE:
            crc, length, ctype = unpack_from(block, pos)
            data_end = pos + HEADER_SIZE + length
            if data_end > BLOCK_SIZE:
                reason = f"chunk length {length} runs past the end of its block"
            elif data_end > size:
                return  # torn tail: the last chunk was cut off by the end of the file
            else:
                data = block[pos + HEADER_SIZE : data_end]
                if crc32(data, _TYPE_CRC[ctype]) != crc:
                    zeros = block[pos : pos + HEADER_SIZE] == _PADDING
                    reason = "zeros where a chunk should be" if zeros else "bad checksum"
                elif not FULL <= ctype <= LAST:
                    reason = f"unknown chunk type {ctype}"
                else:
                    yield block_start + pos, ctype, data
                    pos = data_end
                    continue
            skipped(block_start + pos, size - pos, reason)
            break
        if size < BLOCK_SIZE:
            return
        block_start += BLOCK_SIZE
        pos = 0
