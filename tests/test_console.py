"""LineAssembler: written text becomes lines as a terminal shows them."""

from __future__ import annotations

import pytest

from nbtrack.extension.console import MAX_LINE, ConsoleCapture, LineAssembler


@pytest.mark.parametrize(
    ("writes", "lines", "rest"),
    [
        (["a", "b", "c\n"], ["abc"], None),  # print() writes its arguments one by one
        (["one\ntwo\nthr", "ee\n"], ["one", "two", "three"], None),
        (["\rprogress 1/3", "\rprogress 2/3", "\rprogress 3/3", "\n"], ["progress 3/3"], None),
        (["abcdef\rxy\n"], ["xycdef"], None),  # a shorter redraw overwrites only its own width
        (["50%\r\n"], ["50%"], None),  # \r\n ends the line as it is
        (["tail without newline"], [], "tail without newline"),
        (["12345\r", "ab"], [], "ab345"),
        (["\n\n"], ["", ""], None),  # empty lines are lines
    ],
)
def test_lines_as_a_terminal_shows_them(writes: list[str], lines: list[str], rest: str | None) -> None:
    assembler = LineAssembler()
    done = [line for text in writes for line in assembler.feed(text)]
    assert done == lines
    assert assembler.flush() == rest


def test_a_line_longer_than_the_limit_is_kept_in_parts() -> None:
    assembler = LineAssembler()
    done = assembler.feed("x" * (2 * MAX_LINE + 5) + "\n")
    assert done == ["x" * MAX_LINE, "x" * MAX_LINE, "xxxxx"]


def test_a_failing_sink_never_reaches_the_writer() -> None:
    calls = []

    def sink(stream: str, line: str, timestamp: float) -> None:
        calls.append(line)
        raise RuntimeError("the run is gone")

    capture = ConsoleCapture(sink)
    capture.write("stdout", "one\ntwo\n")  # does not raise
    capture.write("stderr", "three\n")
    assert calls == ["one", "three"]  # the rest of a failed batch is dropped, later lines still go


def test_writes_made_by_the_sink_itself_are_not_captured() -> None:
    seen = []
    capture: ConsoleCapture

    def sink(stream: str, line: str, timestamp: float) -> None:
        seen.append(line)
        capture.write("stderr", "nbtrack says something\n")  # e.g. a warning logged while sending

    capture = ConsoleCapture(sink)
    capture.write("stdout", "hello\n")
    assert seen == ["hello"]
