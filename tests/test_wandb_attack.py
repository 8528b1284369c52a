"""The real wandb client (0.31.0) used the way a W&B user (and a hostile tester) does, against a
real `nbtrack server`: each test here first failed on a defect the attack found, then passed with
its fix. On SQLite and, where the store matters, PostgreSQL (NBTRACK_TEST_POSTGRES_URL).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

import nbtrack
from nbtrack import jsonutil
from tests import serving
from tests import test_wandb_client as base
from tests.serving import Client
from tests.test_wandb_crashed import wait_for
from tests.wandb_client import WandbEnv, _make_env, require_wandb, wandb_env

env = base.env
wandb_env = wandb_env  # a fixture (SQLite): the name rule is the server's, not the store's
same = base.same

PARQUET = """query RunParquetHistory($entity: String!, $project: String!, $runName: String!,
    $liveKeys: [String!]!) { project(name: $project, entityName: $entity) { run(name: $runName) {
        parquetHistory(liveKeys: $liveKeys) { parquetUrls liveData } } } }"""

SCAN_IN_PLACE = """
import math, os, wandb
run = wandb.init(project="wb", id="scan-in-place")
for i in range(6):
    run.log({"a.b": i, "😀": float(i), "odd": [math.nan, math.inf, -math.inf][i % 3], "big": 2**62 + i})
