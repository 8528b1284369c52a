"""Every module of nbtrack imports on its own, in a fresh interpreter.

A module that only imports after some other module has been imported is one half of an import
cycle (or leans on an import it never makes): it works in the order the tests happen to use and
fails for the first user who imports it first. One `python -c "import X"` per module, a few at a
time.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "nbtrack"


def _modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(ROOT).with_suffix("")
        parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
        names.append(".".join(parts))
    return names


def _import_alone(module: str) -> str | None:
    """None if `import module` works in a fresh interpreter, else what it printed."""
    paths = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}  # this checkout's nbtrack first
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode == 0:
        return None
    return f"{module}:\n{done.stderr.strip()[-2000:]}"


def test_every_module_imports_alone_in_a_fresh_interpreter() -> None:
    modules = _modules()
    assert "nbtrack.store.store" in modules and "nbtrack.extension.panel" in modules, modules
    with ThreadPoolExecutor(max_workers=max(2, min(8, (os.cpu_count() or 1) * 2))) as pool:
        failures = [failure for failure in pool.map(_import_alone, modules) if failure]
    assert not failures, "modules that do not import alone:\n\n" + "\n\n".join(failures)


def test_the_package_shows_its_public_names_and_nbtrack_run_is_never_a_module() -> None:
    """`nbtrack.run` is the current run, whichever modules were imported before (it once was also
    a module, so `import nbtrack.run as m` gave None); dir() lists the public names only."""
    code = (
        "import importlib, nbtrack, nbtrack.sdk.run, nbtrack.sdk.session, nbtrack.api\n"
        "assert nbtrack.run is None, nbtrack.run\n"
        "try:\n"
        "    importlib.import_module('nbtrack.run')\n"
        "except ModuleNotFoundError:\n"
        "    pass\n"
        "else:\n"
        "    raise AssertionError('nbtrack.run is a module')\n"
        "names = dir(nbtrack)\n"
        "assert 'init' in names and 'Api' in names and 'run' in names, names\n"
        "assert not {'sdk', 'api', 'errors', 'transport'} & set(names), names\n"
        "assert all(getattr(nbtrack, name) is not None or name == 'run' for name in nbtrack.__all__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


# What each layer may not import (docs/architecture.md, "The map"): the layers below the SDK never
# reach up into it, and the store knows nothing of who writes to it.
FORBIDDEN = {
    "store": ("sdk", "extension", "transport", "internal", "online", "server", "sync"),
    "internal": ("sdk", "extension", "transport", "server", "sync"),
    "online": ("sdk", "extension", "transport", "internal", "server", "sync"),
    "server": ("sdk", "extension", "transport", "internal", "online", "sync"),
    "transport": ("sdk", "extension", "server", "sync"),
}
# The one crossing: the internal process's entry point, named by the module that spawns it.
ALLOWED = {("nbtrack/transport/process.py", "nbtrack.internal.main")}


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {name for name in names if name.startswith("nbtrack.")}


def test_no_layer_imports_the_layers_above_it() -> None:
    crossings = []
    for layer, above in FORBIDDEN.items():
        for path in sorted((PACKAGE / layer).rglob("*.py")):
            where = str(path.relative_to(ROOT))
            for name in _imported(path):
                if name.split(".")[1] in above and (where, name) not in ALLOWED:
                    crossings.append(f"{where} imports {name}")
    assert not crossings, "\n".join(crossings)


def test_building_an_artifact_does_not_load_the_store() -> None:
    """`nbtrack.Artifact` (hashing files, references) is the SDK's: SQLAlchemy, the slowest import,
    is for what reads or writes a store."""
    code = (
        "import sys, nbtrack\n"
        "art = nbtrack.Artifact('a', type='t')\n"
        "loaded = sorted(m for m in sys.modules if m == 'sqlalchemy' or m.startswith('nbtrack.store'))\n"
        "print(loaded)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
