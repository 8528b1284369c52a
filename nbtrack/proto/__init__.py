"""Generated protobuf modules (see proto/generate.py)."""
