"""Shared fixtures: every test gets its own nbtrack root and a clean NBTRACK_* environment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for key in list(os.environ):
        if key.startswith("NBTRACK_") and key != "NBTRACK_TEST_POSTGRES_URL":
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    yield
    import nbtrack

    if nbtrack.run is not None:  # a test that failed half-way must not leak a live run
        nbtrack.run.finish()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "nbtrack-root"
