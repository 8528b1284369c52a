"""nbtrack's own artifacts against a real `nbtrack server` (SQLite + folder, PostgreSQL + S3):
log_artifact_version (online/artifact_upload.py) logs a version that the real wandb client and
`nbtrack.Api(base_url=...).artifact()` read back byte for byte; a second version sends only the
file that changed; an upload interrupted at any step and called again sends only what is missing
and ends with one committed version; a blob damaged on the server is named at download; a use is
lineage the wandb client sees.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

import nbtrack
from nbtrack.online.artifact_upload import (
    ArtifactFileRefused,
    LoggedVersion,
    log_artifact_version,
    use_artifact_version,
)
from nbtrack.online.client import ServerClient
from nbtrack.online.retry import Rejected, RetryPolicy
from nbtrack.store.artifact_rows import ArtifactsError
from tests import serving
from tests.faultproxy import FaultProxy, Faults
from tests.wandb_client import WandbEnv

PROJECT = "arts"
RUN = "maker"


@pytest.fixture(params=["sqlite-folder", "postgresql-s3"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WandbEnv]:
    """A server with a run RUN of PROJECT, as an entity of its own (a key made for it)."""
    if request.param == "sqlite-folder":
        served = serving.start_server(tmp_path)
    else:
        if not serving.POSTGRES_URL:
            pytest.skip("set NBTRACK_TEST_POSTGRES_URL to run the server tests on PostgreSQL")
        served = serving.start_server(tmp_path, db_url=serving.POSTGRES_URL, files=serving.files_on("s3"))
    try:
        entity = serving.unique_name("art")
        key = serving.create_key(served, entity)
        home = tmp_path / "wandb-home"
        home.mkdir()
        made = WandbEnv(served, entity, key, home)
        made.client.upsert(PROJECT, RUN)
        yield made
    finally:
        served.stop()


def _tree(root: Path, changed: bytes = b"first") -> Path:
    """Files to log: a few small ones, one of ~3 MB (several upload chunks), one empty."""
    (root / "data" / "sub").mkdir(parents=True, exist_ok=True)
    (root / "train.csv").write_text("x,y\n1,2\n")
    (root / "data" / "a.txt").write_bytes(b"changes: " + changed)
    (root / "data" / "sub" / "big.bin").write_bytes(os.urandom(3 << 20))
    (root / "data" / "empty").write_bytes(b"")
    return root


def _artifact(root: Path) -> nbtrack.Artifact:
    art = nbtrack.Artifact(
        "ds", type="dataset", description="digits", metadata={"rows": 2, "split": {"a": 0.5}}
    )
    art.add_file(root / "train.csv")
    art.add_dir(root / "data", name="data")
    return art


def _log(
    client: ServerClient, env: WandbEnv, art: nbtrack.Artifact, aliases: list[str] | None = None
) -> LoggedVersion:
    sources = {entry.md5_hex: art.source_of(entry.path) for entry in art.manifest.stored()}

    def blob_path(md5_hex: str) -> Path:
        return sources[md5_hex]

    return log_artifact_version(
        client,
        entity=None,  # the key's own, asked of the server
        project=PROJECT,
        run_id=RUN,
        name=art.name,
        type=art.type,
        description=art.description,
        metadata=art.metadata,
        aliases=aliases or [],
        manifest=art.manifest,
        blob_path=blob_path,
    )


def _same_files(out: Path, root: Path, names: list[str]) -> None:
    for name in names:
        source = root / name
        assert (out / name).read_bytes() == source.read_bytes(), name


def test_a_logged_version_reads_back_with_the_wandb_client_and_the_api(env: WandbEnv, tmp_path: Path) -> None:
    root = _tree(tmp_path / "files")
    art = _artifact(root)
    client = ServerClient(env.server.url, env.key)
    logged = _log(client, env, art, aliases=["best"])
    total = sum(entry.size for entry in art.manifest.stored())
    # Every distinct blob sent once (the empty file is one of them).
    assert (logged.entity, logged.collection, logged.version) == (env.entity, "ds", "v0")
    assert (logged.files_uploaded, logged.bytes_uploaded) == (4, total)
    assert logged.digest == art.digest

    read = env.run(
        f"""
        import wandb
        api = wandb.Api()
        art = api.artifact("{env.entity}/{PROJECT}/ds:best")
        path = art.download({str(tmp_path / "by-wandb")!r})
        emit({{"version": art.version, "aliases": sorted(art.aliases), "metadata": art.metadata,
               "digest": art.digest, "logged_by": art.logged_by().id, "description": art.description}})
        """
    )
    assert read == {
        "version": "v0",
        "aliases": ["best", "latest"],
        "metadata": {"rows": 2, "split": {"a": 0.5}},
        "digest": art.digest,
        "logged_by": RUN,
        "description": "digits",
    }
    names = ["train.csv", "data/a.txt", "data/sub/big.bin", "data/empty"]
    _same_files(tmp_path / "by-wandb", root, ["train.csv"])
    _same_files(tmp_path / "by-wandb" / "data", root / "data", ["a.txt", "sub/big.bin", "empty"])

    api = nbtrack.Api(base_url=env.server.url, api_key=env.key)
    stored = api.artifact(f"{PROJECT}/ds:best")  # the entity found from the project
    assert (stored.name, stored.type, stored.version, stored.entity) == ("ds:v0", "dataset", "v0", env.entity)
    assert sorted(stored.aliases) == ["best", "latest"]
    assert stored.metadata == {"rows": 2, "split": {"a": 0.5}}
    logger = stored.logged_by()
    assert logger is not None and (logger.id, logger.project) == (RUN, PROJECT)
    assert (stored.digest, stored.size) == (art.digest, total)
    assert stored.files() == sorted(names)
    out = stored.download(tmp_path / "by-api")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == sorted(names)
    _same_files(out, root, ["train.csv"])
    _same_files(out / "data", root / "data", ["a.txt", "sub/big.bin", "empty"])
    with pytest.raises(ArtifactsError, match="no artifact ds:v7 in"):
        api.artifact(f"{env.entity}/{PROJECT}/ds:v7")


def test_a_second_version_sends_only_the_file_that_changed(env: WandbEnv, tmp_path: Path) -> None:
    client = ServerClient(env.server.url, env.key)
    root = _tree(tmp_path / "files")
    first = _log(client, env, _artifact(root))
    (root / "data" / "a.txt").write_bytes(b"changes: second")
    second_art = _artifact(root)
    second = _log(client, env, second_art)
    assert (first.version, second.version) == ("v0", "v1")
    assert (second.files_uploaded, second.bytes_uploaded) == (1, len(b"changes: second"))
    # The same files again: the committed version is found, nothing is sent.
    again = _log(client, env, second_art, aliases=["best"])
    assert (again.version, again.files_uploaded, again.bytes_uploaded) == ("v1", 0, 0)

    api = nbtrack.Api(base_url=env.server.url, api_key=env.key)
    latest = api.artifact(f"{env.entity}/{PROJECT}/ds")
    assert (latest.version, sorted(latest.aliases)) == ("v1", ["best", "latest"])
    assert [(v.version, v.digest) for v in latest.versions()] == [("v1", second.digest), ("v0", first.digest)]
    out = latest.versions()[1].download(tmp_path / "v0")
    assert (out / "data" / "a.txt").read_bytes() == b"changes: first"


class _Killed(Exception):
    """The process logging the version died here (raised by _Interrupting)."""


class _Interrupting(ServerClient):
    """A client that dies at one step of a log: fault injection around the real client."""

    def __init__(self, base_url: str, api_key: str, step: str) -> None:
        super().__init__(base_url, api_key)
        self.step = step
        self.uploaded = 0  # bytes whose PUT the server answered

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        if self.step == "after CreateArtifact" and "createArtifactManifest" in query:
            raise _Killed
        if self.step == "before CommitArtifact" and "commitArtifact" in query:
            raise _Killed
        answer = super().graphql(query, variables)
        if self.step == "CommitArtifact answered to nobody" and "commitArtifact" in query:
            raise _Killed
        return answer

    def upload(
        self,
        url: str,
        path: Path,
        headers: dict[str, str] | None = None,
        *,
        stop: threading.Event | None = None,
    ) -> None:
        big = path.stat().st_size > (1 << 20)  # the big file, after the small ones before it
        if self.step == "after two PUTs" and big:
            raise _Killed
        if self.step == "in the middle of a PUT" and big:

            def first_half() -> Iterator[bytes]:
                with path.open("rb") as data:
                    yield data.read(path.stat().st_size // 2)
                raise _Killed  # the connection is dropped with half the body sent

            requests.put(url, data=first_half(), headers=headers, auth=self._session.auth, timeout=30)
        super().upload(url, path, headers, stop=stop)
        self.uploaded += path.stat().st_size


@pytest.mark.parametrize(
    "step",
    [
        "after CreateArtifact",
        "after two PUTs",
        "in the middle of a PUT",
        "before CommitArtifact",
        "CommitArtifact answered to nobody",
    ],
)
def test_an_interrupted_upload_resumes_sending_only_what_is_missing(
    env: WandbEnv, tmp_path: Path, step: str
) -> None:
    root = _tree(tmp_path / "files")
    art = _artifact(root)
    total = sum(entry.size for entry in art.manifest.stored())
    dying = _Interrupting(env.server.url, env.key, step)
    with pytest.raises(_Killed):
        _log(dying, env, art)
    resumed = _log(ServerClient(env.server.url, env.key), env, art)
    assert resumed.version == "v0"
    # Nothing that reached the server is sent again; everything else is.
    assert dying.uploaded + resumed.bytes_uploaded == total

    api = nbtrack.Api(base_url=env.server.url, api_key=env.key)
    stored = api.artifact(f"{env.entity}/{PROJECT}/ds:latest")
    assert [v.version for v in stored.versions()] == ["v0"]  # one committed version
    out = stored.download(tmp_path / "out")
    _same_files(out / "data", root / "data", ["a.txt", "sub/big.bin", "empty"])


def test_uploads_go_through_a_failing_network(env: WandbEnv, tmp_path: Path) -> None:
    """Connections dropped and 500/429 answers on every kind of request: retried, one version."""
    root = _tree(tmp_path / "files")
    art = _artifact(root)
    with FaultProxy(env.server.url, Faults(fail_rate=0.3, kinds=("drop", "500", "429"), seed=7)) as proxy:
        client = ServerClient(proxy.url, env.key, policy=RetryPolicy(base=0.05, cap=0.2))
        logged = _log(client, env, art)
        out = (
            nbtrack.Api(base_url=proxy.url, api_key=env.key)
            .artifact(f"{PROJECT}/ds:v0")
            .download(tmp_path / "o")
        )
        assert sum(count for kind, count in proxy.stats.items() if kind != "forwarded") > 0, proxy.stats
    assert logged.version == "v0"
    _same_files(out / "data", root / "data", ["a.txt", "sub/big.bin", "empty"])


def test_a_blob_damaged_on_the_server_is_named_at_download(env: WandbEnv, tmp_path: Path) -> None:
    root = _tree(tmp_path / "files")
    art = _artifact(root)
    _log(ServerClient(env.server.url, env.key), env, art)
    entry = art.manifest.entries["data/a.txt"]
    _overwrite_blob(env, str(entry.md5_hex), b"tampered\n")
    stored = nbtrack.Api(base_url=env.server.url, api_key=env.key).artifact(f"{PROJECT}/ds:v0")
    out = tmp_path / "out"
    with pytest.raises(ArtifactsError, match=r"'data/a\.txt'.*is corrupted"):
        stored.download(out)
    assert not (out / "data" / "a.txt").exists()
    assert not list(out.rglob("*.part"))  # no temporary file left behind


def test_a_refused_file_is_an_error_naming_it(tmp_path: Path) -> None:
    served = serving.start_server(tmp_path, extra_args=["--max-upload", str(1 << 20)])
    try:
        key = serving.create_key(served, "alice")
        serving.Client(served.url, "alice", key).upsert(PROJECT, RUN)
        art = _artifact(_tree(tmp_path / "files"))
        env = WandbEnv(served, "alice", key, tmp_path)
        with pytest.raises(ArtifactFileRefused, match=r"'data/sub/big\.bin'.*413") as refused:
            _log(ServerClient(served.url, key), env, art)
        assert (refused.value.file, refused.value.status) == ("data/sub/big.bin", 413)

        # Bytes that are not the MD5 the manifest says (the file changed after it was added).
        small = tmp_path / "small"
        small.mkdir()
        (small / "notes.txt").write_text("as added\n")
        changed = nbtrack.Artifact("notes", type="text")
        changed.add_file(small / "notes.txt")
        (small / "notes.txt").write_text("changed since\n")
        with pytest.raises(ArtifactFileRefused, match=r"'notes\.txt'.*400") as refused:
            _log(ServerClient(served.url, key), env, changed)
        assert (refused.value.file, refused.value.status) == ("notes.txt", 400)

        # A collection of another type is refused before anything is made.
        dataset = nbtrack.Artifact("ds", type="dataset")
        dataset.add_file(tmp_path / "files" / "train.csv")
        _log(ServerClient(served.url, key), env, dataset)
        clash = nbtrack.Artifact("ds", type="model")
        clash.add_file(tmp_path / "files" / "train.csv")
        with pytest.raises(Rejected, match="artifact 'ds' of alice/arts is of type 'dataset', not 'model'"):
            _log(ServerClient(served.url, key), env, clash)
    finally:
        served.stop()


def test_a_use_is_lineage_the_wandb_client_sees(env: WandbEnv, tmp_path: Path) -> None:
    client = ServerClient(env.server.url, env.key)
    _log(client, env, _artifact(_tree(tmp_path / "files")))
    env.client.upsert(PROJECT, "reader")
    use_artifact_version(
        client, entity=env.entity, project=PROJECT, run_id="reader", collection="ds", version="v0"
    )
    use_artifact_version(
        client, entity=None, project=PROJECT, run_id="reader", collection="ds", version="latest"
    )
    seen = env.run(
        f"""
        import wandb
        art = wandb.Api().artifact("{env.entity}/{PROJECT}/ds:v0")
        emit({{"used_by": [run.id for run in art.used_by()], "logged_by": art.logged_by().id}})
        """
    )
    assert seen == {"used_by": ["reader"], "logged_by": RUN}  # used twice, recorded once
    stored = nbtrack.Api(base_url=env.server.url, api_key=env.key).artifact(f"{PROJECT}/ds:v0")
    logger = stored.logged_by()
    assert [run.id for run in stored.used_by()] == ["reader"] and logger is not None and logger.id == RUN
    with pytest.raises(Exception, match="no committed artifact ds:v3"):
        use_artifact_version(
            client, entity=None, project=PROJECT, run_id="reader", collection="ds", version="v3"
        )


def test_a_local_store_answers_versions_and_used_by_too(tmp_path: Path) -> None:
    """The same object read from the server's --dir folder (LocalArtifacts)."""
    served = serving.start_server(tmp_path)
    try:
        key = serving.create_key(served, "alice")
        env = WandbEnv(served, "alice", key, tmp_path)
        env.client.upsert(PROJECT, RUN)
        env.client.upsert(PROJECT, "reader")
        client = ServerClient(served.url, key)
        root = _tree(tmp_path / "files")
        _log(client, env, _artifact(root))
        (root / "data" / "a.txt").write_bytes(b"changes: second")
        _log(client, env, _artifact(root))
        use_artifact_version(
            client, entity=None, project=PROJECT, run_id="reader", collection="ds", version="v0"
        )
    finally:
        served.stop()
    assert served.dir is not None
    stored = nbtrack.Api(dir=served.dir).artifact(f"{PROJECT}/ds:v0")
    assert [v.version for v in stored.versions()] == ["v1", "v0"]
    logger = stored.logged_by()
    assert [run.id for run in stored.used_by()] == ["reader"] and stored.versions()[0].used_by() == []
    assert logger is not None and logger.id == RUN


