"""`nbtrack dump PATH`: a transaction log as JSON lines, for people reading it after a crash."""

from __future__ import annotations

import contextlib
import os
from typing import Any, TextIO

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from nbtrack import jsonutil
from nbtrack.txlog import Corruption, iter_records

__all__ = ["dump"]

_LISTED_RANGES = 10  # a badly damaged log must not produce a megabyte-long summary line


def dump(path: str | os.PathLike[str], out: TextIO, err: TextIO) -> int:
    """Write each record of the log at path to out as one JSON line, damage to err; return the count.

    Raises LogFormatError if path is not a transaction log.
    """
    skipped: list[Corruption] = []
    count = 0
    for record in iter_records(path, skipped.append):
        fields = MessageToDict(record, preserving_proto_field_name=True)
        _decode_json_fields(record, fields)
        out.write(jsonutil.dumps_str(fields))
        out.write("\n")
        count += 1
    if skipped:
        err.write(_describe(skipped) + "\n")
    return count


def _decode_json_fields(message: Message, fields: dict[str, Any]) -> None:
    """In fields (MessageToDict of message), show bytes fields named *_json as the JSON they hold."""
    for field, value in message.ListFields():
        if field.type == FieldDescriptor.TYPE_BYTES and field.name.endswith("_json"):
            if not field.is_repeated:
                # Not JSON after all: keep the base64, a dump must show damaged records too.
                with contextlib.suppress(ValueError):
                    fields[field.name] = jsonutil.loads(value)
        elif field.message_type is not None and not field.message_type.GetOptions().map_entry:
            if field.is_repeated:
                for item, item_fields in zip(value, fields[field.name], strict=True):
                    _decode_json_fields(item, item_fields)
            else:
                _decode_json_fields(value, fields[field.name])


def _describe(skipped: list[Corruption]) -> str:
    """One line: how many ranges and bytes were skipped, and where and why."""
    ranges = "range" if len(skipped) == 1 else "ranges"
    total = sum(c.length for c in skipped)
    details = [f"offset {c.offset}: {c.reason}" for c in skipped[:_LISTED_RANGES]]
    if len(skipped) > _LISTED_RANGES:
        details.append(f"... {len(skipped) - _LISTED_RANGES} more")
    return f"corruption: {len(skipped)} {ranges}, {total} bytes skipped ({'; '.join(details)})"
