"""What the live panel shows of a run's media: its newest image, as a small inline thumbnail,
and its newest histogram, found among the latest values.

The image's pixels come from the run (`run.last_image`, kept by log()) or, for an image logged
from a PNG or JPEG file, from the run's files folder once the media thread has written it; either
way the data: URL sent stays within `MAX_IMAGE_SRC_CHARS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nbtrack.extension.panel_limits import MAX_IMAGE_SRC_CHARS, is_media
from nbtrack.settings import RUN_FILES
from nbtrack.vocabulary import HISTOGRAM_TYPE, IMAGE_TYPE

__all__ = ["THUMBNAIL_SIDES", "media_preview"]

THUMBNAIL_SIDES = (64, 32, 16)  # the largest that fits MAX_IMAGE_SRC_CHARS is sent


def media_preview(run: Any, latest: Mapping[str, Any]) -> dict[str, Any]:
    """What the panel shows of a run's media: its newest image (a thumbnail of the pixels the run
    kept, as `run.last_image`) and a histogram, from the latest values. For set_state(media=...)."""
    image_key = histogram = None
    last_image = getattr(run, "last_image", None)
    for key, value in latest.items():
        if not is_media(value):
            continue
        if value["_type"] == IMAGE_TYPE and (
            image_key is None or (last_image is not None and value.get("path") == last_image[0])
        ):
            image_key = key
        elif value["_type"] == HISTOGRAM_TYPE:
            histogram = {**value, "key": key}
    image = None
    if image_key is not None:
        reference = latest[image_key]
        if last_image is not None and reference.get("path") == last_image[0]:
            src: str | None = _thumbnail_src(last_image[0], last_image[1])
        else:  # logged from a PNG or JPEG file: shown as it is when it is small enough
            src = _small_file_src(run, reference)
        if src is not None:
            image = {
                "key": image_key,
                "caption": reference.get("caption"),
                "src": src,
                "width": reference.get("width"),
                "height": reference.get("height"),
            }
    return {"image": image, "histogram": histogram}


def _small_file_src(run: Any, reference: Mapping[str, Any]) -> str | None:
    """A data: URL of the run's image file, if it is written already and small enough; else None."""
    import base64

    from nbtrack.sdk.values import check_file_name

    kind = {"png": "png", "jpeg": "jpeg"}.get(str(reference.get("format")))
    try:
        path = Path(run.dir) / RUN_FILES / check_file_name(reference.get("path"))
        if kind is None or path.stat().st_size * 4 // 3 + 30 > MAX_IMAGE_SRC_CHARS:
            return None
        return f"data:image/{kind};base64," + base64.b64encode(path.read_bytes()).decode()
    except (OSError, ValueError, TypeError):
        return None  # not written yet (the media thread writes it soon), or not a file name


_thumbnails: dict[str, str] = {}  # the newest file name -> its data: URL (encoded once)


def _thumbnail_src(name: str, pixels: Any) -> str:
    import base64

    from nbtrack.sdk.image_files import encode_png, thumbnail

    if name in _thumbnails:
        return _thumbnails[name]
    src = ""
    for side in THUMBNAIL_SIDES:
        src = "data:image/png;base64," + base64.b64encode(encode_png(thumbnail(pixels, side), 9)).decode()
        if len(src) <= MAX_IMAGE_SRC_CHARS:
            break
    _thumbnails.clear()
    _thumbnails[name] = src
    return src
