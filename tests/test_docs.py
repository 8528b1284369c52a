"""The docs name tests as proof: each named test must exist, or the doc has gone stale."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_test_named_in_docs_guarantees_exists() -> None:
    doc = (ROOT / "docs" / "guarantees.md").read_text()
    named = set(re.findall(r"\b(test_\w+)\b", doc)) - {p.stem for p in (ROOT / "tests").glob("test_*.py")}
    defined = {
        name
        for source in (ROOT / "tests").glob("test_*.py")
        for name in re.findall(r"^def (test_\w+)\(", source.read_text(), flags=re.M)
    }
    assert named, "docs/guarantees.md names no test"
    missing = sorted(named - defined)
    assert not missing, f"docs/guarantees.md names tests that do not exist: {missing}"