run.finish()
api = wandb.Api(overrides={"base_url": os.environ["WANDB_BASE_URL"]})
r = api.run(os.environ["WANDB_ENTITY"] + "/wb/scan-in-place")
emit({
    # keys given, nothing cached yet: wandb-core reads the parquet in place, by byte ranges
    "keys": list(r.scan_history(keys=["a.b", "odd"], page_size=4)),
    "uncached": list(r.scan_history(use_cache=False, min_step=1, max_step=4)),
})
"""


def test_scan_history_with_keys_or_without_cache_reads_by_byte_ranges(env: WandbEnv) -> None:
    """`scan_history(keys=...)` as a run's first scan, and `use_cache=False`, failed with wandb-core's
    "server ignored range request": the export answered every GET whole."""
    out = env.run(SCAN_IN_PLACE)
    logged = (
        nbtrack.Api(base_url=env.server.url, api_key=env.key).run(f"{env.entity}/wb/scan-in-place").history()
    )
    assert same(out["keys"], [{"_step": r["_step"], "a.b": r["a.b"], "odd": r["odd"]} for r in logged])
    assert math.isnan(out["keys"][0]["odd"]) and out["keys"][1]["odd"] == math.inf
    window = [{k: row[k] for k in ("_step", "a.b", "😀", "big")} for row in out["uncached"]]
    assert window == [{"_step": i, "a.b": i, "😀": i, "big": 2**62 + i} for i in (1, 2, 3)]


IN_PLACE_ROW_GROUPS = """
import os, wandb
r = wandb.Api().run(os.environ["WANDB_ENTITY"] + "/wb/groups")
a = list(r.scan_history(keys=["v", "x"], page_size=3000))
b = list(r.scan_history(keys=["s"], min_step=9990, max_step=10010, use_cache=False))
nan = [row["_step"] for row in a if row["x"] != row["x"]]
emit({"n": len(a), "v": [row["v"] for row in a[::4999]], "nan": nan, "s": [row["s"] for row in b]})
"""


def test_scan_history_with_keys_reads_an_export_of_many_row_groups_in_place(wandb_env: WandbEnv) -> None:
    """25,000 rows, three row groups (PAGE_ROWS), read by ranges: a window across two of them."""
    client = wandb_env.client
    client.upsert("wb", "groups", entity=wandb_env.entity)
    rows = [
        {
            "_step": i,
            "v": i if i < 15_000 else i + 0.5,
            "x": math.nan if i % 5_000 == 0 else i / 4,
            "s": f"t{i}",
        }
        for i in range(25_000)
    ]
    for offset in range(0, len(rows), 10_000):
        lines = [jsonutil.dumps_str(row) for row in rows[offset : offset + 10_000]]
        body = {"files": {"wandb-history.jsonl": {"offset": offset, "content": lines}}}
        assert client.stream("wb", "groups", body, entity=wandb_env.entity).status_code == 200
    out = wandb_env.run(IN_PLACE_ROW_GROUPS)
    assert out["n"] == 25_000
    assert out["v"] == [rows[i]["v"] for i in range(0, 25_000, 4_999)]
    assert out["nan"] == list(range(0, 25_000, 5_000))
    assert out["s"] == [f"t{i}" for i in range(9_990, 10_010)]


def _export_url(env: WandbEnv) -> str:
    client = env.client
    client.upsert("wb", "ranged", entity=env.entity)
    rows = [f'{{"_step": {i}, "x": {i}.5}}' for i in range(50)]
    assert client.stream(
        "wb", "ranged", {"files": {"wandb-history.jsonl": {"offset": 0, "content": rows}}}
    ).ok
    answer = client.data(PARQUET, entity=env.entity, project="wb", runName="ranged", liveKeys=["_step"])
    [url] = answer["project"]["run"]["parquetHistory"]["parquetUrls"]
    return str(url)


def _get(url: str, range_header: str | None = None) -> requests.Response:
    headers = {} if range_header is None else {"Range": range_header}
    return Client(url.split("/history/")[0]).session.get(url, headers=headers, timeout=60)


def test_history_export_answers_one_byte_range(env: WandbEnv) -> None:
    """The ranges wandb-core asks (size probe, footer, a chunk), and the ones it never does."""
    url = _export_url(env)
    whole = _get(url)
    assert whole.status_code == 200 and whole.headers["Accept-Ranges"] == "bytes"
    data = whole.content
    size = len(data)
    assert data[:4] == data[-4:] == b"PAR1"

    def ranged(header: str) -> tuple[int, bytes, str | None]:
        answer = _get(url, header)
        assert answer.headers.get("Content-Length") == str(len(answer.content))
        return answer.status_code, answer.content, answer.headers.get("Content-Range")

    assert ranged("bytes=0-0") == (206, data[:1], f"bytes 0-0/{size}")
    assert ranged("bytes=-8") == (206, data[-8:], f"bytes {size - 8}-{size - 1}/{size}")
    assert ranged("bytes=4-99") == (206, data[4:100], f"bytes 4-99/{size}")
    assert ranged(f"bytes=10-{size + 500}") == (206, data[10:], f"bytes 10-{size - 1}/{size}")
    assert ranged(f"bytes=-{size + 500}") == (206, data, f"bytes 0-{size - 1}/{size}")
    assert ranged(f"bytes={size - 3}-") == (206, data[-3:], f"bytes {size - 3}-{size - 1}/{size}")
    # several ranges, another unit, nonsense: the whole file, as the RFC allows
    for header in ("bytes=0-1,5-6", "items=0-1", "bytes=5-2", "bytes=x"):
        assert ranged(header) == (200, data, None), header
    beyond = _get(url, f"bytes={size}-")
    assert beyond.status_code == 416 and beyond.headers["Content-Range"] == f"bytes */{size}"
    error: Any = beyond.json()["errors"][0]
    assert error["extensions"]["code"] == "RANGE_NOT_SATISFIABLE" and str(size) in error["message"]


SPACED_PROJECT = """
import os, wandb
run = wandb.init(project="my project é", id="spaced")
run.log({"x": 1.5})
run.finish()
api = wandb.Api(overrides={"base_url": os.environ["WANDB_BASE_URL"]})
emit(api.run(os.environ["WANDB_ENTITY"] + "/my project é/spaced").history(pandas=False))
"""


def test_a_project_name_with_a_space_and_unicode(wandb_env: WandbEnv) -> None:
    """W&B's project names may hold spaces and any Unicode but / \\ # ? % : (its client's rule):
    so may nbtrack's (settings.check_project), written, read back and listed."""
    rows = wandb_env.run(SPACED_PROJECT)
    assert [(row["_step"], row["x"]) for row in rows] == [(0, 1.5)]
    api = nbtrack.Api(base_url=wandb_env.server.url, api_key=wandb_env.key)
    assert "my project é" in [project.name for project in api.projects()]
    stored = api.run(f"{wandb_env.entity}/my project é/spaced")
    assert stored.state == "finished" and [row["x"] for row in stored.history()] == [1.5]


GROWN_SCAN = """
import os, wandb
api = wandb.Api(overrides={"base_url": os.environ["WANDB_BASE_URL"]})
path = os.environ["WANDB_ENTITY"] + "/wb/grows"
run = wandb.init(project="wb", id="grows")
for i in range(3):
    run.log({"x": i})
run.finish()
before = [row["x"] for row in api.run(path).scan_history()]
run = wandb.init(project="wb", id="grows", resume="must")
for i in range(3, 5):
    run.log({"x": i})
run.finish()
after = [row["x"] for row in wandb.Api().run(path).scan_history()]
# a run with no history yet: no segment at all, then one once it has rows
empty_path = os.environ["WANDB_ENTITY"] + "/wb/empty"
wandb.init(project="wb", id="empty").finish()
empty = list(api.run(empty_path).scan_history())
run = wandb.init(project="wb", id="empty", resume="must")
run.log({"x": 7})
run.finish()
emit({"before": before, "after": after, "empty": empty,
      "filled": [row["x"] for row in wandb.Api().run(empty_path).scan_history()]})
"""


