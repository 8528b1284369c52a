"""wandb's public API reading what the real wandb client wrote: files, history scans, pandas, events, filters.

Each case writes with wandb 0.31.0 (its own venv: tests/wandb_client.py), reads back with
wandb.Api and with nbtrack's own API, and compares exactly (NaN, ±inf and 2**62 included), on
SQLite and, with NBTRACK_TEST_POSTGRES_URL set, on PostgreSQL. The shapes the client sends are in
docs/wandb-compat.md; test_capture_* keep that record honest.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import nbtrack
from nbtrack import jsonutil
from tests import serving
from tests import test_wandb_client as base
from tests.capture_proxy import CaptureProxy
from tests.wandb_client import WandbEnv, require_wandb

env = base.env
same = base.same
rows_without_times = base.rows_without_times

BINARY = bytes(range(256)) * 3 + b"\x00\xff"

FILES = """
import hashlib, os, wandb
run = wandb.init(project="wb")
os.makedirs("sub", exist_ok=True)
open("notes.txt", "wb").write(b"saved \\x00\\xff by wandb.save")
open("sub/deep.bin", "wb").write(bytes(range(256)) * 3 + b"\\x00\\xff")
open("b_c.json", "w").write("{}")
for name in ("notes.txt", "sub/deep.bin", "b_c.json"):
    wandb.save(name, policy="now")
run.log({"a": 1})
run.finish()
api = wandb.Api(overrides={"base_url": os.environ["WANDB_BASE_URL"]})
r = api.run(os.environ["WANDB_ENTITY"] + "/wb/" + run.id)
files = r.files()
out = {
    "id": run.id,
    "count": len(files),
    "names": [f.name for f in files],
    "paged": [f.name for f in r.files(per_page=2)],
    "named": [f.name for f in r.files(names=["sub/deep.bin", "absent"])],
    "json": [f.name for f in r.files(pattern="%.json")],
    "one_char": [f.name for f in r.files(pattern="b_c.json")] + [f.name for f in r.files(pattern="b\\\\_c%")],
    "meta": {f.name: [f.size, f.md5, f.mimetype] for f in files},
    "bytes": {},
}
for name in ("notes.txt", "sub/deep.bin"):
    r.file(name).download(root="dl", replace=True)
    out["bytes"][name] = open(os.path.join("dl", name), "rb").read().hex()
emit(out)
"""


def test_files_list_and_download_exact_bytes(env: WandbEnv) -> None:
    out = env.run(FILES)
    own = {"notes.txt", "sub/deep.bin", "b_c.json"}
    assert own <= set(out["names"]) and out["names"] == sorted(out["names"])
    assert out["count"] == len(out["names"])
    assert out["paged"] == out["names"]  # two at a time, through cursors
    assert out["named"] == ["sub/deep.bin"]
    assert "b_c.json" in out["json"] and all(name.endswith(".json") for name in out["json"])
    assert out["one_char"] == ["b_c.json", "b_c.json"]
    stored = nbtrack.Api(base_url=env.server.url, api_key=env.key).run(f"{env.entity}/wb/{out['id']}")
    for name in ("notes.txt", "sub/deep.bin"):
        content = stored.file(name)
        assert bytes.fromhex(out["bytes"][name]) == content
        size, md5, _mime = out["meta"][name]
        assert size == len(content)
        assert md5 == base64.b64encode(hashlib.md5(content).digest()).decode()
    assert bytes.fromhex(out["bytes"]["sub/deep.bin"]) == BINARY
    assert out["meta"]["notes.txt"][2] == "text/plain"


SCAN = """
import math, os, wandb
run = wandb.init(project="wb")
for i in range(7):
    row = {"loss": 0.5 * i, "odd": [math.nan, math.inf, -math.inf][i % 3], "big": 2**62 + i,
           "flag": i % 2 == 0, "text": f"t{i}", "img": {"_type": "image-file", "path": f"m/{i}.png"},
           "vec": [i, 2.5]}
    if i == 3:
        row["sparse"] = -(2**62)
    run.log(row)
run.finish()
api = wandb.Api(overrides={"base_url": os.environ["WANDB_BASE_URL"]})
r = api.run(os.environ["WANDB_ENTITY"] + "/wb/" + run.id)
out = {
    "id": run.id,
    "all": list(r.scan_history()),
    "paged": list(r.scan_history(page_size=2)),
    "keys": list(r.scan_history(keys=["odd", "big"], page_size=3)),
    "window": [row["_step"] for row in r.scan_history(min_step=2, max_step=5)],
}
try:
    import pandas
except ImportError:
    pandas = None
