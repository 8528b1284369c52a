"""`nbtrack demo`: a short simulated training run in local mode, then the summary read back."""

from __future__ import annotations

import math
import random
import time
from typing import TextIO

__all__ = ["run_demo"]


def run_demo(out: TextIO, steps: int = 2000, dir: str | None = None, project: str = "demo") -> int:
    import nbtrack

    started = time.perf_counter()
    lr, epochs = 3e-4, 5
    config = {"lr": lr, "batch_size": 64, "epochs": epochs, "optimizer": "adam"}
    run = nbtrack.init(project=project, config=config, dir=dir, tags=["demo"], notes="simulated training")
    run.define_metric("val/acc", summary="max")
    run.define_metric("train/loss", summary="min,last")
    out.write(f"run {run.id} started in {(time.perf_counter() - started) * 1000:.0f} ms\n")
    rng = random.Random(0)
    loop_started = time.perf_counter()
    per_epoch = max(1, steps // epochs)
    for step in range(steps):
        progress = step / max(1, steps - 1)
        loss = 2.3 * math.exp(-4 * progress) + 0.05 + rng.gauss(0, 0.02)
        row = {
            "train/loss": loss,
            "train/lr": lr * (1 - 0.9 * progress),
            "epoch": step // per_epoch,
        }
        if (step + 1) % per_epoch == 0:
            row["val/acc"] = min(0.99, 0.55 + 0.42 * progress + rng.gauss(0, 0.01))
        run.log(row)
    loop_s = time.perf_counter() - loop_started
    run.summary["best_epoch"] = epochs - 1
    finish_started = time.perf_counter()
    run.finish()
    out.write(
        f"logged {steps} steps in {loop_s * 1000:.1f} ms ({loop_s / steps * 1e6:.2f} us per log call); "
        f"finish took {(time.perf_counter() - finish_started) * 1000:.0f} ms\n"
    )
    log = next(run.dir.glob("*.nbt"))
    out.write(f"transaction log: {log}\n")
    out.write(f"store:           {run.dir.parent.parent / 'nbtrack.db'}\n\n")

    stored = nbtrack.Api(dir=dir).run(f"{run.entity}/{project}/{run.id}")
    rows = stored.history()
    out.write(
        f"read back from the store: run {stored.id} ({stored.name}) is {stored.state}, "
        f"{len(rows)} history rows\n"
    )
    for key in sorted(stored.summary):
        out.write(f"  summary {key:<12} {stored.summary[key]}\n")
    out.write(f"\nlist runs with: nbtrack runs {project}\n")
    return 0 if stored.state == "finished" and len(rows) == steps else 1
