"""nbtrack's UsageError in a cell shows as one line, the way IPython shows its own UsageError.

A UsageError is a mistake in how nbtrack was called (`log()` after `finish()`), and its message says
what to do instead: a traceback through nbtrack's internals only hides that sentence. Outside
IPython nothing changes: a script still gets the exception with its traceback.

IPython has one slot for such a handler (`set_custom_exc`): it is taken only while free, and
given back on unload only if it still holds nbtrack's handler.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from nbtrack.errors import UsageError

__all__ = ["install", "one_line", "uninstall"]


def one_line(error: BaseException) -> str:
    """ "UsageError: <the message>", the message's lines joined into one."""
    return f"{type(error).__name__}: {' '.join(str(error).split())}"


def _show(
    shell: Any,
    etype: type[BaseException],
    value: BaseException,
    tb: TracebackType | None,
    tb_offset: Any = None,
) -> list[str]:
    line = one_line(value)
    # The shell's own way to show an error: in a kernel it becomes the cell's error output (and
    # the execute reply's traceback), in a terminal a printed line.
    shell._showtraceback(etype, value, [line])
    return [line]


def install(shell: Any) -> bool:
    """Show nbtrack's UsageError as one line in this shell; False if another handler has the slot."""
    if getattr(shell, "custom_exceptions", None) != ():
        return False
    shell.set_custom_exc((UsageError,), _show)
    return True


def uninstall(shell: Any) -> None:
    if tuple(getattr(shell, "custom_exceptions", ())) == (UsageError,):
        shell.set_custom_exc((), None)
