"""A console line as the store and the server keep it: one JSON object per line of output.

    {"line": "epoch 3: loss 0.21", "stream": "stdout", "_timestamp": 1764384000.5, "_cell": 12}

`stream` is "stdout" or "stderr"; `_cell` (the execution count of the notebook cell that wrote
it) is there when the extension knew the cell. A line that is not such an object (another
client's plain text output) reads as a stdout line with that text.
"""

from __future__ import annotations

import json
from typing import Any

from nbtrack import jsonutil
from nbtrack.proto import nbtrack_pb2 as pb

__all__ = ["console_line", "read_console_line"]

_STREAMS = {pb.OutputRecord.STDOUT: "stdout", pb.OutputRecord.STDERR: "stderr"}


def console_line(output: pb.OutputRecord) -> str:
    line: dict[str, Any] = {"line": output.line, "stream": _STREAMS.get(output.stream, "stdout")}
    line["_timestamp"] = output.timestamp
    if output.cell:
        line["_cell"] = output.cell
    return jsonutil.dumps_str(line)


def read_console_line(text: str) -> dict[str, Any]:
    if text.startswith('{"line":'):
        try:
            line = json.loads(text)
        except ValueError:
            line = None
        if isinstance(line, dict) and isinstance(line.get("line"), str):
            return line
    return {"line": text, "stream": "stdout"}
