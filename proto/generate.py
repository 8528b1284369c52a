"""Regenerate nbtrack/proto/ from the .proto sources: `python proto/generate.py [OUT_DIR]`.

Needs the dev extra (grpcio-tools and mypy-protobuf, pinned so the output is reproducible).
tests/test_proto.py runs this into a temporary folder and fails if the committed code differs.
"""

from __future__ import annotations

import sys
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = PROTO_DIR.parent / "nbtrack" / "proto"


def generate(out_dir: Path = DEFAULT_OUT) -> list[Path]:
    """Compile every .proto in proto/ into out_dir; return the files written."""
    from grpc_tools import protoc  # dev-only dependency

    sources = sorted(str(p.name) for p in PROTO_DIR.glob("*.proto"))
    out_dir.mkdir(parents=True, exist_ok=True)
    # protoc finds plugins on PATH; the venv's bin may not be on it (`.venv/bin/python -m ...`).
    plugin = Path(sys.executable).parent / "protoc-gen-mypy"
    mypy_plugin = [f"--plugin=protoc-gen-mypy={plugin}"] if plugin.exists() else []
    args = [
        "protoc",
        f"-I{PROTO_DIR}",
        *mypy_plugin,
        f"--python_out={out_dir}",
        f"--mypy_out={out_dir}",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed: {' '.join(args)}")
    return sorted(p for p in out_dir.iterdir() if p.name.endswith(("_pb2.py", "_pb2.pyi")))


if __name__ == "__main__":
    for path in generate(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT):
        print(path)
