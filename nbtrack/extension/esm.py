"""The panel's front-end as one ES module: js/panel.js with js/chart.js inlined.

anywidget loads a module from a blob URL, where panel.js's relative `import ... from "./chart.js"`
cannot resolve, so `bundle_esm` pastes chart.js in front of panel.js, checking that the
transformation is exactly the one documented in its docstring. The files ship in the package as
`nbtrack/static/` (a symlink to `../js` in the repository; wheels get the real files).
"""

from __future__ import annotations

import importlib.resources
import re

__all__ = ["bundle_esm", "panel_esm"]

_CHART_IMPORT = re.compile(r"""^import\s*\{([^}]*)\}\s*from\s*["']\./chart\.js["'];?[ \t]*$""", re.M)
_ANY_IMPORT = re.compile(r"^\s*import\b", re.M)
_EXPORT = re.compile(r"^export\s+(?!(?:async\s+)?function\b|const\b)", re.M)
_EXPORT_PREFIX = re.compile(r"^export\s+(?=(?:async\s+)?function\b|const\b)", re.M)
_EXPORTED_NAME = re.compile(r"^export\s+(?:async\s+)?(?:function\*?|const)\s+([A-Za-z_$][\w$]*)", re.M)
_TOP_LEVEL_NAME = re.compile(
    r"^(?:export\s+)?(?:async\s+)?(?:function\*?|const|let|var|class)\s+([A-Za-z_$][\w$]*)", re.M
)


def bundle_esm(chart_source: str, panel_source: str) -> str:
    """One ES module from chart.js and panel.js, or ValueError if either breaks the contract.

    chart.js imports nothing and exports only `export function NAME` / `export const NAME`
    declarations: the `export ` keyword is removed from those lines. panel.js imports from
    "./chart.js" only, in a single `import { a, b } from "./chart.js";` statement naming exported
    functions (no `as`): that statement is removed. The two files' top-level names must not
    collide. Everything else is kept byte for byte, chart.js first, so the names are in scope.
    """
    if _ANY_IMPORT.search(chart_source):
        raise ValueError("chart.js must not import anything: it is inlined into the widget module")
    if _EXPORT.search(chart_source):
        raise ValueError("chart.js may only export `export function NAME` or `export const NAME`")
    exported = set(_EXPORTED_NAME.findall(chart_source))
    imports = _CHART_IMPORT.findall(panel_source)
    if len(imports) != 1:
        raise ValueError('panel.js needs exactly one `import { ... } from "./chart.js";` statement')
    panel_body = _CHART_IMPORT.sub("", panel_source)
    if _ANY_IMPORT.search(panel_body):
        raise ValueError('panel.js may import from "./chart.js" only: the widget module is one file')
    names = {name.strip() for name in imports[0].split(",") if name.strip()}
    if any(not re.fullmatch(r"[A-Za-z_$][\w$]*", name) for name in names):
        raise ValueError("panel.js imports from chart.js by plain names (no `as`)")
    if names - exported:
        raise ValueError(f"chart.js does not export {sorted(names - exported)}")
    clash = set(_TOP_LEVEL_NAME.findall(chart_source)) & set(_TOP_LEVEL_NAME.findall(panel_body))
    if clash:
        raise ValueError(f"chart.js and panel.js both declare {sorted(clash)}")
    chart_body = _EXPORT_PREFIX.sub("", chart_source)
    return f"// chart.js, inlined by nbtrack's bundle_esm\n{chart_body}\n// panel.js\n{panel_body}"


def _read_static(name: str) -> str:
    return (importlib.resources.files("nbtrack") / "static" / name).read_text(encoding="utf-8")


def panel_esm() -> str:
    """The widget's ES module, read from the installed package."""
    return bundle_esm(_read_static("chart.js"), _read_static("panel.js"))
