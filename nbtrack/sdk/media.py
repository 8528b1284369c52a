"""Media values for log(): images, histograms and tables.

    run.log({"samples": nbtrack.Image(array, caption="epoch 3")})
    run.log({"weights": nbtrack.Histogram(w.ravel(), num_bins=64)})
    run.log({"preds": nbtrack.Table(columns=["x", "y"], data=[[1, 2.5], [2, 3.0]])})

The history row holds a small JSON reference in the shape W&B uses:

- image: {"_type": "image-file", "path", "sha256", "size", "width", "height", "format", "caption"?}
- table: {"_type": "table-file", "path", "sha256", "size", "ncols", "nrows"}; the file is
  {"columns": [...], "data": [[...], ...]} in standard JSON (a NaN or infinite cell becomes null)
- histogram: {"_type": "histogram", "bins": [edges], "values": [counts]} (inline, no file)

An image or table is a run file (`media/images/<key>_<n>_<hash>.png`, `media/tables/....table.json`)
delivered like a `run.save()` file. log() validates the value and takes a snapshot (a copy of the
pixels) on the caller's thread, so a bad value raises there, naming the key, before anything is
queued; PNG encoding and the write happen later, on the run's "nbtrack-media" thread. The hash of
an image given as pixels is the SHA-256 of its pixels (shape, then the HxWxC uint8 bytes); of one
given as a PNG/JPEG file, and of a table, the SHA-256 of the file itself.

Nothing here imports numpy until a media value is used; Pillow and pandas are never required
(a PIL image or a DataFrame is accepted when the caller has one).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import struct
import sys
import threading
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbtrack.worker import Inbox, StageDied, Worker

__all__ = ["Histogram", "Image", "Media", "PreparedFile", "Table", "encode_png"]

MAX_BINS = 512
MAX_CAPTION_CHARS = 1000
MAX_IMAGE_PIXELS = 100_000_000  # 10k x 10k: beyond this the caller surely meant something else
MAX_WAITING_BYTES = 256 * 2**20  # snapshots waiting for the media thread before log() waits for it
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"


class Media:
    """A value that log() turns into a reference (and, for images and tables, a run file)."""

    def _prepare(self, key: str) -> Any:
        """Check and snapshot for key: a JSON value for the row, or a PreparedFile."""
        raise NotImplementedError


@dataclass(slots=True)
class PreparedFile:
    """A checked media value waiting for its file: the reference (without its path) and the writer."""

    kind: str  # "images" or "tables": the folder under media/
    suffix: str  # ".png", ".jpg", ".table.json"
    digest: str  # hex SHA-256 (see the module docstring)
    reference: dict[str, Any]
    write: Callable[[], bytes]  # the file's bytes; called on the media thread
    nbytes: int  # what the snapshot holds in memory until its file is written
    preview: Any = None  # an image's uint8 HxWxC pixels (for the notebook panel), else None

    def file_name(self, key: str, number: int) -> str:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", key)[:64].strip(".") or "media"
        return f"media/{self.kind}/{safe}_{number}_{self.digest[:20]}{self.suffix}"


def _bad(key: str, what: str, problem: str) -> ValueError:
    return ValueError(f"log(): {what} at key {key!r} {problem}")


def _np() -> Any:
    import numpy

    return numpy


# -- images ------------------------------------------------------------------------------------


class Image(Media):
    """An image: a numpy array (HxW, HxWx1, HxWx3 or HxWx4; uint8 0..255 or float 0..1), a PIL image,
    or the path of a PNG or JPEG file (stored as it is)."""

    def __init__(self, data: Any, caption: str | None = None) -> None:
        if caption is not None and not isinstance(caption, str):
            raise TypeError(f"Image caption must be a str, not {type(caption).__name__}")
        self.data = data
        self.caption = caption

    def __repr__(self) -> str:
        return f"<nbtrack.Image {type(self.data).__name__}>"

    def _prepare(self, key: str) -> PreparedFile:
        reference: dict[str, Any] = {"_type": "image-file"}
        if self.caption is not None:
            reference["caption"] = self.caption[:MAX_CAPTION_CHARS]
        data = self.data
        if isinstance(data, (str, os.PathLike)):
            return _image_file(key, Path(data), reference)
        pixels = _pixels(key, data)
        height, width = int(pixels.shape[0]), int(pixels.shape[1])
        hasher = hashlib.sha256(struct.pack("<3q", *pixels.shape))
        hasher.update(pixels)  # the array's own buffer (C-contiguous): no copy
        digest = hasher.hexdigest()
        reference.update(sha256=digest, width=width, height=height, format="png")
        return PreparedFile(
            "images", ".png", digest, reference, lambda: encode_png(pixels), pixels.nbytes, pixels
        )


def _pil_image(data: Any) -> bool:
    module = sys.modules.get("PIL.Image")  # a PIL image means PIL is imported already
    return module is not None and isinstance(data, module.Image)


def _pixels(key: str, data: Any) -> Any:
    """data as a C-contiguous uint8 HxWxC array (C in 1, 3, 4) owned by us; ValueError naming key."""
    np = _np()
    if _pil_image(data):
        if data.mode not in ("L", "RGB", "RGBA"):
            data = data.convert("RGBA" if "A" in data.mode or "transparency" in data.info else "RGB")
        data = np.asarray(data)
    elif isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(
            f"log(): Image at key {key!r} got bytes; pass a numpy array, a PIL image or a file path"
        )
    try:
        array = np.asarray(data)
    except Exception as exc:
        raise TypeError(
            f"log(): Image at key {key!r} cannot be read as an array ({type(data).__name__}: {exc})"
        ) from None
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        expected = "expected HxW, HxWx1, HxWx3 or HxWx4 (channels last)"
        raise _bad(key, "Image", f"has shape {tuple(array.shape)}; {expected}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise _bad(key, "Image", f"is empty (shape {tuple(array.shape)})")
    if array.shape[0] * array.shape[1] > MAX_IMAGE_PIXELS:
        size = f"{array.shape[0]}x{array.shape[1]}"
        raise _bad(key, "Image", f"has {size} pixels, more than {MAX_IMAGE_PIXELS:,}")
    kind = array.dtype.kind
    if kind == "b":
        return np.ascontiguousarray(array, dtype=np.uint8) * np.uint8(255)
    if kind == "u" and array.dtype.itemsize == 1:
        return np.array(array, dtype=np.uint8, order="C", copy=True)  # a snapshot: the caller may reuse it
    if kind in "iu":
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 255:
            raise _bad(key, "Image", f"has integer values from {low} to {high}; integers must be 0..255")
        return np.ascontiguousarray(array, dtype=np.uint8)
    if kind == "f":
        if not np.isfinite(array).all():
            raise _bad(key, "Image", "holds NaN or infinite values")
        lowest, highest = float(array.min()), float(array.max())
        if lowest < 0.0 or highest > 1.0:
            found = f"has float values from {lowest:g} to {highest:g}"
            raise _bad(key, "Image", f"{found}; floats must be in [0, 1] (or pass uint8)")
        return np.ascontiguousarray(np.rint(array * 255.0), dtype=np.uint8)
    raise _bad(key, "Image", f"has dtype {array.dtype}; pass uint8 (0..255) or floats in [0, 1]")


def _image_file(key: str, path: Path, reference: dict[str, Any]) -> PreparedFile:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"log(): Image at key {key!r}: there is no file at {path}") from None
    except OSError as exc:
        raise OSError(f"log(): Image at key {key!r}: cannot read {path}: {exc.strerror or exc}") from None
    if data.startswith(_PNG_MAGIC):
        size, fmt, suffix = _png_size(data), "png", ".png"
    elif data.startswith(_JPEG_MAGIC):
        size, fmt, suffix = _jpeg_size(data), "jpeg", ".jpg"
    else:
        raise _bad(key, "Image", f"file {path} is neither a PNG nor a JPEG")
    if size is None:
        raise _bad(key, "Image", f"file {path} is a damaged {fmt.upper()} (no image size found)")
    digest = hashlib.sha256(data).hexdigest()
    reference.update(sha256=digest, size=len(data), width=size[0], height=size[1], format=fmt)
    return PreparedFile("images", suffix, digest, reference, lambda: data, len(data))


def _png_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return (width, height) if width and height else None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from the first start-of-frame marker."""
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return (width, height) if width and height else None
        i += 2 + length
    return None


