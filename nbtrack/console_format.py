"""A console line as the store and the server keep it: one JSON object per line of output.

    {"line": "epoch 3: loss 0.21", "stream": "stdout", "_timestamp": 1764384000.5, "_cell": 12}

`stream` is "stdout" or "stderr"; `_cell` (the execution count of the notebook cell that wrote
it) is there when the extension knew the cell. A line that is not such an object (another
client's plain text output) reads as a stdout line with that text.

Lines are made by `LineAssembler`, the one implementation the notebook's capture
(extension/console.py) and a script's (sdk/console_capture.py) share: a carriage return moves
back to the start of the line and what follows overwrites it (a progress bar that redraws itself
1,000 times is one line, in its final state), and a line is complete at a newline.
"""

from __future__ import annotations

import json
from typing import Any

from nbtrack import jsonutil
from nbtrack.proto import nbtrack_pb2 as pb

__all__ = ["MAX_LINE", "LineAssembler", "console_line", "read_console_line"]

MAX_LINE = 64 * 1024  # characters: a longer line is kept in parts of this size
_NONE: list[str] = []  # feed()'s answer when no line is complete (never changed)
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


class LineAssembler:
    """Turns written text into complete lines, applying carriage returns like a terminal."""

    def __init__(self) -> None:
        self._line = ""
        self._cursor = 0

    def feed(self, text: str) -> list[str]:
        if "\n" not in text and "\r" not in text and self._cursor == len(self._line) < MAX_LINE:
            # The common write: a piece of a line (print() writes each argument on its own).
            self._line += text
            self._cursor = len(self._line)
            return _NONE
        if "\r" not in text and self._cursor == len(self._line) and len(self._line) + len(text) <= MAX_LINE:
            # The next most common: whole lines, no carriage return, none too long.
            parts = (self._line + text).split("\n")
            self._line = parts.pop()
            self._cursor = len(self._line)
            return parts
        done: list[str] = []
        for i, part in enumerate(text.split("\n")):
            if i:  # a newline ended the line before this part
                done.append(self._line)
                self._line, self._cursor = "", 0
            for j, segment in enumerate(part.split("\r")):
                if j:
                    self._cursor = 0
                if segment:
                    end = self._cursor + len(segment)
                    self._line = self._line[: self._cursor] + segment + self._line[end:]
                    self._cursor = end
            while len(self._line) > MAX_LINE:
                done.append(self._line[:MAX_LINE])
                self._line = self._line[MAX_LINE:]
                self._cursor = max(0, self._cursor - MAX_LINE)
        return done

    def partial(self) -> str | None:
        """The unfinished line, if any, left as it is."""
        return self._line or None

    def flush(self) -> str | None:
        """The unfinished line, if any (and start afresh)."""
        line, self._line, self._cursor = self._line, "", 0
        return line or None