if pandas is not None:
    frame = r.history(pandas=True)
    out["frame"] = frame.to_dict(orient="records")
    out["dtypes"] = {k: str(v) for k, v in frame.dtypes.items()}
emit(out)
"""


def _drop_nulls(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A parquet scan gives None for a key a row lacks; the rows as logged, without those."""
    return [{k: v for k, v in row.items() if v is not None} for row in rows]


def test_scan_history_and_pandas_exact(env: WandbEnv) -> None:
    out = env.run(SCAN)
    stored = nbtrack.Api(base_url=env.server.url, api_key=env.key).run(f"{env.entity}/wb/{out['id']}")
    logged = stored.history()
    assert len(logged) == 7
    assert same(_drop_nulls(out["all"]), logged)
    assert same(_drop_nulls(out["paged"]), logged)
    assert all("sparse" in row for row in out["all"])  # a column: None where the row lacks it
    assert out["all"][3]["sparse"] == -(2**62) and logged[3]["sparse"] == -(2**62)
    assert [row["big"] for row in out["all"]] == [2**62 + i for i in range(7)]
    odd = [row["odd"] for row in out["all"]]
    assert math.isnan(odd[0]) and odd[1:3] == [math.inf, -math.inf]
    assert same(out["keys"], [{"_step": r["_step"], "odd": r["odd"], "big": r["big"]} for r in logged])
    assert out["window"] == [2, 3, 4]  # max_step is exclusive
    assert out["all"][2]["img"] == {"_type": "image-file", "path": "m/2.png"}
    if "frame" not in out:
        pytest.skip("the wandb venv has no pandas (.ci/run installs it)")
    assert out["dtypes"]["big"] == "int64" and out["dtypes"]["loss"] == "float64"
    frame = [{k: v for k, v in row.items() if k in ("_step", "loss", "odd", "big")} for row in out["frame"]]
    wanted = [{k: row[k] for k in ("_step", "loss", "odd", "big")} for row in logged]
    assert same(frame, wanted)


PAGED_SCAN = """
import os, wandb
api = wandb.Api(overrides={"base_url": os.environ["WANDB_BASE_URL"]})
r = api.run(os.environ["WANDB_ENTITY"] + "/wb/paged-run")
rows = list(r.scan_history())
emit({
    "count": len(rows),
    "steps": [row["_step"] for row in rows] == list(range(len(rows))),
    "v": [row["v"] for row in rows[::997]],
    "m": [rows[0]["m"], rows[-1]["m"]],
    "late": [row["_step"] for row in rows if row["late"] is not None],
    "nan": [row["_step"] for row in rows if row["x"] != row["x"]],
})
"""


def test_scan_history_of_an_export_in_many_row_groups(env: WandbEnv) -> None:
    """25,000 rows: an export of three pages (PAGE_ROWS), the kinds of two keys changing between
    them, read by wandb-core exactly as one page would be."""
    env.client.upsert("wb", "paged-run", entity=env.entity)
    logged = []
    for i in range(25_000):
        row: dict[str, Any] = {
            "_step": i,
            "v": i if i < 15_000 else i + 0.5,
            "m": [i] if i < 5_000 else [i, 0.5],
        }
        row["x"] = math.nan if i % 5_000 == 0 else -math.inf if i == 7 else i * 0.25
        if i == 24_999:
            row["late"] = "t"
        logged.append(row)
    for offset in range(0, len(logged), 10_000):
        lines = [jsonutil.dumps_str(row) for row in logged[offset : offset + 10_000]]
        body = {"files": {"wandb-history.jsonl": {"offset": offset, "content": lines}}}
        assert env.client.stream("wb", "paged-run", body, entity=env.entity).status_code == 200
    out = env.run(PAGED_SCAN)
    assert out["count"] == 25_000 and out["steps"]
    assert same(out["v"], [row["v"] for row in logged[::997]])
    assert out["m"] == [[0], [24_999, 0.5]]
    assert out["late"] == [24_999] and out["nan"] == list(range(0, 25_000, 5_000))


EVENTS = """
import os, wandb
api = wandb.Api(overrides={"base_url": os.environ["WANDB_BASE_URL"]})
r = api.run(os.environ["WANDB_ENTITY"] + "/wb/sys-run")
emit({
    "events": r.history(stream="events", pandas=False),
    "sampled": len(r.history(stream="events", samples=3, pandas=False)),
    "system": r.system_metrics,
})
"""


