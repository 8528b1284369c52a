"""Run files on both files backends (server/file_backend.py) through a real `nbtrack server`: a local
folder and an S3-compatible bucket (NBTRACK_TEST_S3_URL: SeaweedFS in CI, .ci/seaweedfs.sh).

Uploads stream through (a file larger than any part the server holds is never in memory whole), an
upload past --max-upload leaves nothing (no object, no multipart upload), byte ranges and the real
wandb client's save / files() / download() work the same on both, and a bucket that does not
answer stops the server at its start, naming the bucket."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest
import requests

import nbtrack
from tests import serving
from tests import test_wandb_client as wandb_client_tests
from tests import test_wandb_read as wandb_read
from tests.serving import Client, ServerProcess
from tests.wandb_client import WandbEnv, _make_env, require_wandb

NBTRACK_SERVER = [sys.executable, "-m", "nbtrack.cli", "server"]
MiB = 1 << 20
PART = 8 * MiB  # s3_backend.PART: the server holds at most about one part of an upload

FILES = """mutation F($input: CreateRunFilesInput!) {
    createRunFiles(input: $input) { files { name uploadUrl } } }"""


@pytest.fixture(params=serving.FILE_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _start(tmp_path: Path, backend: str, *args: str) -> ServerProcess:
    return serving.start_server(tmp_path, files=serving.files_on(backend), extra_args=list(args))


def _upload_url(client: Client, run: str, name: str) -> str:
    created = client.data(FILES, input={"project": "p", "run": run, "files": [name]})
    url: str = created["createRunFiles"]["files"][0]["uploadUrl"]
    return url


def _pattern(size: int) -> Iterator[bytes]:
    """size bytes that are not all alike (each MiB differs), made as they are sent."""
    for start in range(0, size, MiB):
        yield hashlib.sha256(str(start).encode()).digest() * (min(MiB, size - start) // 32)


def _pending_multipart_uploads(server: ServerProcess) -> list[str]:
    if not server.files.startswith("s3://"):
        return []
    import boto3

    bucket, _, prefix = server.files.removeprefix("s3://").partition("/")
    found = boto3.client("s3").list_multipart_uploads(Bucket=bucket, Prefix=prefix)
    return [upload["Key"] for upload in found.get("Uploads", [])]


def test_an_upload_past_the_limit_leaves_nothing(tmp_path: Path, backend: str) -> None:
    """Past a part (so S3 has a multipart upload under way) and then past --max-upload: 413, and no
    object, no half file and no unfinished multipart upload is left."""
    server = _start(tmp_path, backend, "--max-upload", str(2 * PART + MiB))
    try:
        client = Client(server.url)
        client.upsert("p", "r")
        url = _upload_url(client, "r", "big.bin")
        response = requests.put(url, data=_pattern(3 * PART), timeout=120)  # chunked: no length to refuse
        assert response.status_code == 413, response.text
        assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
        assert "big.bin" in response.json()["errors"][0]["message"]
        assert [key for key in server.stored_files() if not key.startswith("~uploads/")] == []
        assert server.stored_files("~uploads/") == []  # the folder's temporary file is gone
        assert _pending_multipart_uploads(server) == []
        assert client.run("p", "r", "files { name }") == {"files": []}
    finally:
        server.stop()


def test_a_large_upload_streams_through_in_bounded_memory(tmp_path: Path, backend: str) -> None:
    """A 200 MB file goes up and comes back exact, while the server's memory grows by far less
    than the file: it is streamed both ways, never held whole."""
    size = 200 * MiB
    server = _start(tmp_path, backend)
    try:
        client = Client(server.url)
        client.upsert("p", "r")
        url = _upload_url(client, "r", "weights.bin")
        assert server.process is not None
        process = psutil.Process(server.process.pid)
        before = process.memory_info().rss
        peak = [before]
        done = threading.Event()

        def watch() -> None:
            while not done.wait(0.05):
                peak[0] = max(peak[0], process.memory_info().rss)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            sent = hashlib.sha256()

            def body() -> Iterator[bytes]:
                for chunk in _pattern(size):
                    sent.update(chunk)
                    yield chunk

            response = requests.put(url, data=body(), timeout=600)
            assert response.status_code == 200, response.text
            assert response.json() == {"name": "weights.bin", "sizeBytes": size}
            got = hashlib.sha256()
            with client.session.get(
                f"{server.url}/files/local/p/r/weights.bin", stream=True, timeout=600
            ) as download:
                assert download.status_code == 200
                assert download.headers["Content-Length"] == str(size)
                for chunk in download.iter_content(MiB):
                    got.update(chunk)
        finally:
            done.set()
            watcher.join()
        assert got.hexdigest() == sent.hexdigest()
        grown = peak[0] - before
        assert grown < 100 * MiB, f"the server grew by {grown / MiB:.0f} MiB for a {size / MiB:.0f} MiB file"
    finally:
        server.stop()


def test_a_run_file_is_served_whole_or_by_range(tmp_path: Path, backend: str) -> None:
    server = _start(tmp_path, backend)
    try:
        client = Client(server.url)
        client.upsert("p", "r")
        data = bytes(range(256)) * 100
        assert requests.put(_upload_url(client, "r", "media/table.bin"), data=data, timeout=30).ok
        url = f"{server.url}/files/local/p/r/media/table.bin"
        whole = client.session.get(url, timeout=30)
        assert whole.status_code == 200 and whole.content == data
        assert whole.headers["Content-Disposition"] == 'attachment; filename="table.bin"'
        part = client.session.get(url, headers={"Range": "bytes=100-299"}, timeout=30)
        assert part.status_code == 206 and part.content == data[100:300]
        assert part.headers["Content-Range"] == f"bytes 100-299/{len(data)}"
        tail = client.session.get(url, headers={"Range": "bytes=-10"}, timeout=30)
        assert tail.status_code == 206 and tail.content == data[-10:]
        missing = client.session.get(f"{server.url}/files/local/p/r/absent.bin", timeout=30)
        assert missing.status_code == 404 and "absent.bin" in missing.text
        # nbtrack's own read API, through the server
        stored = nbtrack.Api(base_url=server.url).run("local/p/r")
        assert stored.file("media/table.bin") == data
    finally:
        server.stop()


def test_a_bucket_that_does_not_answer_stops_the_server_naming_it(tmp_path: Path) -> None:
    url = serving.require_s3()
    bucket = "nbtrack-absent-" + serving.unique_name("b").split("-")[1]
    result = subprocess.run(
        [*NBTRACK_SERVER, "--dir", str(tmp_path / "root"), "--port", "0", "--files", f"s3://{bucket}/x"],
        capture_output=True,
        text=True,
        timeout=60,
        env=serving.subprocess_env(),
    )
    assert url and result.returncode != 0
    assert f"s3://{bucket}/x" in result.stderr and bucket in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    bad = subprocess.run(
        [*NBTRACK_SERVER, "--dir", str(tmp_path / "root"), "--files", "s3://"],
        capture_output=True,
        text=True,
        timeout=60,
        env=serving.subprocess_env(),
    )
    assert bad.returncode != 0 and "s3://BUCKET[/PREFIX]" in bad.stderr, bad.stderr


@pytest.fixture
def wandb_env_on(tmp_path: Path, backend: str) -> Iterator[WandbEnv]:
    """The real wandb client against a server whose files are in backend."""
    require_wandb()
    served = _start(tmp_path, backend)
    try:
        yield _make_env(served, tmp_path)
    finally:
        served.stop()


def test_the_wandb_client_saves_lists_and_downloads_files(wandb_env_on: WandbEnv) -> None:
    """wandb.save() uploads to createRunFiles' URLs; run.files() lists them (md5 included) and
    file.download() reads them back exact: test_wandb_read's test, on this backend."""
    wandb_read.test_files_list_and_download_exact_bytes(wandb_env_on)
    wandb_client_tests.test_log_save_alert_and_viewer(wandb_env_on)  # config.yaml, metadata, summary too
    stored = wandb_env_on.server.stored_files()
    assert any(key.endswith("/notes.txt") for key in stored), stored
    if wandb_env_on.server.files.startswith("s3://"):
        assert not (wandb_env_on.server.cwd / "files").exists()  # nothing on the local disk


