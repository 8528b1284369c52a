"""Artifact references (`add_reference`) with the real wandb client (0.31, its own venv, with
boto3 for s3://) against `nbtrack server`, on both storage setups: SQLite + a files folder, and
PostgreSQL + S3. The references point at local files and at objects of the test S3 (SeaweedFS in
CI, NBTRACK_TEST_S3_URL), so both setups need it. Through the capture proxy: what was uploaded
and downloaded is counted, not assumed.

nbtrack's own Artifact.add_reference is checked to write the client's entries and digest, and
nbtrack's Api(dir=).artifact().download() to fetch and verify a version the client logged."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

import nbtrack
from nbtrack.artifacts import references
from nbtrack.store.artifact_rows import ArtifactsError
from tests import serving
from tests.capture_proxy import CaptureProxy
from tests.pg_database import fresh_database
from tests.test_wandb_artifact_gc import _gc
from tests.test_wandb_artifacts import SETUPS, Proxied, _downloads, _uploads
from tests.wandb_client import _make_env, require_wandb


def _require_wandb_boto3() -> None:
    """The wandb client reads s3:// references with boto3 (`wandb[aws]`): .ci/run installs it."""
    python = require_wandb()
    if subprocess.run([str(python), "-c", "import boto3"], capture_output=True, timeout=60).returncode != 0:
        reason = f"the wandb client's venv ({python}) has no boto3: pip install boto3 there"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


@dataclass
class Refs:
    wb: Proxied
    gc_where: list[str]
    bucket: str
    prefix: str
    src: Path
    s3: Any  # a boto3 S3 client

    @property
    def dir(self) -> Path | None:
        return self.wb.env.server.dir


@pytest.fixture(params=SETUPS)
def refs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Refs]:
    require_wandb()
    _require_wandb_boto3()
    s3_url = serving.require_s3()
    import boto3

    databases = ExitStack()
    if request.param == "sqlite-folder":
        port = serving.free_port()
        root = tmp_path / f"server-{port}" / "root"  # start_server's --dir: Api(dir=root) reads it all
        served = serving.start_server(tmp_path, port=port, files=str(root / "files"))
        where = ["--dir", str(root), "--files", str(root / "files")]
    else:
        if not serving.POSTGRES_URL:
            pytest.skip("set NBTRACK_TEST_POSTGRES_URL to run the artifact tests on PostgreSQL")
        # A database of the test's own: gc looks at every entity of it.
        db_url = databases.enter_context(fresh_database(serving.POSTGRES_URL, "nbtrack_refs"))
        served = serving.start_server(tmp_path, db_url=db_url, files=serving.files_on("s3"))
        where = ["--db", db_url, "--files", served.files]
    bucket, prefix = urlsplit(s3_url).netloc, serving.unique_name("refs")
    client = boto3.session.Session().client("s3")
    src = tmp_path / "refsrc"
    (src / "d" / "e").mkdir(parents=True)
    (src / "one.txt").write_bytes(b"one\n")
    (src / "d" / "two.txt").write_bytes(b"two two\n")
    (src / "d" / "e" / "three.bin").write_bytes(bytes(range(256)) * 8)
    (tmp_path / "stored.txt").write_bytes(b"a file the server stores " * 40)
    client.put_object(Bucket=bucket, Key=f"{prefix}/data/a.txt", Body=b"hello a\n")
    client.put_object(Bucket=bucket, Key=f"{prefix}/data/sub/b.txt", Body=b"hello b b\n")
    client.put_object(Bucket=bucket, Key=f"{prefix}/single.bin", Body=b"x" * 1000)
    try:
        env = _make_env(served, tmp_path)
        with CaptureProxy(served.url) as proxy:
            env.base_url = proxy.url
            yield Refs(Proxied(env, proxy), where, bucket, prefix, src, client)
    finally:
        served.stop()
        databases.close()
        for obj in client.list_objects_v2(Bucket=bucket, Prefix=prefix + "/").get("Contents", []):
            client.delete_object(Bucket=bucket, Key=obj["Key"])


def _add_references(refs: Refs, checksum: bool = True) -> list[tuple[str, dict[str, Any]]]:
    """The add_reference calls of the tests: (uri, keywords), for either client."""
    s3 = f"s3://{refs.bucket}/{refs.prefix}"
    return [
        ((refs.src / "one.txt").as_uri(), {"checksum": checksum}),
        ((refs.src / "d").as_uri(), {"name": "folder", "checksum": checksum}),
        (f"{s3}/data", {"checksum": checksum}),
        (f"{s3}/single.bin", {"name": "s/single.bin", "checksum": checksum}),
    ]


_LOG = """
import wandb
run = wandb.init(project="arts")
art = wandb.Artifact(NAME, type="dataset")
for uri, keywords in CALLS:
    art.add_reference(uri, **keywords)
if STORED:
    art.add_file(STORED)
before = art.manifest.to_manifest_json()
digest = art.manifest.digest()
run.log_artifact(art)
art.wait()
run.finish()
emit({"manifest": before, "digest": digest, "committed": art.digest, "entity": run.entity})
"""

