"""The panel's front-end as one ES module: nbtrack/web/widget/panel.js with the modules it imports
from nbtrack/web/shared/ inlined.

anywidget loads a module from a blob URL, where panel.js's relative imports
(`../shared/chart.js`, ...) cannot resolve, so `bundle_modules` pastes the modules one after the
other, libraries first, checking that the transformation is exactly the one documented in its
docstring. The web UI loads the same shared files over HTTP as they are (the server serves
nbtrack/web/ at /static/), so both draw charts with the same code.

nbtrack/web/ is a plain folder of the package (package data), the one copy of every front-end
file: the wheel, the server, this module and node's tests (tests/js/) all read it there. The
bundle is made the first time a panel needs it, not at import, and kept for the process.
"""

from __future__ import annotations

import functools
import importlib.resources
import posixpath
import re
from collections.abc import Sequence

__all__ = ["EXPLORER_MODULES", "PANEL_MODULES", "bundle_esm", "bundle_modules", "explorer_esm", "panel_esm"]

# The widget and what it imports, as paths under nbtrack/web/, libraries before the modules that
# import them.
_LIBRARIES = ("shared/vocabulary.js", "shared/chart.js", "shared/chart_svg.js", "widget/theme.js")
PANEL_MODULES = (*_LIBRARIES, "widget/panel.js")
EXPLORER_MODULES = (*_LIBRARIES, "widget/explorer.js")

_IMPORT = re.compile(r"""^import\s*\{([^}]*)\}\s*from\s*["'](\.\.?/[\w./-]+\.js)["'];?[ \t]*$""", re.M)
_ANY_IMPORT = re.compile(r"^\s*import\b", re.M)
_EXPORT = re.compile(r"^export\s+(?!(?:async\s+)?function\b|const\b)", re.M)
_EXPORT_PREFIX = re.compile(r"^export\s+(?=(?:async\s+)?function\b|const\b)", re.M)
_EXPORTED_NAME = re.compile(r"^export\s+(?:async\s+)?(?:function\*?|const)\s+([A-Za-z_$][\w$]*)", re.M)
_TOP_LEVEL_NAME = re.compile(
    r"^(?:export\s+)?(?:async\s+)?(?:function\*?|const|let|var|class)\s+([A-Za-z_$][\w$]*)", re.M
)
_NAME = re.compile(r"[A-Za-z_$][\w$]*")


def bundle_modules(modules: Sequence[tuple[str, str]]) -> str:
    """One ES module from (path, source) pairs, or ValueError if one breaks the contract.

    A path is the module's place under one root, "/"-separated ("shared/chart.js"); a relative
    import ("./chart.js", "../shared/chart.js") means the module it resolves to from there, as a
    browser or node resolves it. The last module is the entry (it may `export default`); the
    others are libraries, listed before any module that imports them. A library exports only
    `export function NAME` / `export const NAME` declarations: the `export ` keyword is removed
    from those lines. A module imports only from earlier modules of the list, with at most one
    `import { a, b } from "./lib.js";` statement per library, naming exported functions or
    constants (no `as`): those statements are removed. The entry imports at least one library.
    No two modules declare the same top-level name. Everything else is kept byte for byte.
    """
    if not modules:
        raise ValueError("nothing to bundle")
    exports: dict[str, set[str]] = {}
    declared: dict[str, str] = {}  # top-level name -> the module declaring it
    parts = []
    for index, (name, source) in enumerate(modules):
        is_entry = index == len(modules) - 1
        statements = [(names, _resolve(name, spec)) for names, spec in _IMPORT.findall(source)]
        body = _IMPORT.sub("", source)
        if _ANY_IMPORT.search(body) or any(lib not in exports for _names, lib in statements):
            if not exports:
                raise ValueError(f"{name} must not import anything: it is inlined into the widget module")
            allowed = ", ".join(f'"{_specifier(name, lib)}"' for lib in exports)
            raise ValueError(f"{name} may import from {allowed} only: the widget module is one file")
        libraries = [lib for _names, lib in statements]
        if len(set(libraries)) != len(libraries):
            raise ValueError(f"{name} needs exactly one `import {{ ... }}` statement per module it uses")
        if is_entry and exports and not statements:
            raise ValueError(f"{name} needs exactly one `import {{ ... }}` statement per module it uses")
        for names_text, lib in statements:
            names = {n.strip() for n in names_text.split(",") if n.strip()}
            if any(not _NAME.fullmatch(n) for n in names):
                raise ValueError(f"{name} imports from {lib} by plain names (no `as`)")
            if names - exports[lib]:
                raise ValueError(f"{lib} does not export {sorted(names - exports[lib])}")
        if not is_entry:
            if _EXPORT.search(source):
                raise ValueError(f"{name} may only export `export function NAME` or `export const NAME`")
            exports[name] = set(_EXPORTED_NAME.findall(source))
            body = _EXPORT_PREFIX.sub("", body)
        names_here = set(_TOP_LEVEL_NAME.findall(body))
        clash = sorted(n for n in names_here if n in declared)
        if clash:
            owners = sorted({declared[n] for n in clash})
            raise ValueError(f"{name} and {' and '.join(owners)} both declare {clash}")
        declared.update(dict.fromkeys(names_here, name))
        parts.append(f"// {name}{'' if is_entry else ', inlined by nbtrack.extension.esm'}\n{body}")
    return "\n".join(parts)


def bundle_esm(chart_source: str, panel_source: str) -> str:
    """The two-file case: chart.js inlined in front of a module that imports from it."""
    return bundle_modules([("chart.js", chart_source), ("panel.js", panel_source)])


def _resolve(importer: str, specifier: str) -> str:
    """The path a relative import in the module at `importer` means ("../x.js" from "a/b.js": "x.js")."""
    return posixpath.normpath(posixpath.join(posixpath.dirname(importer), specifier))


def _specifier(importer: str, path: str) -> str:
    """How the module at `importer` names the module at `path`: the inverse of _resolve."""
    relative = posixpath.relpath(path, posixpath.dirname(importer) or ".")
    return relative if relative.startswith("../") else f"./{relative}"


def _read_web(path: str) -> str:
    resource = importlib.resources.files("nbtrack") / "web"
    for part in path.split("/"):
        resource = resource / part
    return resource.read_text(encoding="utf-8")


@functools.cache
def panel_esm() -> str:
    """The widget's ES module, bundled from the installed package's files on first use."""
    return bundle_modules([(path, _read_web(path)) for path in PANEL_MODULES])


@functools.cache
def explorer_esm() -> str:
    """The explorer's ES module (explorer.py's widgets), bundled the same way on first use."""
    return bundle_modules([(path, _read_web(path)) for path in EXPLORER_MODULES])