def encode_png(pixels: Any, level: int = 6) -> bytes:
    """A PNG of a uint8 HxWxC array (C = 1 grey, 3 RGB, 4 RGBA), with zlib only (no Pillow)."""
    np = _np()
    height, width, channels = pixels.shape
    color = {1: 0, 3: 2, 4: 6}[channels]
    scanlines = np.zeros((height, width * channels + 1), dtype=np.uint8)  # filter byte 0 each row
    scanlines[:, 1:] = pixels.reshape(height, width * channels)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)
    return (
        _PNG_MAGIC
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(scanlines.tobytes(), level))
        + chunk(b"IEND", b"")
    )


def thumbnail(pixels: Any, max_side: int) -> Any:
    """pixels shrunk by an integer stride so that no side exceeds max_side (nearest neighbour)."""
    height, width = pixels.shape[:2]
    stride = max(1, math.ceil(max(height, width) / max_side))
    return pixels[::stride, ::stride]


# -- histograms --------------------------------------------------------------------------------


class Histogram(Media):
    """A histogram of values (num_bins equal bins over their range), or of a ready
    `np.histogram(...)` result: `Histogram(np_histogram=(counts, edges))`. Stored inline in the row."""

    def __init__(
        self,
        sequence: Any = None,
        np_histogram: tuple[Any, Any] | None = None,
        num_bins: int = 64,
    ) -> None:
        if isinstance(num_bins, bool) or not isinstance(num_bins, int) or not 1 <= num_bins <= MAX_BINS:
            raise ValueError(f"Histogram num_bins must be an int from 1 to {MAX_BINS}, not {num_bins!r}")
        if (sequence is None) == (np_histogram is None):
            raise TypeError("Histogram takes values (a sequence or array) or np_histogram=(counts, edges)")
        self.sequence = sequence
        self.np_histogram = np_histogram
        self.num_bins = num_bins

    def __repr__(self) -> str:
        return f"<nbtrack.Histogram num_bins={self.num_bins}>"

    def _prepare(self, key: str) -> dict[str, Any]:
        np = _np()
        if self.np_histogram is not None:
            pair = self.np_histogram
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise _bad(key, "Histogram", "np_histogram must be (counts, edges), as np.histogram returns")
            counts, edges = _numbers(key, np, pair[0], "counts"), _numbers(key, np, pair[1], "edges")
            if counts.ndim != 1 or edges.ndim != 1 or len(edges) != len(counts) + 1 or not len(counts):
                raise _bad(
                    key,
                    "Histogram",
                    f"has {counts.size} counts and {edges.size} edges; np_histogram needs n + 1 edges",
                )
            if len(counts) > MAX_BINS:
                raise _bad(key, "Histogram", f"has {len(counts)} bins; at most {MAX_BINS}")
            if (counts < 0).any() or (np.diff(edges) < 0).any():
                raise _bad(key, "Histogram", "needs counts >= 0 and increasing edges")
        else:
            values = _numbers(key, np, self.sequence, "values").ravel()
            if not values.size:
                raise _bad(key, "Histogram", "has no values")
            counts, edges = np.histogram(values, bins=self.num_bins)
        return {
            "_type": "histogram",
            "bins": [float(e) for e in edges],
            "values": [int(c) if float(c).is_integer() else float(c) for c in counts],
        }


