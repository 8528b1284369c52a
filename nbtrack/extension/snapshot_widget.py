"""How nbtrack's notebook widgets display: the widget view plus static text/plain and text/html
snapshots in one mime bundle (nbconvert, nbval, GitHub and front ends without widgets show those),
and the snapshot alone once the widget is closed. The live panel (panel.py) and the explorer
(explorer.py) are both `SnapshotWidget`s."""

from __future__ import annotations

from typing import Any

import anywidget
import traitlets

__all__ = ["SnapshotWidget"]


class SnapshotWidget(anywidget.AnyWidget):
    """An anywidget whose display carries its static snapshots (text_summary, html_summary)."""

    # Declared as a trait (anywidget adds its own only to a class without one), so each widget's
    # value, its bundle, is made when the first one syncs its state, not when a module is imported.
    _esm = traitlets.Unicode().tag(sync=True)

    def text_summary(self) -> str:
        """A plain-text snapshot of what the widget shows."""
        raise NotImplementedError

    def html_summary(self) -> str:
        """A static HTML snapshot (inline styles, inline SVG) of what the widget shows."""
        raise NotImplementedError

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """The widget view plus text/plain and text/html snapshots for non-widget front-ends."""
        bundle: Any = super()._repr_mimebundle_(**kwargs)
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle or {}, {})
        data = {**data, "text/plain": self.text_summary(), "text/html": self.html_summary()}
        return data, metadata

    # ipywidgets' close() sets _repr_mimebundle_ to None on the instance; IPython then falls back
    # to these, so a closed widget still displays as its snapshot.
    def _repr_html_(self) -> str:
        return self.html_summary()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text_summary())
