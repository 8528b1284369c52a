"""The real wandb client (0.31.0, tests/wandb_client.py): media it logs, and runs edited through
wandb.Api, seen the same through wandb.Api, nbtrack.Api and the web UI's queries, on SQLite and
PostgreSQL."""

from __future__ import annotations

import struct
import zlib
from typing import Any

import nbtrack
from nbtrack import jsonutil
from nbtrack.vocabulary import IMAGE_TYPE
from tests import test_wandb_client as base
from tests.wandb_client import WandbEnv

env = base.env

IMAGE = """
import os
import numpy as np
import wandb
run = wandb.init(project="wb")
pixels = (np.arange(4 * 6 * 3) * 5 % 256).astype(np.uint8).reshape(4, 6, 3)
for step in range(2):
    run.log({"img": wandb.Image(pixels if step == 0 else 255 - pixels, caption=f"c{step}"), "loss": step})
run.finish()
emit({"id": run.id, "pixels": pixels.tolist()})
"""

MEDIA_HISTORY = """query MediaHistory($entity: String, $project: String!, $run: String!, $keys: [String!],
    $samples: Int) {
  project(name: $project, entityName: $entity) { run(name: $run) { history(keys: $keys, samples: $samples) } }
}"""
RUN_PAGE = """query Run($entity: String, $project: String!, $run: String!) {
  project(name: $project, entityName: $entity) { run(name: $run) {
      summaryMetrics files { name sizeBytes url updatedAt } } } }"""


def png_pixels(data: bytes) -> tuple[int, int, list[list[list[int]]]]:
    """(width, height, rows of RGB pixels) of an 8-bit RGB PNG, not interlaced."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", header[:10])
    assert (depth, color) == (8, 2), (depth, color)
    raw = zlib.decompress(idat)
    stride = width * 3
    rows: list[bytearray] = []
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        prior = rows[-1] if rows else bytearray(stride)
        for x in range(stride):
            left = line[x - 3] if x >= 3 else 0
            up, upleft = prior[x], prior[x - 3] if x >= 3 else 0
            if kind == 1:
                line[x] = (line[x] + left) & 255
            elif kind == 2:
                line[x] = (line[x] + up) & 255
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - upleft
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - upleft)
                line[x] = (line[x] + (left if pa <= pb and pa <= pc else up if pb <= pc else upleft)) & 255
        rows.append(line)
    return width, height, [[list(row[x : x + 3]) for x in range(0, stride, 3)] for row in rows]


def test_an_image_logged_by_wandb_is_an_image_everywhere(env: WandbEnv) -> None:
    out = env.run(IMAGE)
    path = f"{env.entity}/wb/{out['id']}"
    stored = nbtrack.Api(base_url=env.server.url, api_key=env.key).run(path)
    rows = stored.history()
    assert [row["loss"] for row in rows] == [0, 1]
    refs = [row["img"] for row in rows]
    for step, ref in enumerate(refs):
        assert ref["_type"] == IMAGE_TYPE and ref["format"] == "png" and ref["caption"] == f"c{step}"
        assert (ref["width"], ref["height"]) == (6, 4)
        assert ref["path"].startswith("media/images/") and ref["path"].endswith(".png")
        width, height, pixels = png_pixels(stored.file(ref["path"]))
        wanted = (
            out["pixels"] if step == 0 else [[[255 - c for c in px] for px in row] for row in out["pixels"]]
        )
        assert (width, height, pixels) == (6, 4, wanted)
    assert refs[0]["path"] != refs[1]["path"]
    assert stored.summary["img"]["path"] == refs[1]["path"]
    # the web UI's run page: the summary names the media key, its rows come by MEDIA_HISTORY, and
    # each image is fetched from /files/
    page = env.client.data(RUN_PAGE, entity=env.entity, project="wb", run=out["id"])["project"]["run"]
    summary: dict[str, Any] = nbtrack.jsonutil.loads(page["summaryMetrics"])
    assert summary["img"]["_type"] == IMAGE_TYPE and summary["img"]["path"] == refs[1]["path"]
    assert {ref["path"] for ref in refs} <= {file["name"] for file in page["files"]}
    media = env.client.data(
        MEDIA_HISTORY, entity=env.entity, project="wb", run=out["id"], keys=["img"], samples=50
    )
    found = nbtrack.jsonutil.loads(media["project"]["run"]["history"])
    assert [row["img"]["path"] for row in found] == [ref["path"] for ref in refs]
    for ref in refs:
        response = env.client.session.get(f"{env.server.url}/files/{path}/{ref['path']}", timeout=30)
        assert response.status_code == 200 and response.content == stored.file(ref["path"])


EDIT = """
import math, os, wandb
run = wandb.init(project="wb", config={"lr": 0.1, "keep": "k"}, tags=["a"], notes="first")
run.log({"loss": 1})
run.finish()
api = wandb.Api(overrides={"base_url": os.environ["WANDB_BASE_URL"]})
r = api.run(os.environ["WANDB_ENTITY"] + "/wb/" + run.id)
r.name = "renamed run"
r.notes = "second\\nline"
r.tags = ["b", "c"]
r.config["lr"] = 0.01
r.config["new"] = {"depth": 3, "big": 2**62, "inf": math.inf}
r.update()
again = wandb.Api(overrides={"base_url": os.environ["WANDB_BASE_URL"]}).run(
    os.environ["WANDB_ENTITY"] + "/wb/" + run.id)
emit({"id": run.id, "name": again.name, "notes": again.notes, "tags": again.tags,
      "config": {k: repr(v) for k, v in again.config.items()}})
"""


def test_editing_a_run_through_wandb_api(env: WandbEnv) -> None:
    out = env.run(EDIT)
    assert out["name"] == "renamed run" and out["notes"] == "second\nline" and out["tags"] == ["b", "c"]
    wanted = {"lr": 0.01, "keep": "k", "new": {"depth": 3, "big": 2**62, "inf": float("inf")}}
    assert out["config"] == {k: repr(v) for k, v in wanted.items()}
    stored = nbtrack.Api(base_url=env.server.url, api_key=env.key).run(f"{env.entity}/wb/{out['id']}")
    assert stored.name == "renamed run" and stored.notes == "second\nline" and stored.tags == ["b", "c"]
    assert base.same(stored.config, wanted)  # wandb's own "_wandb" entry hidden, as its Api does...
    raw = jsonutil.loads(env.client.run("wb", out["id"], "config")["config"])
    assert "_wandb" in raw  # ...and kept by the server for the client
    # wandb's Api sends notes (as set) and description (as read) together: the change wins, and
    # nothing else the update sends back as it was read changes
    again = env.run(NOTES.replace("RUN_ID", out["id"]))
    assert again == {"notes": "third", "name": "renamed run", "tags": ["b", "c"]}
    assert (
        nbtrack.Api(base_url=env.server.url, api_key=env.key).run(f"{env.entity}/wb/{out['id']}").notes
        == "third"
    )


NOTES = """
import os, wandb
api = wandb.Api(overrides={"base_url": os.environ["WANDB_BASE_URL"]})
r = api.run(os.environ["WANDB_ENTITY"] + "/wb/RUN_ID")
r.notes = "third"
r.update()
fresh = wandb.Api(overrides={"base_url": os.environ["WANDB_BASE_URL"]})
r = fresh.run(os.environ["WANDB_ENTITY"] + "/wb/RUN_ID")
emit({"notes": r.notes, "name": r.name, "tags": r.tags})
"""
