"""An outside tester's attacks on artifacts, as a user or an operator meets them, with real parts (a
real internal process, real SQLite, a real `nbtrack server` on loopback, the real wandb client):
the user's process SIGKILLed right after log_artifact returned, a disk filling while staging,
two processes logging one collection at once, awkward files (empty, thousands, unicode names),
a blob deleted from the server's disk, `nbtrack server gc` sweeping while a run logs, and the
wandb client and nbtrack writing one collection in turn."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import nbtrack
from nbtrack.errors import UsageError
from nbtrack.settings import store_url
from nbtrack.store import Store
from nbtrack.store.artifact_rows import ArtifactsError
from nbtrack.txlog import iter_records
from tests import serving
from tests.wandb_client import WandbEnv, wandb_env

__all__ = ["wandb_env"]  # the fixture, imported for pytest

WAIT = 60.0  # seconds: the bound of every wait here


def committed(root: Path, collection: str = "ds", project: str = "p") -> list[tuple[str, tuple[str, ...]]]:
    """(version, aliases) of the collection's committed versions in the store under root."""
    if not (root / "nbtrack.db").is_file():
        return []
    with Store(store_url(root)) as store:
        rows = store.list_artifact_versions("local", project, collection)
        return sorted(
            ((row.version or "", tuple(sorted(row.aliases))) for row in rows if row.state == "COMMITTED"),
            key=lambda pair: int(pair[0][1:]),
        )


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def run_script(code: str, *args: str, timeout: float = WAIT) -> subprocess.CompletedProcess[str]:
    """Run code in a new Python process of this checkout (a user's process of its own)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=serving.subprocess_env(),
    )


def nbtrack_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nbtrack.cli", *args],
        capture_output=True,
        text=True,
        timeout=WAIT * 2,
        env=serving.subprocess_env(),
    )


# -- 1. the user's process killed right after log_artifact returned --------------------------------

KILLED_AFTER_LOG_ARTIFACT = """
    import os, signal, sys
    from pathlib import Path
    import nbtrack
    root, data, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    run = nbtrack.init(project="p", dir=root, id="victim", mode=mode)
    run.log({"x": 1})
    art = nbtrack.Artifact("ds", type="dataset")
    art.add_dir(data)
    run.log_artifact(art, aliases=["best"])
    os.kill(os.getpid(), signal.SIGKILL)  # no finish(), no exit hook: a kernel OOM-killed
