"""nbtrack: an experiment tracker that lives in Jupyter.

run = nbtrack.init(project="mnist", config={"lr": 3e-4})
run.log({"loss": 0.5})
run.finish()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from nbtrack.errors import InternalProcessError, NbtrackError, UsageError
from nbtrack.media import Histogram, Image, Table
from nbtrack.run import Run
from nbtrack.session import finish, init, log

if TYPE_CHECKING:
    from nbtrack.api import Api

run: Run | None = None  # the run started last by init(), until it finishes

__all__ = [
    "Api",
    "Histogram",
    "Image",
    "InternalProcessError",
    "NbtrackError",
    "Run",
    "Table",
    "UsageError",
    "finish",
    "init",
    "log",
    "run",
]


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext nbtrack` (the extension is imported only when loaded)."""
    from nbtrack.extension import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """`%unload_ext nbtrack`: undoes exactly what loading did."""
    from nbtrack.extension import unload_ipython_extension as unload

    unload(ipython)


def __getattr__(name: str) -> Any:
    if name == "Api":  # the read API pulls in SQLAlchemy: import it only when asked for
        from nbtrack.api import Api

        return Api
    raise AttributeError(f"module 'nbtrack' has no attribute {name!r}")