_DOWNLOAD = """
import hashlib, pathlib, wandb
run = wandb.init(project="arts")
try:
    got = pathlib.Path(run.use_artifact(NAME + ":latest").download(root="got"))
    files = {str(p.relative_to(got)): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(got.rglob("*")) if p.is_file()}
    error = None
except Exception as exc:
    files, error = None, str(exc)
run.finish()
emit({"files": files, "error": error})
"""


def _with(code: str, **values: object) -> str:
    for name, value in values.items():
        code = code.replace(name, repr(value))
    return code


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _expected() -> dict[str, str]:
    return {
        "one.txt": _sha(b"one\n"),
        "folder/two.txt": _sha(b"two two\n"),
        "folder/e/three.bin": _sha(bytes(range(256)) * 8),
        "a.txt": _sha(b"hello a\n"),
        "sub/b.txt": _sha(b"hello b b\n"),
        "s/single.bin": _sha(b"x" * 1000),
        "stored.txt": _sha(b"a file the server stores " * 40),
    }


def _log(refs: Refs, name: str, checksum: bool = True, stored: bool = True) -> dict[str, Any]:
    stored_path = str(refs.src.parent / "stored.txt") if stored else None
    calls = _add_references(refs, checksum)
    return refs.wb.run(_with(_LOG, NAME=name, CALLS=calls, STORED=stored_path))  # type: ignore[no-any-return]


def _download(refs: Refs, name: str) -> dict[str, Any]:
    refs.wb.forget_cache()
    home = refs.wb.env.home
    for old in (home / "got").rglob("*") if (home / "got").exists() else []:
        if old.is_file():
            old.unlink()
    return refs.wb.run(_with(_DOWNLOAD, NAME=name))  # type: ignore[no-any-return]


def test_the_wandb_client_logs_references_and_downloads_them(refs: Refs) -> None:
    mark = refs.wb.mark()
    logged = _log(refs, "refs")
    logging = refs.wb.since(mark)
    # Only the stored file's bytes travel; the references are entries of the manifest alone.
    assert [r.path.rsplit("/", 1)[-1] for r in _uploads(logging)] == [
        hashlib.md5(b"a file the server stores " * 40).hexdigest()
    ]
    assert logged["committed"] == logged["digest"]
    asked = [
        f["name"]
        for r in logging
        if r.operation == "CreateArtifactFiles"
        for f in r.variables["input"]["artifactFiles"]
    ]
    assert asked == ["stored.txt"]  # upload URLs are asked for the stored file only

    # nbtrack's add_reference writes the client's entries, so the version's digest is the same.
    art = nbtrack.Artifact("refs", type="dataset")
    for uri, keywords in _add_references(refs):
        art.add_reference(uri, **keywords)
    art.add_file(refs.src.parent / "stored.txt")
    assert json.loads(art.manifest.to_json())["contents"] == logged["manifest"]["contents"]
    assert art.digest == logged["digest"]
    single = logged["manifest"]["contents"]["s/single.bin"]
    assert single["extra"] == {"etag": hashlib.md5(b"x" * 1000).hexdigest()} == {"etag": single["digest"]}

    mark = refs.wb.mark()
    got = _download(refs, "refs")
    assert got == {"files": _expected(), "error": None}
    # The server listed every entry; the client fetched only the stored one from it.
    assert len(_downloads(refs.wb.since(mark))) == 1

    if refs.dir is not None:  # nbtrack's Api(dir=) reads the server's own --dir
        stored = nbtrack.Api(dir=refs.dir).artifact("arts/refs:latest")
        into = refs.dir.parent / "nbtrack-got"
        stored.download(into)
        assert {
            str(p.relative_to(into)): _sha(p.read_bytes()) for p in into.rglob("*") if p.is_file()
        } == _expected()

    # A reference changed after logging: both clients refuse it, naming it.
    (refs.src / "d" / "two.txt").write_bytes(b"TWO TWO\n")
    got = _download(refs, "refs")
    assert got["files"] is None and "Digest mismatch" in got["error"] and "two.txt" in got["error"]
    if refs.dir is not None:
        fresh = refs.dir.parent / "nbtrack-again"
        with pytest.raises(ArtifactsError, match=r"refs:v0: 'folder/two.txt'.*changed since it was logged"):
            nbtrack.Api(dir=refs.dir).artifact("arts/refs:v0").download(fresh)
        assert not (fresh / "folder" / "two.txt").exists()
        (refs.src / "d" / "two.txt").write_bytes(b"two two\n")
        refs.s3.put_object(Bucket=refs.bucket, Key=f"{refs.prefix}/single.bin", Body=b"y" * 1000)
        with pytest.raises(
            ArtifactsError, match=r"refs:v0: 's/single.bin'.*single.bin changed since it was logged"
        ):
            nbtrack.Api(dir=refs.dir).artifact("arts/refs:v0").download(fresh)
        assert not (fresh / "s" / "single.bin").exists()