"""


@pytest.mark.parametrize("mode", ["offline", "local"])
def test_a_user_process_killed_right_after_log_artifact_keeps_the_version(
    mode: str, root: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("alpha\n")
    (data / "big.bin").write_bytes(os.urandom(3 << 20))
    done = run_script(KILLED_AFTER_LOG_ARTIFACT, str(root), str(data), mode)
    assert done.returncode == -9, done.stderr
    log = next((root / "runs").glob("run-*-victim/run-victim.nbt"))
    # The internal process outlives its user only to close the log; wait (bounded) for its end.
    deadline = time.monotonic() + WAIT
    while "footer" not in [r.WhichOneof("record_type") for r in iter_records(log, on_corruption=None)]:
        assert time.monotonic() < deadline, "the run's log was never closed after its user died"
        time.sleep(0.05)
    kinds = [r.WhichOneof("record_type") for r in iter_records(log)]
    # log_artifact returned: its record is in the log, whatever happened to the process after.
    assert kinds.count("artifact") == 1, kinds
    if mode == "offline":
        assert committed(root) == []
    for _ in range(2):  # `nbtrack sync` delivers it (offline) or adds nothing (local): once
        synced = nbtrack_cli("sync", "--dir", str(root), str(log))
        assert synced.returncode == 0, synced.stdout + synced.stderr
        assert committed(root) == [("v0", ("best", "latest"))]
    got = nbtrack.Api(dir=root).artifact("p/ds:best").download(tmp_path / "out")
    assert files_of(got) == files_of(data)
    assert len(nbtrack.Api(dir=root).run("p/victim").history()) == 1


# -- 2. the disk fills while log_artifact stages -------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 6 MiB tmpfs (needs root to mount; skipped otherwise)."""
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {made.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_disk_filling_while_staging_is_a_clear_error_and_harms_nothing_logged(
    small_disk: Path, tmp_path: Path
) -> None:
    root = small_disk / "root"
    data = tmp_path / "data"
    data.mkdir()
    (data / "small.txt").write_text("fits\n")
    (data / "huge.bin").write_bytes(os.urandom(8 << 20))  # more than the disk holds
    with nbtrack.init(project="p", dir=root, id="full") as run:
        for step in range(10):
            run.log({"loss": 1.0 / (step + 1)})
        small = nbtrack.Artifact("fits", type="dataset")
        small.add_file(data / "small.txt")
        run.log_artifact(small)
        art = nbtrack.Artifact("ds", type="dataset")
        art.add_dir(data)
        with pytest.raises(OSError) as caught:
            run.log_artifact(art)
        message = str(caught.value)
        assert "huge.bin" in message and "'ds'" in message, message  # names the artifact and the file
        assert "No space left on device" in message and "nothing was logged" in message
        # Nothing this call staged is left taking the space: the run goes on logging.
        staged = run.dir / "artifacts"
        assert sorted(p.name for p in staged.iterdir()) == [small.manifest.entries["small.txt"].md5_hex]
        for step in range(10, 20):
            run.log({"loss": 1.0 / (step + 1)})
    assert run.state == "finished"
    kinds = [r.WhichOneof("record_type") for r in iter_records(run.dir / "run-full.nbt")]
    assert kinds.count("artifact") == 1
    assert committed(root, "ds") == [] and committed(root, "fits") == [("v0", ("latest",))]
    assert len(nbtrack.Api(dir=root).run("p/full").history()) == 20


# -- 3. two processes logging versions of one collection at once ---------------------------------

LOG_VERSIONS = """
    import sys
    from pathlib import Path
    import nbtrack
    root, data, who, count = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    data.mkdir(parents=True)
    with nbtrack.init(project="p", dir=root, id=who) as run:
        for i in range(count):
            f = data / "weights.txt"
            f.write_text(f"{who} {i}\\n")
            art = nbtrack.Artifact("shared", type="model", metadata={"who": who, "i": i})
            art.add_file(f)
            run.log_artifact(art, aliases=[f"{who}-{i}"])
    assert run.state == "finished", run.state
"""


def test_two_processes_logging_one_collection_at_once_lose_no_version(root: Path, tmp_path: Path) -> None:
    count = 6
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                textwrap.dedent(LOG_VERSIONS),
                str(root),
                str(tmp_path / who),
                who,
                str(count),
            ],
            env=serving.subprocess_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for who in ("alice", "bob")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=WAIT * 2)
        assert proc.returncode == 0, err
    versions = committed(root, "shared")
    assert [v for v, _ in versions] == [f"v{i}" for i in range(2 * count)]  # numbered without gaps
    api = nbtrack.Api(dir=root)
    seen = set()
    for version, aliases in versions:
        got = api.artifact(f"p/shared:{version}")
        who, i = got.metadata["who"], got.metadata["i"]
        logged_by = got.logged_by()
        assert f"{who}-{i}" in aliases and logged_by is not None and logged_by.id == who
        text = (got.download(tmp_path / "out" / version) / "weights.txt").read_text()
        assert text == f"{who} {i}\n"
        seen.add((who, i))
    assert seen == {(who, i) for who in ("alice", "bob") for i in range(count)}
    assert sum("latest" in aliases for _, aliases in versions) == 1
    assert "latest" in versions[-1][1]


# -- 4. awkward files: empty, two thousand small ones, unicode and spaces, '..' ---------------------


