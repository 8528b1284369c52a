"""nbtrack: an experiment tracker that lives in Jupyter.

run = nbtrack.init(project="mnist", config={"lr": 3e-4})
run.log({"loss": 0.5})
run.finish()

The names below are imported when first used (PEP 562), so that `import nbtrack` stays cheap and
the internal process, which imports `nbtrack.internal`, never loads the SDK it does not run.
`nbtrack.run` is the current run (None until init()), never a module: `Run` lives in nbtrack.sdk.
Everything public is named here (and `nbtrack.errors`); the modules below are private to the
package and may change between versions, so `dir(nbtrack)` does not list them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from nbtrack.errors import InternalProcessError, NbtrackError, UsageError

if TYPE_CHECKING:
    from nbtrack.api import Api
    from nbtrack.artifacts.artifact import Artifact
    from nbtrack.extension.explorer import compare, show
    from nbtrack.sdk.media import Histogram, Image, Table
    from nbtrack.sdk.run import Run
    from nbtrack.sdk.session import finish, init, log

__version__ = "0.1.0"

run: Run | None = None  # the run started last by init(), until it finishes

__all__ = [
    "Api",
    "Artifact",
    "Histogram",
    "Image",
    "InternalProcessError",
    "NbtrackError",
    "Run",
    "Table",
    "UsageError",
    "compare",
    "finish",
    "init",
    "log",
    "run",
    "show",
]

_LAZY = {  # name -> the module that defines it
    "Api": "nbtrack.api",  # the read API pulls in SQLAlchemy
    "Artifact": "nbtrack.artifacts.artifact",
    "Histogram": "nbtrack.sdk.media",
    "Image": "nbtrack.sdk.media",
    "Table": "nbtrack.sdk.media",
    "Run": "nbtrack.sdk.run",
    "finish": "nbtrack.sdk.session",
    "init": "nbtrack.sdk.session",
    "log": "nbtrack.sdk.session",
    "show": "nbtrack.extension.explorer",  # the notebook's explorer needs nbtrack[jupyter]
    "compare": "nbtrack.extension.explorer",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nbtrack' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    """The public names only: the modules below (imported or not) are the package's own."""
    return sorted({*__all__, "__version__", "load_ipython_extension", "unload_ipython_extension"})


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext nbtrack` (the extension is imported only when loaded)."""
    from nbtrack.extension import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """`%unload_ext nbtrack`: undoes exactly what loading did."""
    from nbtrack.extension import unload_ipython_extension as unload

    unload(ipython)
