"""Run alerts (wandb's run.alert): one JSON line each, in <files>/~alerts/<entity>/<project>/<run>.jsonl.

No entity can be named "~alerts", so these never mix with run files. A run keeps at most
MAX_ALERTS alerts (later ones are refused), each title and text cut to MAX_TEXT characters.
Appends are serialised by a lock, so concurrent alerts never interleave within a line.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbtrack import jsonutil
from nbtrack.server.errors import ApiError

__all__ = ["MAX_ALERTS", "SEVERITIES", "AlertLog"]

MAX_ALERTS = 1000
MAX_TEXT = 10_000
SEVERITIES = ("INFO", "WARN", "ERROR")


@dataclass
class AlertLog:
    root: Path  # the files folder; alerts live under root / "~alerts"

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def _path(self, entity: str, project: str, run_id: str) -> Path:
        return self.root / "~alerts" / entity / project / f"{run_id}.jsonl"

    def add(self, entity: str, project: str, run_id: str, title: str, text: str, severity: str) -> None:
        if severity not in SEVERITIES:
            raise ApiError("BAD_REQUEST", f"severity {severity!r:.20} is not one of {', '.join(SEVERITIES)}")
        line = jsonutil.dumps_str(
            {
                "title": title[:MAX_TEXT],
                "text": text[:MAX_TEXT],
                "severity": severity,
                "createdAt": time.time(),
            }
        )
        path = self._path(entity, project, run_id)
        with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists() and len(self.list(entity, project, run_id)) >= MAX_ALERTS:
                raise ApiError("BAD_REQUEST", f"a run keeps at most {MAX_ALERTS} alerts")
            with open(path, "a", encoding="utf-8") as out:
                out.write(line + "\n")

    def list(self, entity: str, project: str, run_id: str) -> list[dict[str, Any]]:
        """The run's alerts, oldest first ([] for none)."""
        path = self._path(entity, project, run_id)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [jsonutil.loads(line) for line in text.splitlines() if line.strip()]
