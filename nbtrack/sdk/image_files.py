"""Image bytes without Pillow: a PNG encoder (zlib only), the size of a PNG or JPEG file read
from its header, and nearest-neighbour thumbnails. Used by `Image` (media.py) on the caller's
thread, by the media thread that writes the files, and by the panel's preview."""

from __future__ import annotations

import math
import struct
import zlib
from typing import Any

__all__ = ["JPEG_MAGIC", "PNG_MAGIC", "encode_png", "jpeg_size", "png_size", "thumbnail"]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"


def png_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return (width, height) if width and height else None


def jpeg_size(data: bytes) -> tuple[int, int] | None:
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
    import numpy as np  # only once an image is written: `import nbtrack` never loads numpy

    height, width, channels = pixels.shape
    color = {1: 0, 3: 2, 4: 6}[channels]
    scanlines = np.zeros((height, width * channels + 1), dtype=np.uint8)  # filter byte 0 each row
    scanlines[:, 1:] = pixels.reshape(height, width * channels)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)
    return (
        PNG_MAGIC
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(scanlines.tobytes(), level))
        + chunk(b"IEND", b"")
    )


def thumbnail(pixels: Any, max_side: int) -> Any:
    """pixels shrunk by an integer stride so that no side exceeds max_side (nearest neighbour)."""
    height, width = pixels.shape[:2]
    stride = max(1, math.ceil(max(height, width) / max_side))
    return pixels[::stride, ::stride]
