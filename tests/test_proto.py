"""The committed generated code is exactly what proto/ compiles to."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_generated_code_is_current(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("generate", REPO / "proto" / "generate.py")
    assert spec is not None and spec.loader is not None
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    fresh = generate.generate(tmp_path)
    assert fresh, "protoc produced nothing"
    for path in fresh:
        committed = REPO / "nbtrack" / "proto" / path.name
        assert committed.exists(), f"{path.name} is not committed; run `python proto/generate.py`"
        assert committed.read_bytes() == path.read_bytes(), (
            f"{path.name} is stale; run `python proto/generate.py`"
        )
