"""nbtrack's artifact references (nbtrack/artifacts/references.py): `Artifact.add_reference` for
file:// (a file, a folder) and s3:// (an object, a prefix: the S3 of NBTRACK_TEST_S3_URL, SeaweedFS
in CI), and their download checked against the manifest (references.fetch).

The entries and digests the real wandb client writes for the same references are compared in
tests/test_wandb_artifact_refs.py."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import nbtrack
from nbtrack.artifacts import references
from nbtrack.artifacts.manifest import ManifestEntry
from nbtrack.store.artifact_rows import ArtifactsError
from tests import serving


def _b64md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode("ascii")


def _tree(root: Path) -> Path:
    (root / "d" / "e").mkdir(parents=True)
    (root / "one.txt").write_bytes(b"one\n")
    (root / "d" / "two.txt").write_bytes(b"two two\n")
    (root / "d" / "e" / "three.bin").write_bytes(bytes(range(256)) * 10)
    return root


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*.part")) if folder.exists() else []


def test_file_references_are_hashed_not_copied(tmp_path: Path) -> None:
    src = _tree(tmp_path / "src")
    art = nbtrack.Artifact("refs", type="dataset")
    [one] = art.add_reference((src / "one.txt").as_uri())
    assert (one.path, one.digest, one.size, one.ref) == (
        "one.txt",
        _b64md5(b"one\n"),
        4,
        (src / "one.txt").as_uri(),
    )
    folder = art.add_reference((src / "d").as_uri(), name="folder")
    assert sorted((e.path, e.ref) for e in folder) == [
        ("folder/e/three.bin", (src / "d").as_uri() + "/e/three.bin"),
        ("folder/two.txt", (src / "d").as_uri() + "/two.txt"),
    ]
    assert art.files() == ["folder/e/three.bin", "folder/two.txt", "one.txt"]
    assert art.manifest.stored() == []  # nothing for the server to store
    assert art.manifest.size() == 4 + 8 + 2560
    # The same reference again is a no-op; another one under a taken name is refused, named.
    art.add_reference((src / "one.txt").as_uri())
    (tmp_path / "other.txt").write_bytes(b"other")
    with pytest.raises(ValueError, match=r"'one.txt' already.*other.txt"):
        art.add_reference((tmp_path / "other.txt").as_uri(), name="one.txt")


def test_checksum_false_records_the_path_only(tmp_path: Path) -> None:
    src = _tree(tmp_path / "src")
    art = nbtrack.Artifact("refs", type="dataset")
    [one] = art.add_reference((src / "one.txt").as_uri(), checksum=False)
    # W&B's: the MD5 of the file's absolute URI, so a change of its bytes makes no new version.
    assert one.digest == _b64md5((src / "one.txt").resolve().as_uri().encode())
    assert one.size == 4
    with pytest.raises(ArtifactsError, match=r"'one.txt'.*checksum=False"):
        references.fetch(one, tmp_path / "got" / "one.txt", "artifact refs:v0: 'one.txt'")
    assert not (tmp_path / "got" / "one.txt").exists()


@pytest.mark.parametrize(
    ("uri", "culprit"),
    [
        ("http://example.com/data.csv", "scheme 'http'"),
        ("gs://bucket/data", "scheme 'gs'"),
        ("data/one.txt", "no scheme"),
        ("file:///nowhere/at/all.txt", "neither a file nor a folder"),
        ("file://otherhost/data.txt", "not host 'otherhost'"),
        ("s3:///no-bucket", "names a bucket"),
    ],
)
def test_bad_references_are_refused_naming_them(uri: str, culprit: str) -> None:
    art = nbtrack.Artifact("refs", type="dataset")
    with pytest.raises(ValueError) as raised:
        art.add_reference(uri)
    assert uri in str(raised.value) and culprit in str(raised.value)
    assert art.files() == []


def test_max_objects_bounds_a_folder(tmp_path: Path) -> None:
    src = _tree(tmp_path / "src")
    art = nbtrack.Artifact("refs", type="dataset")
    with pytest.raises(ValueError, match="more than 1 files: pass a larger max_objects"):
        art.add_reference((src / "d").as_uri(), max_objects=1)
    assert art.files() == []
    assert len(art.add_reference((src / "d").as_uri(), max_objects=2)) == 2


def test_a_file_reference_is_fetched_verified_and_a_change_is_named(tmp_path: Path) -> None:
    src = _tree(tmp_path / "src")
    [entry] = nbtrack.Artifact("refs", type="dataset").add_reference((src / "d" / "e" / "three.bin").as_uri())
    got = tmp_path / "got"
    references.fetch(entry, got / "three.bin", "artifact refs:v0: 'three.bin'")
    assert (got / "three.bin").read_bytes() == bytes(range(256)) * 10
    # Same size, other bytes: the MD5 tells; the file already downloaded is left as it was.
    (src / "d" / "e" / "three.bin").write_bytes(bytes(reversed(range(256))) * 10)
    with pytest.raises(ArtifactsError, match=r"'three.bin'.*changed since it was logged"):
        references.fetch(entry, got / "three.bin", "artifact refs:v0: 'three.bin'")
    assert (got / "three.bin").read_bytes() == bytes(range(256)) * 10
    (src / "d" / "e" / "three.bin").unlink()
    with pytest.raises(ArtifactsError, match=r"'three.bin'.*three.bin.*is missing"):
        references.fetch(entry, got / "new" / "three.bin", "artifact refs:v0: 'three.bin'")
    assert not (got / "new" / "three.bin").exists()
    assert _leftovers(got) == []


# --- s3:// (SeaweedFS in CI) ---


@pytest.fixture
def bucket_prefix() -> Iterator[tuple[object, str, str]]:
    """(boto3 client, bucket, a fresh prefix) of the test S3; its objects removed afterwards."""
    url = serving.require_s3()
    import boto3

    bucket = urlsplit(url).netloc
    prefix = serving.unique_name("refs")
    client = boto3.session.Session().client("s3")
    yield client, bucket, prefix
    listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix + "/").get("Contents", [])
    for obj in listed:
        client.delete_object(Bucket=bucket, Key=obj["Key"])


def test_s3_references_carry_the_etag_and_are_fetched_verified(
    bucket_prefix: tuple[object, str, str], tmp_path: Path
) -> None:
    client, bucket, prefix = bucket_prefix
    put = client.put_object  # type: ignore[attr-defined]
    put(Bucket=bucket, Key=f"{prefix}/data/a.txt", Body=b"hello a\n")
    put(Bucket=bucket, Key=f"{prefix}/data/sub/b.txt", Body=b"hello b b\n")
    put(Bucket=bucket, Key=f"{prefix}/data/marker/", Body=b"")  # a folder marker: no entry
    put(Bucket=bucket, Key=f"{prefix}/database/c.txt", Body=b"not under data/")
    put(Bucket=bucket, Key=f"{prefix}/single.bin", Body=b"x" * 1000)
    art = nbtrack.Artifact("refs", type="dataset")
    data = art.add_reference(f"s3://{bucket}/{prefix}/data")
    assert sorted((e.path, e.ref, e.size) for e in data) == [
        ("a.txt", f"s3://{bucket}/{prefix}/data/a.txt", 8),
        ("sub/b.txt", f"s3://{bucket}/{prefix}/data/sub/b.txt", 10),
    ]
    [single] = art.add_reference(f"s3://{bucket}/{prefix}/single.bin", name="s/single.bin")
    md5 = hashlib.md5(b"x" * 1000).hexdigest()
    assert (single.path, single.digest, single.size, single.extra) == (
        "s/single.bin",
        md5,
        1000,
        {"extra": {"etag": md5}},
    )
    [unchecked] = art.add_reference(f"s3://{bucket}/{prefix}/data", name="raw", checksum=False)
    assert (unchecked.digest, unchecked.ref) == (f"s3://{bucket}/{prefix}/data",) * 2

    got = tmp_path / "got"
    references.fetch(single, got / "single.bin", "artifact refs:v0: 's/single.bin'")
    assert (got / "single.bin").read_bytes() == b"x" * 1000
    with pytest.raises(ArtifactsError, match=r"'raw'.*checksum=False"):
        references.fetch(unchecked, got / "raw", "artifact refs:v0: 'raw'")
    # Overwritten (same size, other bytes): its ETag is not the one logged.
    put(Bucket=bucket, Key=f"{prefix}/single.bin", Body=b"y" * 1000)
    with pytest.raises(
        ArtifactsError,
        match=r"'s/single.bin'.*single.bin (changed since it was logged|is not the one logged)",
    ):
        references.fetch(single, got / "again.bin", "artifact refs:v0: 's/single.bin'")
    client.delete_object(Bucket=bucket, Key=f"{prefix}/single.bin")  # type: ignore[attr-defined]
    with pytest.raises(ArtifactsError, match=r"'s/single.bin'.*single.bin is missing"):
        references.fetch(single, got / "again.bin", "artifact refs:v0: 's/single.bin'")
    assert not (got / "again.bin").exists() and _leftovers(got) == []


def test_an_empty_s3_object_named_by_its_key_is_an_entry(bucket_prefix: tuple[object, str, str]) -> None:
    client, bucket, prefix = bucket_prefix
    client.put_object(Bucket=bucket, Key=f"{prefix}/empty.txt", Body=b"")  # type: ignore[attr-defined]
    [entry] = nbtrack.Artifact("refs", type="dataset").add_reference(f"s3://{bucket}/{prefix}/empty.txt")
    assert (entry.path, entry.size, entry.digest) == ("empty.txt", 0, hashlib.md5(b"").hexdigest())


def test_an_s3_key_with_nothing_there_is_refused(bucket_prefix: tuple[object, str, str]) -> None:
    _client, bucket, prefix = bucket_prefix
    with pytest.raises(ValueError, match=rf"s3://{bucket}/{prefix}/nothing.*no object at that key nor under"):
        nbtrack.Artifact("refs", type="dataset").add_reference(f"s3://{bucket}/{prefix}/nothing")


def test_an_unknown_scheme_in_a_manifest_is_refused_at_download(tmp_path: Path) -> None:
    entry = ManifestEntry(path="x", digest="abc", size=1, ref="gs://bucket/x")
    with pytest.raises(ArtifactsError, match=r"'x'.*gs://bucket/x.*cannot fetch"):
        references.fetch(entry, tmp_path / "x", "artifact refs:v0: 'x'")