def _overwrite_blob(env: WandbEnv, md5_hex: str, data: bytes) -> None:
    """Change a stored blob's bytes behind the server's back, in its folder or its bucket."""
    key = f"~artifacts/{env.entity}/{md5_hex}"
    files = env.server.files
    if not files.startswith("s3://"):
        (Path(files) / key).write_bytes(data)
        return
    import boto3

    bucket, _, prefix = files.removeprefix("s3://").partition("/")
    boto3.client("s3").put_object(Bucket=bucket, Key=f"{prefix.strip('/')}/{key}", Body=data)


def test_a_large_file_is_streamed_both_ways_in_bounded_memory(tmp_path: Path) -> None:
    """A 32 MB file goes up and comes back without ever being held whole (Python's allocations
    traced: the peak stays a small fraction of the file)."""
    import tracemalloc

    served = serving.start_server(tmp_path)
    try:
        key = serving.create_key(served, "alice")
        env = WandbEnv(served, "alice", key, tmp_path)
        env.client.upsert(PROJECT, RUN)
        big = tmp_path / "big.bin"
        with big.open("wb") as out:
            for _ in range(32):
                out.write(os.urandom(1 << 20))
        art = nbtrack.Artifact("weights", type="model")
        art.add_file(big)
        client = ServerClient(served.url, key)
        stored = nbtrack.Api(base_url=served.url, api_key=key)
        tracemalloc.start()
        try:
            logged = _log(client, env, art)
            _, up_peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            out_dir = stored.artifact(f"{PROJECT}/weights:v0").download(tmp_path / "out")
            _, down_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    finally:
        served.stop()
    assert logged.bytes_uploaded == 32 << 20
    assert (out_dir / "big.bin").read_bytes() == big.read_bytes()
    assert up_peak < 8 << 20, f"uploading held {up_peak} bytes at once"
    assert down_peak < 8 << 20, f"downloading held {down_peak} bytes at once"