def test_events_stream_reads_system_metrics(env: WandbEnv) -> None:
    client = env.client
    client.upsert("wb", "sys-run", entity=env.entity)
    lines = [f'{{"system.cpu": {i * 1.5}, "system.gpu.0.temp": NaN, "_runtime": {i}}}' for i in range(10)]
    body = {"files": {"wandb-events.jsonl": {"offset": 0, "content": lines}}}
    posted = client.stream("wb", "sys-run", body)
    assert posted.status_code == 200, posted.text
    out = env.run(EVENTS)
    assert len(out["events"]) == 10
    assert [row["system.cpu"] for row in out["events"]] == [i * 1.5 for i in range(10)]
    assert all(math.isnan(row["system.gpu.0.temp"]) for row in out["events"])
    assert out["sampled"] == 3
    assert out["system"]["system.cpu"] == 13.5


FILTERS = """
import os, wandb
ids = {}
runs = [("alpha-1", {"lr": 0.1, "opt": "adam"}), ("beta-2", {"lr": 0.2}), ("alpha-3", {"lr": 0.3})]
for name, config in runs:
    run = wandb.init(project="wb", name=name, config=config, reinit="finish_previous")
    run.log({"loss": config["lr"]})
    if name != "beta-2":
        run.summary["best"] = 1
    run.finish()
    ids[name] = run.id
api = wandb.Api(overrides={"base_url": os.environ["WANDB_BASE_URL"]})
path = os.environ["WANDB_ENTITY"] + "/wb"
def names(filters):
    return sorted(r.name for r in api.runs(path, filters=filters))
emit({
    "regex": names({"display_name": {"$regex": "^alpha"}}),
    "regex_any": names({"displayName": {"$regex": "a-[23]$"}}),
    "not_regex": names({"display_name": {"$not": {"$regex": "^alpha"}}}),
    "exists": names({"config.opt": {"$exists": True}}),
    "absent": names({"config.opt": {"$exists": False}}),
    "summary_exists": names({"summary_metrics.best": {"$exists": True}}),
    "and": names({"$and": [{"display_name": {"$regex": "alpha"}}, {"config.lr": {"$gt": 0.2}}]}),
})
"""


def test_regex_and_exists_filters(env: WandbEnv) -> None:
    out = env.run(FILTERS)
    assert out["regex"] == ["alpha-1", "alpha-3"]
    assert out["regex_any"] == ["alpha-3", "beta-2"]
    assert out["not_regex"] == ["beta-2"]
    assert out["exists"] == ["alpha-1"]
    assert out["absent"] == ["alpha-3", "beta-2"]
    assert out["summary_exists"] == ["alpha-1", "alpha-3"]
    assert out["and"] == ["alpha-3"]


@pytest.fixture
def capture_env(tmp_path: Path) -> Iterator[tuple[WandbEnv, CaptureProxy]]:
    require_wandb()
    served = serving.start_server(tmp_path)
    try:
        entity = serving.unique_name("wb")
        home = tmp_path / "wandb-home"
        home.mkdir()
        with CaptureProxy(served.url) as proxy:
            yield WandbEnv(served, entity, serving.create_key(served, entity), home, proxy.url), proxy
    finally:
        served.stop()


def test_capture_files_and_scan(capture_env: tuple[WandbEnv, CaptureProxy]) -> None:
    """What run.files(), file.download() and scan_history() send (docs/wandb-compat.md)."""
    env, proxy = capture_env
    env.run(FILES)
    env.run(SCAN.replace("try:\n    import pandas\nexcept ImportError:\n    pandas = None", "pandas = None"))
    queries = proxy.graphql()
    refused = [(r.method, r.path, r.operation, r.answer) for r in proxy.records if r.status >= 400]
    assert not refused
    [listing, *_] = [r for r in queries if "query RunFiles" in (r.query or "")]
    assert listing.operation == ""
    assert {"fileNames", "fileCursor", "fileLimit", "pattern", "upload"} <= set(listing.variables)
    for field in ("fileCount", "md5", "directUrl", "mimetype", "url(upload: $upload)"):
        assert field in (listing.query or "")
    downloads = [r for r in proxy.records if r.method == "GET" and r.path.startswith("/files/")]
    assert downloads and all(r.status == 200 for r in downloads)
    [scan, *_] = [r for r in queries if r.operation == "RunParquetHistory"]
    assert scan.variables["liveKeys"] == ["_step"]
    answer = scan.answer["data"]["project"]["run"]["parquetHistory"]
    assert answer["liveData"] == [] and len(answer["parquetUrls"]) == 1
    exports = [r for r in proxy.records if r.path.startswith("/history/")]
    assert exports and all(r.path.endswith(".parquet") and r.status == 200 for r in exports)
