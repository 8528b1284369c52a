"""The IPython extension: `%load_ext nbtrack` shows a live panel under every run started in a cell.

Loading installs the init() hook (defaults from `c.NBTrack`, a warm internal process, a panel
per run), the cell hooks, the magics and the one-line display of nbtrack's UsageError; unloading
undoes exactly that, after finishing the kernel's live runs.
"""

from __future__ import annotations

import atexit
from typing import Any

__all__ = ["load_ipython_extension", "unload_ipython_extension"]

_loaded: dict[int, Any] = {}  # id(shell) -> (tracker, previous init hook, pushed the name?)


def load_ipython_extension(shell: Any) -> None:
    from nbtrack.extension import usage_errors
    from nbtrack.extension.config import NBTrack
    from nbtrack.extension.kernel import KernelTracker
    from nbtrack.extension.magics import NBTrackMagics
    from nbtrack.sdk import session

    if id(shell) in _loaded:
        return
    import nbtrack

    config = NBTrack(parent=shell)
    tracker = KernelTracker(shell, config)
    # `%load_ext nbtrack` then `nbtrack.init()` works without an import, as in the docs.
    added_name = "nbtrack" not in shell.user_ns
    if added_name:
        shell.push({"nbtrack": nbtrack})
    _loaded[id(shell)] = (tracker, session.init_hook, added_name)
    session.init_hook = tracker
    shell.events.register("pre_run_cell", tracker.pre_run_cell)
    shell.events.register("post_run_cell", tracker.post_run_cell)
    shell.register_magics(NBTrackMagics(shell, tracker))
    usage_errors.install(shell)
    atexit.register(tracker.close)  # interpreter exit: finish runs, stop the spare
    _wrap_kernel_shutdown(shell, tracker)


def unload_ipython_extension(shell: Any) -> None:
    from nbtrack.extension import usage_errors
    from nbtrack.sdk import session

    entry = _loaded.pop(id(shell), None)
    if entry is None:
        return
    tracker, previous_hook, added_name = entry
    atexit.unregister(tracker.close)
    _unwrap_kernel_shutdown(shell)
    tracker.close()
    session.init_hook = previous_hook
    shell.events.unregister("pre_run_cell", tracker.pre_run_cell)
    shell.events.unregister("post_run_cell", tracker.post_run_cell)
    magics = shell.magics_manager.magics
    magics["line"].pop("nbtrack", None)
    magics["cell"].pop("nbtrack", None)
    usage_errors.uninstall(shell)
    if added_name:
        shell.user_ns.pop("nbtrack", None)


def _wrap_kernel_shutdown(shell: Any, tracker: Any) -> None:
    """Finish the kernel's runs when Jupyter asks it to shut down.

    ipykernel answers a shutdown request by terminating its children and then stopping; the
    interpreter's atexit comes too late (Jupyter may have killed the kernel by then), so the
    runs are finished first, from the kernel's own do_shutdown.
    """
    kernel = getattr(shell, "kernel", None)
    if kernel is None or not hasattr(kernel, "do_shutdown"):
        return  # a plain IPython terminal: atexit is enough
    original = kernel.do_shutdown

    def do_shutdown(restart: bool) -> Any:
        tracker.close()
        return original(restart)

    kernel.do_shutdown = do_shutdown


def _unwrap_kernel_shutdown(shell: Any) -> None:
    kernel = getattr(shell, "kernel", None)
    if kernel is not None and "do_shutdown" in vars(kernel):
        del kernel.do_shutdown  # the class's own method shows through again