def test_checksum_false_references_match_the_client_and_are_not_downloaded(refs: Refs) -> None:
    logged = _log(refs, "unchecked", checksum=False, stored=False)
    contents = logged["manifest"]["contents"]
    s3_data = f"s3://{refs.bucket}/{refs.prefix}/data"
    assert contents[f"{refs.prefix}/data"] == {"digest": s3_data, "ref": s3_data}  # one entry, no size
    art = nbtrack.Artifact("unchecked", type="dataset")
    for uri, keywords in _add_references(refs, checksum=False):
        art.add_reference(uri, **keywords)
    assert art.digest == logged["digest"] == logged["committed"]
    assert {path: (e.digest, e.ref) for path, e in art.manifest.entries.items()} == {
        path: (item["digest"], item["ref"]) for path, item in contents.items()
    }
    # The client cannot check them either: its download fails on the first one it reads.
    got = _download(refs, "unchecked")
    assert got["files"] is None and got["error"]
    if refs.dir is not None:
        with pytest.raises(ArtifactsError, match="checksum=False"):
            nbtrack.Api(dir=refs.dir).artifact("arts/unchecked:latest").download(refs.dir.parent / "x")


def test_gc_neither_needs_nor_frees_references(refs: Refs) -> None:
    logged = _log(refs, "refs")
    entity = logged["entity"]
    assert _gc(refs.gc_where)[:3] == (0, 0, 0)  # the stored file is needed; references are no blobs
    assert _download(refs, "refs") == {"files": _expected(), "error": None}
    refs.wb.run(
        _with(
            'import wandb\nwandb.Api().artifact(ENT + "/arts/refs:v0").delete(delete_aliases=True)',
            ENT=entity,
        )
    )
    freed = _gc(refs.gc_where)
    assert freed[:3] == (1, len(b"a file the server stores " * 40), 1), freed[3]
    # What the references point at is untouched.
    assert (refs.src / "one.txt").read_bytes() == b"one\n"
    body = refs.s3.get_object(Bucket=refs.bucket, Key=f"{refs.prefix}/single.bin")["Body"].read()
    assert body == b"x" * 1000


_MANIFEST_OF = """
import wandb
art = wandb.Artifact("versioned", type="dataset")
for uri, keywords in CALLS:
    art.add_reference(uri, **keywords)
emit({"contents": art.manifest.to_manifest_json()["contents"], "digest": art.manifest.digest()})
"""


def test_a_versioned_bucket_gives_the_clients_version_ids(tmp_path: Path) -> None:
    """In a bucket that keeps versions, each entry carries its object's versionID, as the client's
    do; nbtrack downloads that version even after the object is overwritten."""
    require_wandb()
    _require_wandb_boto3()
    serving.require_s3()
    import boto3

    client = boto3.session.Session().client("s3")
    bucket = serving.unique_name("refs-ver")
    client.create_bucket(Bucket=bucket)
    try:
        _versioned(client, bucket, tmp_path)
    finally:
        for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket):
            for gone in page.get("Versions", []) + page.get("DeleteMarkers", []):
                client.delete_object(Bucket=bucket, Key=gone["Key"], VersionId=gone["VersionId"])
        client.delete_bucket(Bucket=bucket)


def _versioned(client: Any, bucket: str, tmp_path: Path) -> None:
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    first = client.put_object(Bucket=bucket, Key="v/a.txt", Body=b"first")["VersionId"]
    client.put_object(Bucket=bucket, Key="v/a.txt", Body=b"second!")
    client.put_object(Bucket=bucket, Key="v/sub/b.txt", Body=b"bee")
    calls: list[tuple[str, dict[str, Any]]] = [
        (f"s3://{bucket}/v", {}),
        (f"s3://{bucket}/v/a.txt", {"name": "one.txt"}),
    ]
    served = serving.start_server(tmp_path)
    try:
        theirs = _make_env(served, tmp_path).run(_with(_MANIFEST_OF, CALLS=calls))
    finally:
        served.stop()
    art = nbtrack.Artifact("versioned", type="dataset")
    for uri, keywords in calls:
        art.add_reference(uri, **keywords)
    assert json.loads(art.manifest.to_json())["contents"] == theirs["contents"]
    assert art.digest == theirs["digest"]
    assert all("versionID" in item["extra"] for item in theirs["contents"].values())

    # `?versionId=` names an older version: nbtrack records that one (the client 0.31 records
    # the latest whatever is asked: docs/wandb-compat.md).
    [old] = art.add_reference(f"s3://{bucket}/v/a.txt?versionId={first}", name="old.txt")
    assert (old.size, old.extra["extra"]["versionID"], old.ref) == (5, first, f"s3://{bucket}/v/a.txt")
    client.put_object(Bucket=bucket, Key="v/a.txt", Body=b"third, after logging")
    references.fetch(art.manifest.entries["a.txt"], tmp_path / "got" / "a.txt", "artifact versioned: 'a.txt'")
    references.fetch(old, tmp_path / "got" / "old.txt", "artifact versioned: 'old.txt'")
    assert (tmp_path / "got" / "a.txt").read_bytes() == b"second!"
    assert (tmp_path / "got" / "old.txt").read_bytes() == b"first"
