"""nbtrack's own artifacts SDK: the W&B v1 manifest (nbtrack/artifacts/manifest.py) and
`nbtrack.Artifact` (nbtrack/artifacts/artifact.py).

The manifest's digests are checked against the real wandb client (its own venv,
NBTRACK_TEST_WANDB_PYTHON) hashing the same files and logging them to a real `nbtrack server`."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

import nbtrack
from nbtrack.artifacts.manifest import CHUNK, md5_of_file, parse_manifest
from nbtrack.errors import UsageError
from tests.wandb_client import WandbEnv, wandb_env

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