def test_deleting_a_run_removes_its_files_and_exports(tmp_path: Path, backend: str) -> None:
    server = _start(tmp_path, backend)
    try:
        client = Client(server.url)
        for run in ("gone", "kept"):
            client.upsert("p", run)
            assert requests.put(_upload_url(client, run, "a/b.txt"), data=b"x", timeout=30).ok
            body = {"files": {"wandb-history.jsonl": {"offset": 0, "content": ['{"_step": 0, "x": 1}']}}}
            assert client.stream("p", run, {**body, "complete": True, "exitcode": 0}).ok
            query = """query E($r: String!) { project(name: "p") { run(name: $r) {
                parquetHistory(liveKeys: []) { parquetUrls } } } }"""
            urls = client.data(query, r=run)["project"]["run"]["parquetHistory"]["parquetUrls"]
            assert requests.get(urls[0], timeout=30).ok
        assert len([k for k in server.stored_files() if "/gone/" in k]) == 3  # file, claim, export
        nbtrack.Api(base_url=server.url).run("local/p/gone").delete()
        assert [k for k in server.stored_files() if "/gone/" in k] == []
        assert len([k for k in server.stored_files() if "/kept/" in k]) == 3
    finally:
        server.stop()


def test_the_wandb_client_scans_history_exports_kept_in_the_backend(wandb_env_on: WandbEnv) -> None:
    """scan_history() reads the parquet exports (whole, and by byte ranges when given keys) that
    the server wrote to this backend: test_wandb_read's test, on this backend."""
    wandb_read.test_scan_history_and_pandas_exact(wandb_env_on)
    exports = wandb_env_on.server.stored_files("~history/")
    assert any(key.endswith(".parquet") for key in exports), exports
    assert any(key.endswith(".claim") for key in exports), exports


