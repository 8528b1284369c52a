"""Start and watch one internal process, joined to the user process by two one-way pipes.

record_pipe (user -> internal) and result_pipe (internal -> user) are multiprocessing pipes rather
than multiprocessing.Queue objects: a Queue keeps both ends open in both processes, so neither
side could ever tell that the other one died. With a pipe, the reader gets EOF when the writer's
process is gone, which is how the internal process notices a dead kernel and how the user side
notices a dead internal process, without polling.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.process
import os
import sys
import types
import weakref
from collections.abc import Iterator
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

__all__ = ["InternalProcess"]

_started: weakref.WeakSet[InternalProcess] = weakref.WeakSet()  # for _after_fork_in_child


class InternalProcess:
    """A spawned `nbtrack.internal.main.serve` process and the user side of its pipes."""

    def __init__(self, *, preload: bool = False) -> None:
        """Spawn the process; preload=True: it imports the store up front (a warm spare, a local run)."""
        ctx = multiprocessing.get_context("spawn")
        record_reader, self.record_pipe = ctx.Pipe(duplex=False)
        self.result_pipe, result_writer = ctx.Pipe(duplex=False)
        self._process: BaseProcess = ctx.Process(
            target=_serve,
            args=(record_reader, result_writer, preload),
            name="nbtrack-internal",
            daemon=False,  # it must outlive a crashed parent long enough to deliver the run
        )
        with _without_main_module():
            self._process.start()
        # Only the child keeps these ends; holding them here would hide the child's death.
        record_reader.close()
        result_writer.close()
        _started.add(self)

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def exitcode(self) -> int | None:
        """None while it runs; negative: the signal that ended it."""
        return self._process.exitcode

    def is_alive(self) -> bool:
        return self._process.is_alive()

    def join(self, timeout: float) -> bool:
        """Wait for a clean exit; True if the process is gone."""
        self._process.join(timeout)
        return not self._process.is_alive()

    def kill(self) -> None:
        if self._process.is_alive():
            self._process.kill()
            self._process.join(1.0)

    def close_pipes(self) -> None:
        for conn in (self.record_pipe, self.result_pipe):
            with contextlib.suppress(OSError):
                conn.close()


def _serve(records: Connection, results: Connection, preload: bool) -> None:
    """The child's entry point. spawn names the target by module: naming this one, rather than
    nbtrack.internal.main.serve, spares the user process importing the internal process's code
    (the handler, the sender, psutil: ~30 ms of init()) only to name it."""
    from nbtrack.internal.main import serve

    serve(records, results, preload)


def _after_fork_in_child() -> None:
    """A forked child inherits the parent's processes and pipes but is not their parent.

    multiprocessing keeps its started processes in a module-level set, and its exit hook joins
    each of them: in a child that would fail ("can only join a child process") with a traceback
    on every ordinary exit. The child forgets them (they are its parent's to run and end) and
    lets go of its copies of the pipes, so the internal process still sees EOF when the parent
    dies. (multiprocessing.process._children is private; there is no public way to say this.)
    """
    children = getattr(multiprocessing.process, "_children", None)
    for internal in list(_started):
        if isinstance(children, set):
            children.discard(internal._process)
        internal.close_pipes()


os.register_at_fork(after_in_child=_after_fork_in_child)


@contextlib.contextmanager
def _without_main_module() -> Iterator[None]:
    """Stop spawn from re-running the user's script in the child.

    multiprocessing's spawn re-imports `__main__` in the child so that pickled functions from it
    resolve; nbtrack's target lives in the package, so that import is pure cost, and for a
    script without an `if __name__ == "__main__":` guard it would run the user's training loop
    a second time. The preparation data is computed inside start(), so a bare stand-in for
    `__main__` during start() is enough.
    """
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main