def _numbers(key: str, np: Any, data: Any, what: str) -> Any:
    try:
        array = np.asarray(data)
    except Exception as exc:
        raise _bad(key, "Histogram", f"{what} cannot be read as an array: {exc}") from None
    if array.dtype.kind not in "biuf":
        raise _bad(key, "Histogram", f"{what} must be numbers, not {array.dtype} (e.g. {_first(array)!r})")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise _bad(key, "Histogram", f"{what} hold NaN or infinite values; drop them first")
    return array


def _first(array: Any) -> Any:
    flat = array.ravel()
    return flat[0] if flat.size else None


# -- tables ------------------------------------------------------------------------------------


class Table(Media):
    """Rows of scalars (numbers, str, bool, None) under named columns: `Table(columns=[...],
    data=[[...], ...])` (`rows=` is the same as data=), or `Table(dataframe=df)` for a pandas DataFrame."""

    def __init__(
        self,
        columns: Sequence[str] | None = None,
        data: Sequence[Sequence[Any]] | None = None,
        rows: Sequence[Sequence[Any]] | None = None,
        dataframe: Any = None,
    ) -> None:
        if data is not None and rows is not None:
            raise TypeError("Table takes data= or rows= (they are the same), not both")
        if _is_dataframe(columns) and dataframe is None:
            columns, dataframe = None, columns  # Table(df)
        self.columns = columns
        self.data = data if data is not None else rows
        self.dataframe = dataframe

    def __repr__(self) -> str:
        return "<nbtrack.Table>"

    def _prepare(self, key: str) -> PreparedFile:
        import orjson

        from nbtrack.sdk.values import _scalar

        columns, data = self.columns, self.data
        if self.dataframe is not None:
            frame = self.dataframe
            if not _is_dataframe(frame):
                raise TypeError(f"log(): Table at key {key!r}: dataframe= must be a pandas DataFrame")
            if columns is not None or data is not None:
                raise TypeError(f"log(): Table at key {key!r}: pass dataframe= alone, or columns and data")
            columns = [str(c) for c in frame.columns]
            data = frame.itertuples(index=False, name=None)
        if data is None:
            raise _bad(key, "Table", "has no data; pass data=[[...], ...] (one list per row)")
        if isinstance(data, (str, bytes)) or not hasattr(data, "__iter__"):
            kind = type(data).__name__
            raise TypeError(f"log(): Table at key {key!r}: data must be a list of rows, not {kind}")
        checked: list[list[Any]] = []
        width = None if columns is None else len(columns)
        for i, row in enumerate(data):
            listlike = isinstance(row, Sequence) or hasattr(row, "tolist")
            if isinstance(row, (str, bytes, dict)) or not listlike:
                raise _bad(key, "Table", f"row {i} is a {type(row).__name__}, not a list of cells")
            cells = row.tolist() if hasattr(row, "tolist") else list(row)
            if width is None:
                width = len(cells)
            if len(cells) != width:
                raise _bad(key, "Table", f"row {i} has {len(cells)} cells but the table has {width} columns")
            checked.append([_scalar(cell, f"{key}[{i}][{j}]") for j, cell in enumerate(cells)])
        if columns is None:
            columns = [str(j) for j in range(width or 0)]
        names = list(columns) if not isinstance(columns, str) else None
        if names is None or not all(isinstance(c, str) for c in names):
            raise TypeError(f"log(): Table at key {key!r}: columns must be a list of str")
        if len(set(names)) != len(names):
            raise _bad(key, "Table", f"has a column name twice: {names}")
        if not names:
            raise _bad(key, "Table", "has no columns")
        # Standard JSON, so any reader can open the file: a NaN or infinite cell is written as null.
        body = orjson.dumps({"columns": names, "data": checked})
        digest = hashlib.sha256(body).hexdigest()
        reference = {
            "_type": "table-file",
            "sha256": digest,
            "size": len(body),
            "ncols": len(names),
            "nrows": len(checked),
        }
        return PreparedFile("tables", ".table.json", digest, reference, lambda: body, len(body))


