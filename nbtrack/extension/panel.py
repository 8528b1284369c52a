"""The live run panel: an anywidget whose synced state stays small however long the run.

The front-end is `web/widget/panel.js` plus the `web/shared/` modules it imports (`chart.js` and
`chart_svg.js` are the chart drawing the web UI uses too), bundled into one module by `esm.py`
when the first panel is made. `_esm` holds that text (no file), so anywidget's file watching does
not apply; after editing `nbtrack/web/`, restart the kernel.

Every value set_state syncs is cut to the caps of panel_limits.py, so one update never exceeds
`MAX_UPDATE_BYTES`. What the panel shows of media comes from media_preview.py; its text/plain
and text/html snapshots from snapshot.py.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import traitlets

from nbtrack import jsonutil
from nbtrack.extension import snapshot
from nbtrack.extension.esm import panel_esm
from nbtrack.extension.panel_limits import (
    MAX_ALERT_TEXT_CHARS,
    MAX_ALERT_TITLE_CHARS,
    MAX_ALERTS,
    MAX_ARTIFACTS,
    MAX_DETAILS,
    MAX_HEADER_CHARS,
    MAX_KEY_CHARS,
    MAX_METRICS,
    MAX_NOTICE_CHARS,
    MAX_NOTICES,
    MAX_SERIES,
    MAX_STATE_CHARS,
    clean_histogram,
    clean_image,
    clean_series,
    clean_text,
    clean_value,
    is_media,
    safe_url,
    shown,
)
from nbtrack.extension.snapshot_widget import SnapshotWidget
from nbtrack.formatting import format_bytes
from nbtrack.vocabulary import ALERT_LEVELS

__all__ = ["RunPanel", "panel_details"]


_NO_MEDIA: dict[str, Any] = {"image": None, "histogram": None}


class RunPanel(SnapshotWidget):
    """The live panel of one run; fed by `set_state`, snapshotted by `text_summary`/`html_summary`."""

    header = traitlets.Dict().tag(sync=True)  # name, id, project, entity, url (http(s) or None)
    state = traitlets.Unicode("starting").tag(sync=True)
    step = traitlets.Int(-1).tag(sync=True)  # the last step logged (-1: no row yet), as the web UI
    rows = traitlets.Int(0).tag(sync=True)  # rows logged, shown beside the step
    runtime = traitlets.Float(0.0).tag(sync=True)
    metrics = traitlets.Dict().tag(sync=True)  # key -> latest value, at most MAX_METRICS keys
    metrics_omitted = traitlets.Int(0).tag(sync=True)
    series = traitlets.Dict().tag(sync=True)  # key -> {"steps": [...], "values": [...]}
    series_omitted = traitlets.Int(0).tag(sync=True)
    pending = traitlets.Dict({"rows": 0, "bytes": 0}).tag(sync=True)
    notices = traitlets.List(traitlets.Unicode()).tag(sync=True)
    details = traitlets.List(traitlets.Unicode()).tag(sync=True)  # see panel_details()
    alerts = traitlets.List(traitlets.Dict()).tag(
        sync=True
    )  # the newest run.alert()s: {"level", "title", "text"}
    # The newest artifacts the run logged or used: {"role": "logged"|"used", "type", "name",
    # "version" ("" until the store numbered it), "files", "bytes"}; older ones only counted.
    artifacts = traitlets.List(traitlets.Dict()).tag(sync=True)
    artifacts_omitted = traitlets.Int(0).tag(sync=True)
    # The newest image {key, caption, src (a PNG data: URL), width, height} and histogram
    # {key, bins, values}, each None until one is logged (see media_preview.py).
    media = traitlets.Dict(_NO_MEDIA).tag(sync=True)

    def __init__(
        self,
        *,
        name: str,
        run_id: str,
        project: str,
        entity: str,
        url: str | None = None,
        deterministic: bool = False,
    ) -> None:
        header = {
            "name": clean_text(str(name), MAX_HEADER_CHARS),
            "id": clean_text(str(run_id), MAX_HEADER_CHARS),
            "project": clean_text(str(project), MAX_HEADER_CHARS),
            "entity": clean_text(str(entity), MAX_HEADER_CHARS),
            "url": safe_url(url),
        }
        super().__init__(header=header)
        self.deterministic = deterministic
        self._update_lock = threading.Lock()  # set_state runs on the kernel's results thread

    @traitlets.default("_esm")
    def _bundled_esm(self) -> str:
        return panel_esm()

    def set_state(
        self,
        *,
        state: str | None = None,
        step: int | None = None,
        rows: int | None = None,
        runtime: float | None = None,
        metrics: Mapping[str, Any] | None = None,
        series: Mapping[str, Any] | None = None,
        pending: Mapping[str, int] | None = None,
        notices: Sequence[str] | None = None,
        media: Mapping[str, Any] | None = None,
        details: Sequence[str] | None = None,
        alerts: Sequence[Mapping[str, Any]] | None = None,
        artifacts: Sequence[Mapping[str, Any]] | None = None,
        artifacts_total: int | None = None,
    ) -> None:
        """Update the panel in one comm message holding only the traits whose value changed.

        None leaves a trait as it is. Values are capped as panel_limits.py says; a series is
        {"steps": [...], "values": [...]} (or a (steps, values) pair) of any length.
        artifacts_total: how many artifacts the run has in all, when `artifacts` lists only the
        newest (default: as many as listed).
        """
        with self._update_lock, self.hold_sync():
            if state:
                self.state = clean_text(str(state).lower(), MAX_STATE_CHARS)
            if step is not None:
                self.step = max(-1, min(2**63 - 1, int(step)))
            if rows is not None:
                self.rows = max(0, min(2**63 - 1, int(rows)))
            if runtime is not None and math.isfinite(runtime):
                self.runtime = float(runtime)
            if metrics is not None:
                keys = [k for k in metrics if shown(k) and not is_media(metrics[k])]
                self.metrics = {
                    clean_text(k, MAX_KEY_CHARS): clean_value(metrics[k]) for k in keys[:MAX_METRICS]
                }
                self.metrics_omitted = max(0, len(keys) - MAX_METRICS)
            if series is not None:
                self._set_series(series)
            if pending is not None:
                self.pending = {
                    "rows": max(0, min(2**63 - 1, int(pending.get("rows", 0)))),
                    "bytes": max(0, min(2**63 - 1, int(pending.get("bytes", 0)))),
                }
            if notices is not None:
                self.notices = [clean_text(str(n), MAX_NOTICE_CHARS) for n in list(notices)[-MAX_NOTICES:]]
            if alerts is not None:
                self.alerts = [
                    {
                        "level": a.get("level") if a.get("level") in ALERT_LEVELS else "INFO",
                        "title": clean_text(str(a.get("title", "")), MAX_ALERT_TITLE_CHARS),
                        "text": clean_text(str(a.get("text", "")), MAX_ALERT_TEXT_CHARS),
                    }
                    for a in list(alerts)[-MAX_ALERTS:]
                ]
            if artifacts is not None:
                self.artifacts = [clean_artifact(a) for a in list(artifacts)[-MAX_ARTIFACTS:]]
                total = max(len(artifacts), artifacts_total or 0)
                self.artifacts_omitted = max(0, total - len(self.artifacts))
            if details is not None:
                self.details = [clean_text(str(d), MAX_NOTICE_CHARS) for d in list(details)[:MAX_DETAILS]]
            if media is not None:
                self.media = {
                    "image": clean_image(media.get("image")),
                    "histogram": clean_histogram(media.get("histogram")),
                }

    def _set_series(self, series: Mapping[str, Any]) -> None:
        by_key = {clean_text(k, MAX_KEY_CHARS): k for k in series if shown(k)}
        # Charts follow the order of the metrics shown, then any other series.
        order = [k for k in self.metrics if k in by_key] + [k for k in by_key if k not in self.metrics]
        self.series = {k: clean_series(series[by_key[k]]) for k in order[:MAX_SERIES]}
        # The handler sends MAX_SERIES series at most: the other numeric metrics are the omitted.
        numeric = sum(1 for v in self.metrics.values() if type(v) in (int, float))
        self.series_omitted = max(0, len(order) - MAX_SERIES, numeric - len(self.series))

    # -- static snapshots (snapshot.py) ----------------------------------------------------------

    def text_summary(self) -> str:
        """A plain-text snapshot: a status line, then one line per metric, pending, notices, link."""
        return snapshot.text_summary(self)

    def html_summary(self) -> str:
        """A static HTML snapshot (inline styles, an SVG sparkline per charted metric)."""
        return snapshot.html_summary(self)


def clean_artifact(artifact: Mapping[str, Any]) -> dict[str, Any]:
    """One line of the panel's artifact list, capped (panel_limits.py)."""
    return {
        "role": "used" if artifact.get("role") == "used" else "logged",
        "type": clean_text(str(artifact.get("type", "")), MAX_KEY_CHARS),
        "name": clean_text(str(artifact.get("name", "")), MAX_KEY_CHARS),
        "version": clean_text(str(artifact.get("version") or ""), MAX_STATE_CHARS),
        "files": max(0, min(2**53, int(artifact.get("files", 0)))),
        "bytes": max(0, min(2**53, int(artifact.get("bytes", 0)))),
    }


def panel_details(live: Any) -> list[str]:
    """The lines under a panel's status, from a LiveResult: which cells the newest steps came
    from ("steps 200-340 from cell [12]", attempts named), and the machine's load."""
    lines = []
    spans = list(live.cells)[-3:]
    if spans:
        parts = []
        for span in spans:
            steps = (
                f"step {span.first_step}"
                if span.first_step == span.last_step
                else f"steps {span.first_step}-{span.last_step}"
            )
            attempt = f" (attempt {span.attempt + 1})" if span.attempt else ""
            parts.append(f"{steps} from cell [{span.execution_count}]{attempt}")
        lines.append("; ".join(parts))
    if live.system_json:
        system = jsonutil.loads(live.system_json)
        load = [f"CPU {system.get('system.cpu', 0):.0f}%", f"memory {system.get('system.memory', 0):.0f}%"]
        if "system.proc.cpu" in system:
            rss = system.get("system.proc.memory.rss_mb", 0.0) * 1e6  # MB as system_metrics.py counts them
            load.append(f"this kernel {system['system.proc.cpu']:.0f}% CPU, {format_bytes(rss)}")
        lines.append(" · ".join(load))
    return lines