class Relay:
    """A TCP relay to the S3 endpoint that the test can cut (the store's outage) and restore on the
    same port. Bytes pass unchanged, so the S3 client's signatures (over the Host it names) hold."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = serving.free_port()
        self._open: list[socket.socket] = []
        self._listener: socket.socket | None = None

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        assert self._listener is not None
        with contextlib.suppress(OSError):  # wakes the accept() under way, which close() alone would not
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for sock in self._open:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream, timeout=30)
            self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def test_an_object_store_outage_is_a_clear_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the object store cannot be reached, an upload and a download fail with the one error
    shape, naming the bucket and what could not be done, and nothing is stored; once it is back,
    the same signed URL works."""
    files = serving.files_on("s3")
    assert files is not None
    endpoint = urlsplit(os.environ["AWS_ENDPOINT_URL"])
    relay = Relay((endpoint.hostname or "127.0.0.1", endpoint.port or 80))
    relay.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{relay.port}")
    server = serving.start_server(tmp_path, files=files)
    try:
        client = Client(server.url)
        client.upsert("p", "r")
        assert requests.put(_upload_url(client, "r", "kept.txt"), data=b"kept", timeout=60).ok
        url = _upload_url(client, "r", "a.txt")
        relay.cut()
        response = requests.put(url, data=b"lost?", timeout=120)
        assert response.status_code == 500, response.text
        message = response.json()["errors"][0]["message"]
        assert files.rpartition("/")[0] in message and "could not write" in message, message
        download = client.session.get(f"{server.url}/files/local/p/r/kept.txt", timeout=120)
        assert download.status_code == 500 and "could not read" in download.text, download.text
        relay.start()
        assert requests.put(url, data=b"back", timeout=60).ok
        stored = nbtrack.Api(base_url=server.url).run("local/p/r")
        assert (stored.file("a.txt"), stored.file("kept.txt")) == (b"back", b"kept")
    finally:
        server.stop()
        relay.cut()
    assert "Traceback" not in server.log()


ODD_NAMES = [
    "a b/c#d?.txt",
    "ü/ñ 表.txt",
    "100%/+plus&amp;=.txt",
    "dots.../x..y",
    "~tilde/'quote\"",
    "deep/" * 20 + "end.txt",
]


def test_odd_file_names_round_trip_and_overlong_ones_are_refused_by_name(
    tmp_path: Path, backend: str
) -> None:
    server = _start(tmp_path, backend)
    try:
        client = Client(server.url)
        client.upsert("p", "r")
        for number, name in enumerate(ODD_NAMES):
            response = requests.put(_upload_url(client, "r", name), data=f"{number}".encode(), timeout=30)
            assert response.status_code == 200, (name, response.text)
        stored = nbtrack.Api(base_url=server.url).run("local/p/r")
        listed = client.run("p", "r", "files { name }")["files"]
        assert [file["name"] for file in listed] == sorted(ODD_NAMES)
        for number, name in enumerate(ODD_NAMES):
            assert stored.file(name) == f"{number}".encode(), name
        # Past a file system's 255 bytes a name, and past S3's 1024 bytes a key: refused by name.
        for long_name in ("x" * 1000, "é" * 600):
            response = requests.put(_upload_url(client, "r", long_name), data=b"z", timeout=30)
            assert response.status_code == 400, response.text
            assert "too long" in response.json()["errors"][0]["message"]
            missing = client.session.get(f"{server.url}/files/local/p/r/{long_name}", timeout=30)
            assert missing.status_code in (400, 404) and missing.json()["errors"], missing.text
    finally:
        server.stop()
    assert "Traceback" not in server.log()


def test_an_upload_cut_off_by_its_client_leaves_nothing(tmp_path: Path, backend: str) -> None:
    """A client that goes away after more than a part (S3: a multipart upload under way) leaves no
    object, no half file and no unfinished multipart upload."""
    server = _start(tmp_path, backend)
    try:
        client = Client(server.url)
        client.upsert("p", "r")
        target = urlsplit(_upload_url(client, "r", "cut.bin"))
        with socket.create_connection(
            (target.hostname or "127.0.0.1", target.port or 80), timeout=30
        ) as sock:
            head = (
                f"PUT {target.path}?{target.query} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Length: {4 * PART}\r\n\r\n"
            )
            sock.sendall(head.encode())
            for chunk in _pattern(PART + 2 * MiB):
                sock.sendall(chunk)
        deadline = time.monotonic() + 60
        while _pending_multipart_uploads(server) or server.stored_files():
            assert time.monotonic() < deadline, (_pending_multipart_uploads(server), server.stored_files())
            time.sleep(0.2)
        assert client.run("p", "r", "files { name }") == {"files": []}
    finally:
        server.stop()