def _is_dataframe(value: Any) -> bool:
    return type(value).__module__.startswith("pandas") and type(value).__name__ == "DataFrame"


# -- writing files -------------------------------------------------------------------------------


class MediaWriter(Worker[tuple[str, PreparedFile]]):
    """The run's "nbtrack-media" thread (a `Worker` over an inbox of files to write): encodes and
    writes media files into the run's files folder (each whole or not at all), then announces each
    with `deliver(name)` (a FilesRecord). Created with the run's first image or table.

    Snapshots waiting for it are bounded: while more than MAX_WAITING_BYTES wait, submit() (and so
    log() of more media) waits for the thread to catch up, rather than memory growing without end.
    A file that cannot be written is said (warn) and skipped. Should the thread itself fail (a
    bug), that is said once, no call waits for it any more, and later files are said and skipped.
    """

    idle_seconds = 1.0  # idle() does nothing: a submit() or stop() wakes it at once

    def __init__(self, files_dir: Path, deliver: Callable[[str], None], warn: Callable[[str], None]) -> None:
        self._files_dir = files_dir
        self._deliver = deliver
        self._warn = warn
        self._pending = 0  # files submitted and not yet written
        self._waiting_bytes = 0
        self._idle = threading.Condition()
        self.failure: str | None = None  # the thread failed: nothing is written any more
        # The bound is in bytes (above), not in files: the inbox never makes submit() wait.
        self._jobs: Inbox[tuple[str, PreparedFile]] = Inbox(sys.maxsize)
        super().__init__("nbtrack-media", self._jobs, self._died)

    def submit(self, jobs: list[tuple[str, PreparedFile]]) -> None:
        left = list(jobs)
        with self._idle:
            # Never waits for an empty queue: one snapshot larger than the bound still goes through.
            self._idle.wait_for(self._has_room)
            while left and self.failure is None:
                try:
                    self._jobs.put(left[0])
                except StageDied:  # it failed just now: its on_fatal is on its way
                    break
                self._pending += 1
                self._waiting_bytes += left.pop(0)[1].nbytes
        reason = self.failure or f"the {self.name} thread failed"
        for name, _ in left:
            self._warn(f"could not write media file {name}: {reason}")

    @property
    def pending(self) -> int:
        """Files submitted and not yet written and announced."""
        return self._pending

    def _has_room(self) -> bool:
        return self._pending == 0 or self._waiting_bytes < MAX_WAITING_BYTES or self.failure is not None

    def drain(self, timeout: float) -> bool:
        """Wait until every submitted file is written and announced; False on timeout (or if the
        thread failed)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0 or self.failure is not None, timeout) and (
                self._pending == 0
            )

    def handle(self, item: tuple[str, PreparedFile]) -> None:
        name, prepared = item
        try:
            target = self._files_dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".partial")
            partial.write_bytes(prepared.write())
            partial.replace(target)
            self._deliver(name)
        except Exception as exc:
            self._warn(f"could not write media file {name}: {type(exc).__name__}: {exc}")
        finally:
            with self._idle:
                self._pending -= 1
                self._waiting_bytes -= prepared.nbytes
                self._idle.notify_all()

    def _died(self, thread: str, exc: BaseException) -> None:
        """The thread failed (a bug; the Worker logged it): say so once and wake every waiter."""
        with self._idle:
            self.failure = f"the {thread} thread failed ({type(exc).__name__}: {exc})"
            self._idle.notify_all()
        self._warn(f"media files are no longer written: {self.failure}")