def test_scan_history_sees_rows_logged_after_an_earlier_scan(wandb_env: WandbEnv) -> None:
    """wandb-core caches each parquetUrls entry by its place in the list (entity_project_run_INDEX),
    never by URL, and never checks it again: the history comes as segments that never change, and
    a run that grew gets a new one after them (history_export.py)."""
    out = wandb_env.run(GROWN_SCAN)
    assert out["before"] == [0, 1, 2]
    assert out["after"] == [0, 1, 2, 3, 4]
    assert out["empty"] == [] and out["filled"] == [7]


HISTORY_KEYS_NONFINITE = """
import math, os, wandb
run = wandb.init(project="wb", id="nonfinite-keys")
for i, odd in enumerate([math.nan, math.inf, -math.inf, 0.5]):
    run.log({"odd": odd, "epoch": i, "deep": {"v": odd}})
run.finish()
r = wandb.Api().run(os.environ["WANDB_ENTITY"] + "/wb/nonfinite-keys")
emit({
    "keys": r.history(keys=["odd", "deep"], pandas=False),
    "x_axis": r.history(keys=["odd"], x_axis="epoch", pandas=False),
    "frame": r.history(keys=["odd"])["odd"].tolist(),
})
"""


def test_history_with_keys_of_a_run_that_logged_nan(env: WandbEnv) -> None:
    """`run.history(keys=...)` (sampledHistory) of a run with a NaN or an infinity among the keys
    failed whole with wandb-core's "invalid character 'N' looking for beginning of value": the
    answer held bare NaN tokens. W&B's server answers such a value as the text "NaN",
    "Infinity", "-Infinity" (as its sweeps code expects), the rest exact."""
    out = env.run(HISTORY_KEYS_NONFINITE)
    texts = ["NaN", "Infinity", "-Infinity", 0.5]
    assert out["keys"] == [{"_step": i, "odd": odd, "deep": {"v": odd}} for i, odd in enumerate(texts)]
    assert out["x_axis"] == [{"_step": i, "epoch": i, "odd": odd} for i, odd in enumerate(texts)]
    assert out["frame"] == texts
    # stored unchanged: nbtrack's own API still reads the floats
    stored = nbtrack.Api(base_url=env.server.url, api_key=env.key).run(f"{env.entity}/wb/nonfinite-keys")
    assert same([row["odd"] for row in stored.history()], [math.nan, math.inf, -math.inf, 0.5])


RUN_TIMES = """
import datetime, os, wandb
run = wandb.init(project="wb", id="timed")
run.log({"x": 1})
run.finish()
api = wandb.Api()
path = os.environ["WANDB_ENTITY"] + "/wb/timed"
r = api.run(path)
listed = list(api.runs(os.environ["WANDB_ENTITY"] + "/wb"))[0]
project = [p for p in api.projects(os.environ["WANDB_ENTITY"]) if p.name == "wb"][0]
emit({"created": r.created_at, "heartbeat": r.heartbeat_at, "listed": listed.created_at,
      "project": project.created_at,
      "parsed": datetime.datetime.strptime(r.created_at, "%Y-%m-%dT%H:%M:%S").isoformat()})
"""


def test_run_created_at_is_iso_text(env: WandbEnv) -> None:
    """`run.created_at` (documented by wandb as an "ISO timestamp" str, parsed by scripts with
    strptime("%Y-%m-%dT%H:%M:%S")) read as unix seconds, a float."""
    out = env.run(RUN_TIMES)
    stored = nbtrack.Api(base_url=env.server.url, api_key=env.key).run(f"{env.entity}/wb/timed")
    created = datetime.fromtimestamp(stored.created_at, UTC).replace(tzinfo=None, microsecond=0)
    assert out["created"] == out["listed"] == out["parsed"] == created.isoformat()
    assert isinstance(out["heartbeat"], str) and out["heartbeat"] >= out["created"]
    assert datetime.strptime(out["project"], "%Y-%m-%dT%H:%M:%S") <= created  # the same form


CREATED_FILTERS = """
import os, wandb
api = wandb.Api()
path = os.environ["WANDB_ENTITY"] + "/dated"
def ids(filters):
    return sorted(r.id for r in api.runs(path, filters=filters))
out = {
    "gt": ids({"created_at": {"$gt": "2024-06-01T00:00:00"}}),
    "lt_z": ids({"createdAt": {"$lt": "2025-06-01T00:00:00Z"}}),
    "date": ids({"$and": [{"created_at": {"$gte": "2025-01-01"}}, {"created_at": {"$lt": "2026-01-01"}}]}),
    "count": len(api.runs(path, filters={"created_at": {"$gt": "2024-06-01T00:00:00+02:00"}})),
}
try:
    ids({"created_at": {"$gt": "last tuesday"}})
except Exception as exc:
    out["bad"] = str(exc)
emit(out)
"""


