"""Media values for log(): images, histograms and tables.

    run.log({"samples": nbtrack.Image(array, caption="epoch 3")})
    run.log({"weights": nbtrack.Histogram(w.ravel(), num_bins=64)})
    run.log({"preds": nbtrack.Table(columns=["x", "y"], data=[[1, 2.5], [2, 3.0]])})

The history row holds a small JSON reference in the shape W&B uses:

- image: {"_type": "image-file", "path", "sha256", "size", "width", "height", "format", "caption"?}
- table: {"_type": TABLE_TYPE, "path", "sha256", "size", "ncols", "nrows"}; the file is
  {"columns": [...], "data": [[...], ...]} in standard JSON (a NaN or infinite cell becomes null)
- histogram: {"_type": HISTOGRAM_TYPE, "bins": [edges], "values": [counts]} (inline, no file)

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
import os
import re
import struct
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbtrack.sdk.image_files import JPEG_MAGIC, PNG_MAGIC, encode_png, jpeg_size, png_size
from nbtrack.vocabulary import HISTOGRAM_TYPE, IMAGE_TYPE, TABLE_TYPE

__all__ = ["Histogram", "Image", "Media", "PreparedFile", "Table"]

MAX_BINS = 512
MAX_CAPTION_CHARS = 1000
MAX_IMAGE_PIXELS = 100_000_000  # 10k x 10k: beyond this the caller surely meant something else


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
        reference: dict[str, Any] = {"_type": IMAGE_TYPE}
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
    if data.startswith(PNG_MAGIC):
        size, fmt, suffix = png_size(data), "png", ".png"
    elif data.startswith(JPEG_MAGIC):
        size, fmt, suffix = jpeg_size(data), "jpeg", ".jpg"
    else:
        raise _bad(key, "Image", f"file {path} is neither a PNG nor a JPEG")
    if size is None:
        raise _bad(key, "Image", f"file {path} is a damaged {fmt.upper()} (no image size found)")
    digest = hashlib.sha256(data).hexdigest()
    reference.update(sha256=digest, size=len(data), width=size[0], height=size[1], format=fmt)
    return PreparedFile("images", suffix, digest, reference, lambda: data, len(data))


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
            "_type": HISTOGRAM_TYPE,
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
            "_type": TABLE_TYPE,
            "sha256": digest,
            "size": len(body),
            "ncols": len(names),
            "nrows": len(checked),
        }
        return PreparedFile("tables", ".table.json", digest, reference, lambda: body, len(body))


def _is_dataframe(value: Any) -> bool:
    return type(value).__module__.startswith("pandas") and type(value).__name__ == "DataFrame"
