"""nbtrack's own artifacts SDK: the W&B v1 manifest (nbtrack/artifacts/manifest.py) and
`nbtrack.Artifact` (nbtrack/artifacts/artifact.py).

The manifest's digests are checked against the real wandb client (its own venv,
NBTRACK_TEST_WANDB_PYTHON) hashing the same files and logging them to a real `nbtrack server`."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import nbtrack
from nbtrack.artifacts.manifest import CHUNK, md5_of_file, parse_manifest
from nbtrack.errors import UsageError
from nbtrack.store.artifact_rows import ArtifactsError
from tests import serving
from tests.wandb_client import WandbEnv, _make_env, require_wandb, wandb_env

__all__ = ["wandb_env"]  # the fixture, imported for pytest


def _tree(root: Path) -> Path:
    (root / "data" / "sub").mkdir(parents=True)
    (root / "train.csv").write_text("x,y\n1,2\n3,4\n")
    (root / "data" / "a.txt").write_text("alpha\n")
    (root / "data" / "sub" / "b.bin").write_bytes(bytes(range(256)) * 40)
    (root / "data" / "empty").write_bytes(b"")
    return root


def test_manifest_equals_the_wandb_clients_for_the_same_files(wandb_env: WandbEnv, tmp_path: Path) -> None:
    root = _tree(tmp_path / "files")
    logged = wandb_env.run(
        f"""
        import wandb
        run = wandb.init(project="arts")
        art = wandb.Artifact("ds", type="dataset")
        art.add_file({str(root / "train.csv")!r})
        art.add_dir({str(root / "data")!r}, name="data")
        before = art.manifest.digest()
        run.log_artifact(art, aliases=["best"])
        art.wait()
        emit({{"before": before, "committed": art.digest,
               "manifest": art.manifest.to_manifest_json()}})
        run.finish()
        """
    )
    art = nbtrack.Artifact("ds", type="dataset")
    art.add_file(root / "train.csv")
    art.add_dir(root / "data", name="data")
    assert art.files() == ["data/a.txt", "data/empty", "data/sub/b.bin", "train.csv"]
    # The digest the client computed, and the one the server committed, are nbtrack's.
    assert art.digest == logged["before"] == logged["committed"]
    theirs = parse_manifest(json.dumps(logged["manifest"]))
    assert {(e.path, e.digest, e.size) for e in theirs.stored()} == {
        (e.path, e.digest, e.size) for e in art.manifest.stored()
    }
    # nbtrack's JSON reads back the same (one parser for both) and gives the same digest.
    again = parse_manifest(art.manifest.to_json())
    assert again.entries == art.manifest.entries and again.digest() == art.digest
    assert art.manifest.size() == sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def test_a_file_bigger_than_the_chunk_hashes_whole(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    data = hashlib.sha256(b"seed").digest() * ((2 * CHUNK + 5) // 32 + 1)
    big.write_bytes(data)
    expected = base64.b64encode(hashlib.md5(data).digest()).decode()
    assert md5_of_file(big) == (expected, len(data))
    assert md5_of_file(big, chunk=1000) == (expected, len(data))  # many chunks, one digest


@pytest.mark.parametrize(
    ("name", "type_", "culprit"),
    [
        ("a/b", "dataset", "'a/b'"),
        ("ds:v1", "dataset", "'ds:v1'"),
        ("ds", "", "artifact type"),
        ("x" * 129, "model", "at most 128"),
    ],
)
def test_bad_names_are_refused_naming_them(name: str, type_: str, culprit: str) -> None:
    with pytest.raises(UsageError, match=culprit):
        nbtrack.Artifact(name, type=type_)


def test_bad_files_and_metadata_are_refused_naming_them(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"artifact metadata\[.when.\]"):
        nbtrack.Artifact("ds", "dataset", metadata={"when": object()})
    with pytest.raises(TypeError, match="artifact name must be a str"):
        nbtrack.Artifact(3, "dataset")  # type: ignore[arg-type]
    art = nbtrack.Artifact("ds", "dataset", metadata={"rows": 3, "split": {"train": 0.8}})
    assert art.metadata == {"rows": 3, "split": {"train": 0.8}}
    missing = tmp_path / "nope.csv"
    with pytest.raises(ValueError, match=r"nope\.csv' is not a file"):
        art.add_file(missing)
    with pytest.raises(ValueError, match="is not a folder"):
        art.add_dir(missing)
    one, two = tmp_path / "one.txt", tmp_path / "two.txt"
    one.write_text("1")
    two.write_text("2")
    with pytest.raises(ValueError, match=r"'\.\./x'"):
        art.add_file(one, name="../x")
    art.add_file(one, name="n.txt")
    art.add_file(one, name="n.txt")  # the same bytes again: nothing changes
    with pytest.raises(ValueError, match=r"file named 'n.txt' already .*one.txt.*two.txt"):
        art.add_file(two, name="n.txt")
    assert art.files() == ["n.txt"]


def test_parse_manifest_refuses_what_is_not_one_and_keeps_references_apart() -> None:
    with pytest.raises(ValueError, match="not JSON"):
        parse_manifest("{nope")
    with pytest.raises(ValueError, match="no `contents`"):
        parse_manifest('{"version": 1}')
    md5 = base64.b64encode(hashlib.md5(b"x").digest()).decode()
    manifest = parse_manifest(
        json.dumps(
            {
                "version": 1,
                "contents": {
                    "a": {"digest": md5, "size": 1, "birthArtifactID": "QXJ0aWZhY3Q6MQ=="},
                    "r": {"digest": "etag", "ref": "s3://bucket/r", "size": 9},
                    "bad": {"size": 3},
                    "worse": "text",
                },
            }
        )
    )
    assert sorted(manifest.entries) == ["a", "r"]
    assert [e.path for e in manifest.stored()] == ["a"]
    assert manifest.entries["a"].md5_hex == hashlib.md5(b"x").hexdigest()
    assert manifest.entries["r"].md5_hex is None
    # What the client sent beyond digest/size is written back as it came.
    assert json.loads(manifest.to_json())["contents"]["a"]["birthArtifactID"] == "QXJ0aWZhY3Q6MQ=="


@pytest.fixture
def dir_wandb_env(tmp_path: Path) -> Iterator[WandbEnv]:
    """The wandb client against `nbtrack server --dir ROOT` keeping its files in ROOT/files (the
    server's default there), so that nbtrack.Api(dir=ROOT) reads both its store and its blobs."""
    require_wandb()
    port = serving.free_port()
    root = tmp_path / f"server-{port}" / "root"  # where start_server puts --dir
    served = serving.start_server(tmp_path, port=port, files=str(root / "files"))
    try:
        yield _make_env(served, tmp_path)
    finally:
        served.stop()


def test_api_reads_and_downloads_a_version_the_wandb_client_logged(
    dir_wandb_env: WandbEnv, tmp_path: Path
) -> None:
    wandb_env = dir_wandb_env
    root = _tree(tmp_path / "files")
    wandb_env.run(
        f"""
        import wandb
        run = wandb.init(project="arts", id="maker")
        art = wandb.Artifact("ds", type="dataset", metadata={{"rows": 2, "split": {{"train": 0.5}}}})
        art.add_file({str(root / "train.csv")!r})
        art.add_dir({str(root / "data")!r}, name="data")
        run.log_artifact(art, aliases=["best"]).wait()
        run.finish()
        """
    )
    served_dir = wandb_env.server.dir
    assert served_dir is not None
    api = nbtrack.Api(dir=served_dir)  # the server's --dir: its store and its files folder
    art = api.artifact("arts/ds:best")  # the entity found from the project
    assert (art.name, art.type, art.version, art.entity) == ("ds:v0", "dataset", "v0", wandb_env.entity)
    assert sorted(art.aliases) == ["best", "latest"]
    assert art.metadata == {"rows": 2, "split": {"train": 0.5}}
    assert art.logged_by().id == "maker"
    assert art.files() == ["data/a.txt", "data/empty", "data/sub/b.bin", "train.csv"]
    out = art.download(tmp_path / "out")
    for name in art.files():
        source = root / "train.csv" if name == "train.csv" else root / name
        assert (out / name).read_bytes() == source.read_bytes()
    assert api.artifact(f"{wandb_env.entity}/arts/ds:v0").digest == art.digest
    with pytest.raises(ArtifactsError, match="no artifact ds:v7 in"):
        api.artifact("arts/ds:v7")

    # A blob whose bytes changed on disk: the download names the file, and writes no wrong bytes.
    entry = art.manifest.entries["data/a.txt"]
    blob = served_dir / "files" / "~artifacts" / wandb_env.entity / str(entry.md5_hex)
    blob.write_text("tampered\n")
    again = tmp_path / "again"
    with pytest.raises(ArtifactsError, match=r"'data/a\.txt'.*is corrupted"):
        art.download(again)
    assert not (again / "data" / "a.txt").exists()
    assert not [p for p in again.rglob("*.part")]  # no temporary file left behind
    blob.unlink()
    with pytest.raises(ArtifactsError, match=r"'data/a\.txt'.*is missing"):
        art.download(again)