def test_empty_many_and_unicode_files_round_trip_and_a_dotdot_name_is_refused(
    root: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    (data / "many").mkdir(parents=True)
    for i in range(2000):
        (data / "many" / f"f{i:04d}.txt").write_text(f"{i}\n")
    (data / "empty.bin").write_bytes(b"")
    (data / "données été.csv").write_text("ü,ß\n")
    (data / "with space").mkdir()
    (data / "with space" / "日本語 ファイル.txt").write_text("こんにちは\n")
    art = nbtrack.Artifact("odd", type="dataset")
    art.add_dir(data)
    with pytest.raises(ValueError, match=r"\.\."):
        art.add_file(data / "empty.bin", name="../escape.bin")
    with pytest.raises(ValueError, match=r"\.\."):
        art.add_file(data / "empty.bin", name="a/../../escape.bin")
    with nbtrack.init(project="p", dir=root, id="odd") as run:
        run.log_artifact(art)
    got = nbtrack.Api(dir=root).artifact("p/odd:latest")
    assert len(got.files()) == 2003
    out = got.download(tmp_path / "out")
    assert files_of(out) == files_of(data)
    assert (out / "empty.bin").stat().st_size == 0
    assert not (tmp_path / "escape.bin").exists()


# -- 5. a blob deleted from the store's disk -------------------------------------------------------


def test_a_blob_deleted_from_disk_is_named_at_download_and_other_versions_still_download(
    root: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "keep.txt").write_text("kept\n")
    (data / "lost.txt").write_text("lost v0\n")
    with nbtrack.init(project="p", dir=root, id="maker") as run:
        v0 = nbtrack.Artifact("ds", type="dataset")
        v0.add_dir(data)
        run.log_artifact(v0)
        (data / "lost.txt").write_text("lost v1\n")
        v1 = nbtrack.Artifact("ds", type="dataset")
        v1.add_dir(data)
        run.log_artifact(v1)
    gone = v0.manifest.entries["lost.txt"].md5_hex
    assert gone is not None
    (root / "files" / "~artifacts" / "local" / gone).unlink()
    with nbtrack.init(project="p", dir=root, id="reader") as run:
        used = run.use_artifact("ds:v0")
        with pytest.raises((ArtifactsError, OSError, UsageError)) as caught:
            used.download(tmp_path / "out0")
        assert "lost.txt" in str(caught.value), str(caught.value)
        out = run.use_artifact("ds:v1").download(tmp_path / "out1")
        assert files_of(out) == files_of(data)
    assert not (tmp_path / "out0" / "lost.txt").exists()  # no half file left as if downloaded


# -- 6. `nbtrack server gc` sweeping while a run logs ----------------------------------------------


def test_gc_running_while_a_run_logs_leaves_every_committed_version_whole(root: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    count = 8
    with nbtrack.init(project="p", dir=root, id="busy") as run:
        run.log({"x": 0})
        run.finish()  # the store exists before gc opens it
    gcs = []
    with nbtrack.init(project="p", dir=root, id="busy2") as run:
        for i in range(count):
            (data / "w.bin").write_bytes(os.urandom(256 << 10) + bytes([i]))
            art = nbtrack.Artifact("ds", type="model")
            art.add_file(data / "w.bin")
            run.log_artifact(art)
            gcs.append(nbtrack_cli("server", "gc", "--dir", str(root), "--older-than", "0s"))
    for done in gcs:
        assert done.returncode == 0, done.stdout + done.stderr
    gcs.append(nbtrack_cli("server", "gc", "--dir", str(root), "--older-than", "0s"))
    assert gcs[-1].returncode == 0 and "freed 0 object(s)" in gcs[-1].stdout, gcs[-1].stdout
    versions = committed(root)
    assert [v for v, _ in versions] == [f"v{i}" for i in range(count)]
    api = nbtrack.Api(dir=root)
    for i in range(count):
        out = api.artifact(f"p/ds:v{i}").download(tmp_path / "out" / str(i))
        assert (out / "w.bin").read_bytes()[-1] == i


# -- 7. the wandb client and nbtrack on one collection --------------------------------------------


def test_wandb_and_nbtrack_take_turns_on_one_collection(
    wandb_env: WandbEnv, root: Path, tmp_path: Path
) -> None:
    env = wandb_env
    project = serving.unique_name("mix")
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("from nbtrack\n")
    with nbtrack.init(project=project, dir=root, id="nb0", base_url=env.server.url, api_key=env.key) as run:
        art = nbtrack.Artifact("ds", type="dataset", metadata={"by": "nbtrack"})
        art.add_file(data / "a.txt")
        run.log_artifact(art, aliases=["nb"])
    assert not [n for n in run.notices if "artifact" in n], run.notices
    read = env.run(
        f"""
        import wandb
        from pathlib import Path
        run = wandb.init(project={project!r}, id="wb1")
        old = run.use_artifact("ds:nb")
        path = old.download({str(tmp_path / "wandb-v0")!r})
        f = Path({str(tmp_path / "wb.txt")!r})
        f.write_text("from wandb\\n")
        art = wandb.Artifact("ds", type="dataset", metadata={{"by": "wandb"}})
        art.add_file(str(f), name="a.txt")
        run.log_artifact(art, aliases=["wb"])
        run.finish()
        api = wandb.Api()
        new = api.artifact("{env.entity}/{project}/ds:latest")
        emit({{"old": old.version, "new": new.version, "aliases": sorted(new.aliases),
               "meta": new.metadata}})
        """
    )
    assert read == {"old": "v0", "new": "v1", "aliases": ["latest", "wb"], "meta": {"by": "wandb"}}
    assert (tmp_path / "wandb-v0" / "a.txt").read_text() == "from nbtrack\n"
    with nbtrack.init(project=project, dir=root, id="nb2", base_url=env.server.url, api_key=env.key) as run:
        used = run.use_artifact("ds:wb")
        assert used.name == "ds:v1"
        assert (used.download(tmp_path / "nb-v1") / "a.txt").read_text() == "from wandb\n"
        (data / "a.txt").write_text("from nbtrack again\n")
        art = nbtrack.Artifact("ds", type="dataset")
        art.add_file(data / "a.txt")
        run.log_artifact(art)
    api = nbtrack.Api(base_url=env.server.url, api_key=env.key)
    latest = api.artifact(f"{env.entity}/{project}/ds:latest")
    assert latest.name == "ds:v2"
    assert sorted(v.name for v in latest.versions()) == ["ds:v0", "ds:v1", "ds:v2"]
    assert [r.id for r in api.artifact(f"{env.entity}/{project}/ds:v1").used_by()] == ["nb2"]


# -- 8. the store's disk full while the internal process stores the version -------------------------


def _full_store_run(root: Path, data: Path) -> nbtrack.Run:
    """A local run whose artifact is staged (in the run's folder) but cannot be stored: the store's
    files are a 4 MiB filesystem of their own (no hard link across: a copy, which does not fit)."""
    (data / "huge.bin").write_bytes(os.urandom(7 << 20))
    run = nbtrack.init(project="p", dir=root, id="deliv")
    for step in range(5):
        run.log({"x": step})
    art = nbtrack.Artifact("ds", type="dataset")
    art.add_dir(data)
    run.log_artifact(art)  # staged on the run's disk; its 7 MiB blob does not fit the store's 4
    for step in range(5, 10):
        run.log({"x": step})
    run.finish(timeout=8)
    return run


@contextlib.contextmanager
def own_filesystem(folder: Path, size: str) -> Iterator[Path]:
    """folder as a tmpfs of its own of this size (root needed, else the test is skipped)."""
    folder.mkdir(parents=True)
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True, text=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {made.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.fixture
def store_disk(tmp_path: Path) -> Iterator[Path]:
    """ROOT/files, where a local store keeps artifact blobs, as a 4 MiB tmpfs of its own, grown to
    64 MiB by `grow(mount)` below; the run's folder (ROOT/runs) and the database are elsewhere."""
    with own_filesystem(tmp_path / "root" / "files", "4m") as mount:
        yield mount


def grow(mount: Path) -> None:
    done = subprocess.run(["mount", "-o", "remount,size=64m", str(mount)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_version_the_full_store_could_not_take_is_delivered_once_by_sync(
    store_disk: Path, tmp_path: Path
) -> None:
    root = store_disk.parent
    data = tmp_path / "data"
    data.mkdir()
    run = _full_store_run(root, data)
    assert any("No space left on device" in n for n in run.notices), run.notices
    assert any("nbtrack sync" in n for n in run.notices), run.notices  # the way out is named
    assert committed(root) == []
    grow(store_disk)
    for _ in range(2):
        synced = nbtrack_cli("sync", "--dir", str(root), str(root / "runs"))
        assert synced.returncode == 0, synced.stdout + synced.stderr
        assert committed(root) == [("v0", ("latest",))]
    assert files_of(nbtrack.Api(dir=root).artifact("p/ds:v0").download(tmp_path / "out")) == files_of(data)
    assert len(nbtrack.Api(dir=root).run("p/deliv").history()) == 10


def test_finish_says_an_artifact_is_not_stored_yet(store_disk: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    run = _full_store_run(store_disk.parent, data)
    said = [n for n in run.notices if "finish() stopped waiting" in n]
    assert said and "artifact" in said[-1] and "ds" in said[-1], run.notices


# -- 9. the internal process SIGKILLed while it copies a blob into the store -------------------------


def test_an_internal_process_killed_mid_blob_copy_stores_the_version_once(tmp_path: Path) -> None:
    # The store's files on a filesystem of their own: a blob is copied, not hard-linked.
    root = tmp_path / "root"
    with own_filesystem(root / "files", "512m"):
        _kill_mid_blob_copy(root, tmp_path)


def _kill_mid_blob_copy(root: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "big.bin").write_bytes(os.urandom(160 << 20))
    (data / "small.txt").write_text("small\n")
    art = nbtrack.Artifact("ds", type="dataset")
    art.add_dir(data)
    run = nbtrack.init(project="p", dir=root, id="midcopy")
    run.log({"x": 0})
    assert run._connection is not None
    pid = run._connection.process.pid
    blobs = root / "files" / "~artifacts" / "local"
    run.log_artifact(art, aliases=["best"])
    deadline = time.monotonic() + WAIT
    while not (blobs.is_dir() and any(p.name.endswith(".partial") for p in blobs.iterdir())):
        assert time.monotonic() < deadline, "the blob copy was never seen under way"
        time.sleep(0.002)
    os.kill(pid, 9)
    run.log({"x": 1})
    run.finish()
    assert run.state == "finished" and run.restarts >= 1
    assert committed(root) == [("v0", ("best", "latest"))]
    out = nbtrack.Api(dir=root).artifact("p/ds:best").download(tmp_path / "out")
    assert files_of(out) == files_of(data)
    # The killed copy's temporary file is no blob: gc frees it, and nothing a version needs.
    done = nbtrack_cli("server", "gc", "--dir", str(root), "--older-than", "0s")
    assert done.returncode == 0, done.stdout + done.stderr
    assert not [p.name for p in blobs.iterdir() if p.name.endswith(".partial")]
    out = nbtrack.Api(dir=root).artifact("p/ds:best").download(tmp_path / "again")
    assert files_of(out) == files_of(data)
    assert len(nbtrack.Api(dir=root).run("p/midcopy").history()) == 2


# -- 10. the server restarted while an online run uploads its artifact -------------------------------


def test_a_server_restarted_mid_upload_ends_with_one_whole_version(root: Path, tmp_path: Path) -> None:
    served = serving.start_server(tmp_path)
    try:
        entity = serving.unique_name("rst")
        key = serving.create_key(served, entity)
        data = tmp_path / "data"
        data.mkdir()
        (data / "big.bin").write_bytes(os.urandom(96 << 20))
        (data / "a.txt").write_text("alpha\n")
        art = nbtrack.Artifact("ds", type="dataset")
        art.add_dir(data)
        run = nbtrack.init(project="p", dir=root, id="up", base_url=served.url, api_key=key)
        for step in range(50):
            run.log({"x": step})
        run.log_artifact(art, aliases=["best"])
        # Wait until the big file's upload is under way (the server writes it to a temporary file
        # of at least 1 MiB), then kill the server and start it again on the same port.
        uploads = Path(served.files) / "~uploads"
        deadline = time.monotonic() + WAIT
        while not (uploads.is_dir() and any(p.stat().st_size > (1 << 20) for p in uploads.glob("*.part"))):
            assert time.monotonic() < deadline, "no upload was seen under way"
            time.sleep(0.005)
        served.kill()
        big = art.manifest.entries["big.bin"].md5_hex
        assert not list(Path(served.files).glob(f"~artifacts/*/{big}"))  # cut mid-file
        served.start()
        for step in range(50, 100):
            run.log({"x": step})
        run.finish(timeout=120)
        assert run.state == "finished", run.notices
        api = nbtrack.Api(base_url=served.url, api_key=key)
        got = api.artifact(f"{entity}/p/ds:best")
        assert [v.name for v in got.versions()] == ["ds:v0"]
        assert files_of(got.download(tmp_path / "out")) == files_of(data)
        assert len(api.run(f"{entity}/p/up").history()) == 100
    finally:
        if nbtrack.run is not None:
            nbtrack.run.finish(timeout=10)  # while the server still answers
        served.stop()


# -- 11. two online runs move one alias on a PostgreSQL server at once --------------------------------

LOG_ONLINE = """
    import sys
    from pathlib import Path
    import nbtrack
    root, data, who, count, url, key = sys.argv[1:7]
    data = Path(data)
    data.mkdir(parents=True)
    with nbtrack.init(project="p", dir=root, id=who, base_url=url, api_key=key) as run:
        for i in range(int(count)):
            f = data / "weights.txt"
            f.write_text(f"{who} {i}\\n")
            art = nbtrack.Artifact("shared", type="model", metadata={"who": who, "i": i})
            art.add_file(f)
            run.log_artifact(art, aliases=["best"])
    assert run.state == "finished" and not [n for n in run.notices if "artifact" in n], run.notices
"""


def test_two_online_runs_moving_one_alias_on_postgresql_leave_it_on_one_version(
    root: Path, tmp_path: Path
) -> None:
    if not serving.POSTGRES_URL:
        pytest.skip("set NBTRACK_TEST_POSTGRES_URL to run the server tests on PostgreSQL")
    served = serving.start_server(tmp_path, db_url=serving.POSTGRES_URL)
    try:
        entity = serving.unique_name("race")
        key = serving.create_key(served, entity)
        count = 4
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    textwrap.dedent(LOG_ONLINE),
                    *(str(root), str(tmp_path / who)),
                    who,
                    str(count),
                    served.url,
                    key,
                ],
                env=serving.subprocess_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for who in ("alice", "bob")
        ]
        for proc in procs:
            _, err = proc.communicate(timeout=WAIT * 3)
            assert proc.returncode == 0, err
        api = nbtrack.Api(base_url=served.url, api_key=key)
        versions = api.artifact(f"{entity}/p/shared:latest").versions()
        assert sorted(int(v.version[1:]) for v in versions) == list(range(2 * count))
        holders = [v.name for v in versions if "best" in v.aliases]
        latest = [v.name for v in versions if "latest" in v.aliases]
        assert len(holders) == 1 and latest == [f"shared:v{2 * count - 1}"], (holders, latest)
        seen = {(v.metadata["who"], v.metadata["i"]) for v in versions}
        assert seen == {(who, i) for who in ("alice", "bob") for i in range(count)}
    finally:
        served.stop()


def test_nbtrack_after_wandb_same_files_are_the_same_version_and_wandb_reads_the_next(
    wandb_env: WandbEnv, root: Path, tmp_path: Path
) -> None:
    env = wandb_env
    project = serving.unique_name("rev")
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("made by wandb\n")
    env.run(
        f"""
        import wandb
        run = wandb.init(project={project!r}, id="wb0")
        art = wandb.Artifact("ds", type="dataset")
        art.add_file({str(data / "a.txt")!r}, name="a.txt")
        run.log_artifact(art)
        run.finish()
        """
    )
    with nbtrack.init(project=project, dir=root, id="nb1", base_url=env.server.url, api_key=env.key) as run:
        assert (
            run.use_artifact("ds:v0").download(tmp_path / "v0") / "a.txt"
        ).read_text() == "made by wandb\n"
        same = nbtrack.Artifact("ds", type="dataset")
        same.add_file(data / "a.txt")
        run.log_artifact(same, aliases=["again"])  # the same files: the same version, one more alias
        (data / "a.txt").write_text("made by nbtrack\n")
        other = nbtrack.Artifact("ds", type="dataset")
        other.add_file(data / "a.txt")
        run.log_artifact(other)
    assert not [n for n in run.notices if "artifact" in n], run.notices
    read = env.run(
        f"""
        import wandb
        api = wandb.Api()
        v0 = api.artifact("{env.entity}/{project}/ds:again")
        v1 = api.artifact("{env.entity}/{project}/ds:latest")
        path = v1.download({str(tmp_path / "wandb-v1")!r})
        emit({{"again": v0.version, "latest": v1.version, "n": len(list(api.artifacts("dataset",
              "{env.entity}/{project}/ds")))}})
        """
    )
    assert read == {"again": "v0", "latest": "v1", "n": 2}
    assert (tmp_path / "wandb-v1" / "a.txt").read_text() == "made by nbtrack\n"