def test_runs_filtered_by_created_at_as_iso_text(env: WandbEnv) -> None:
    """W&B's documented way to choose runs by time, `{"created_at": {"$gt": "2024-06-01T00:00:00"}}`
    (ISO text, as `run.created_at` reads), matched no run at all: the server compared the text
    with unix seconds. Text without an offset is UTC, as W&B's times are."""
    client = env.client
    for year in (2024, 2025, 2026):
        created = datetime(year, 1, 1, 12, tzinfo=UTC).timestamp()
        client.upsert("dated", f"y{year}", entity=env.entity, createdAt=created)
    out = env.run(CREATED_FILTERS)
    assert out["gt"] == ["y2025", "y2026"]
    assert out["lt_z"] == ["y2024", "y2025"]
    assert out["date"] == ["y2025"]
    assert out["count"] == 2
    assert "'last tuesday' is not an ISO 8601 time" in out["bad"]


SAVE_TOO_BIG = """
import os, wandb
folder = os.path.join(os.getcwd(), "saved")
os.makedirs(folder, exist_ok=True)
with open(os.path.join(folder, "big.bin"), "wb") as out:
    out.write(os.urandom(300_000))
with open(os.path.join(folder, "small.txt"), "w") as out:
    out.write("kept")
run = wandb.init(project="wb", id="too-big")
wandb.save(os.path.join(folder, "big.bin"), base_path=folder)
wandb.save(os.path.join(folder, "small.txt"), base_path=folder)
run.log({"x": 1})
run.finish()  # wandb-core logs the refused upload in its debug log only, and finishes
r = wandb.Api().run(os.environ["WANDB_ENTITY"] + "/wb/too-big")
emit({"state": r.state, "files": sorted(f.name for f in r.files()),
      "x": [h["x"] for h in r.history(pandas=False)]})
"""


def test_a_saved_file_over_max_upload_is_named_in_the_server_log(tmp_path: Path) -> None:
    """`wandb.save()` of a file over `--max-upload`: the server refuses its PUT (413) and wandb-core
    only writes that to its debug log, the run finishing "synced": the file was gone with no word
    to anyone. The server now says which file of which run it refused, and why; the rest lands."""
    require_wandb()
    served = serving.start_server(tmp_path, extra_args=["--max-upload", "100000"])
    try:
        env = _make_env(served, tmp_path)
        out = env.run(SAVE_TOO_BIG)
        assert out["state"] == "finished" and out["x"] == [1]
        assert "small.txt" in out["files"] and "big.bin" not in out["files"]
        wait_for(lambda: "big.bin" in served.log(), 10, "the refusal in the server log")
        assert (
            f"refused run file 'big.bin' of {env.entity}/wb/too-big: "
            "the body is larger than this server's limit of 100000 bytes (--max-upload)"
        ) in served.log()
    finally:
        served.stop()


ARTIFACT_TOO_BIG = """
import hashlib, os, wandb
folder = os.path.join(os.getcwd(), "data")
os.makedirs(folder, exist_ok=True)
big = os.urandom(300_000)
with open(os.path.join(folder, "big.bin"), "wb") as out:
    out.write(big)
run = wandb.init(project="wb", id="big-artifact")
art = wandb.Artifact("ds", type="dataset")
art.add_file(os.path.join(folder, "big.bin"))
run.log_artifact(art)
run.finish()
try:
    wandb.Api().artifact(os.environ["WANDB_ENTITY"] + "/wb/ds:latest")
    found = True
except Exception:
    found = False
emit({"found": found, "md5": hashlib.md5(big).hexdigest()})
"""


def test_an_artifact_file_over_max_upload_is_named_in_the_server_log(tmp_path: Path) -> None:
    """An artifact whose file is over `--max-upload`: its PUT is refused (413), the version never
    commits, and wandb-core says so only in its debug log. The server names the refused file."""
    require_wandb()
    served = serving.start_server(tmp_path, extra_args=["--max-upload", "100000"])
    try:
        env = _make_env(served, tmp_path)
        out = env.run(ARTIFACT_TOO_BIG)
        assert out["found"] is False  # no version of a file never stored
        wait_for(lambda: out["md5"] in served.log(), 10, "the refusal in the server log")
        assert (
            f"refused artifact file {out['md5']} of {env.entity}: "
            "the body is larger than this server's limit of 100000 bytes (--max-upload)"
        ) in served.log()
    finally:
        served.stop()
