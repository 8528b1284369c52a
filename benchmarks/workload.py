"""The history the server benchmarks post: a training loop's metrics, as file-stream bodies."""

from __future__ import annotations

import json
from collections.abc import Iterator

__all__ = ["METRIC_KEYS", "POST_ROWS", "history_bodies"]

POST_ROWS = 10_000
METRIC_KEYS = ("loss", "acc", "lr", "grad_norm", "epoch")  # besides _step, _runtime, _timestamp


def history_bodies(total: int) -> Iterator[bytes]:
    """File-stream bodies of POST_ROWS rows each: a noisy falling loss, a rising accuracy, a decaying
    learning rate, a periodic gradient norm and the epoch (so a chart has something to keep)."""
    for offset in range(0, total, POST_ROWS):
        rows = [
            json.dumps(
                {
                    "_step": s,
                    "_runtime": s * 0.01,
                    "_timestamp": 1.7e9 + s * 0.01,
                    "loss": 1 / (1 + s / 1000) + (s % 97) / 5000,
                    "acc": s / total,
                    "lr": 3e-4 * (1 - s / total),
                    "grad_norm": 0.5 + (s % 13) / 26,
                    "epoch": s // 1000,
                }
            )
            for s in range(offset, min(offset + POST_ROWS, total))
        ]
        yield json.dumps({"files": {"wandb-history.jsonl": {"offset": offset, "content": rows}}}).encode()
