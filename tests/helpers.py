"""Small helpers for tests that read what a run stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nbtrack.store import Store


def stored_run(root: Path, run_id: str, project: str = "test") -> Any:
    with Store.at_root(root) as store:
        return store.get_run(None, project, run_id)


def stored_history(root: Path, run_id: str, project: str = "test") -> list[dict[str, Any]]:
    with Store.at_root(root) as store:
        return store.read_history("local", project, run_id)
