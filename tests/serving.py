"""A real `nbtrack server` subprocess for tests, on a free loopback port.

    from tests import serving
    from tests.serving import Client, create_key, start_server

    server = serving.server  # the fixtures, made this module's (an import would shadow test parameters)

`server` serves a fresh --dir under the test's tmp_path (SQLite, open mode until a key is
created). `pg_server` serves NBTRACK_TEST_POSTGRES_URL and is skipped without it; that database
is shared by every test (and may already hold keys, so open mode cannot be relied on there):
create a key for an entity of the test's own (`unique_name("ent")`) and keep to it.
The server's output goes to a log file under tmp_path; a server that does not come up
raises with the tail of that log.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

__all__ = [
    "FILE_BACKENDS",
    "S3_URL",
    "Client",
    "ServerProcess",
    "create_key",
    "files_on",
    "free_port",
    "pg_server",
    "require_s3",
    "server",
    "start_server",
    "unique_name",
]

POSTGRES_URL = os.environ.get("NBTRACK_TEST_POSTGRES_URL")
# s3://BUCKET/PREFIX of an S3-compatible store (.ci/seaweedfs.sh starts SeaweedFS and sets it,
# with the AWS_* variables the server's S3 client reads).
S3_URL = os.environ.get("NBTRACK_TEST_S3_URL")
FILE_BACKENDS = ("folder", "s3")  # what --files may be (server/file_backend.py)
# The checkout these tests belong to: its nbtrack is the one the subprocesses import, whatever
# checkout the venv's editable install points at (a git worktree's tests run the worktree's code).
REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


@dataclass
class ServerProcess:
    url: str  # "http://127.0.0.1:PORT"
    dir: Path | None  # the --dir root (None when db_url given)
    db_url: str | None
    args: list[str]  # everything after `nbtrack server`
    log_path: Path
    cwd: Path
    files: str = ""  # --files: a folder or s3://BUCKET/PREFIX
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def stored_files(self, under: str = "") -> list[str]:
        """The keys of every file the server keeps (run files, ~history exports) under the prefix,
        read from its folder or its bucket directly."""
        if not self.files.startswith("s3://"):
            root = Path(self.files)
            return sorted(
                p.relative_to(root).as_posix()
                for p in root.rglob("*")
                if p.is_file() and p.relative_to(root).as_posix().startswith(under)
            )
        import boto3

        bucket, _, prefix = self.files.removeprefix("s3://").partition("/")
        start = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        pages = (
            boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=start + under)
        )
        return sorted(item["Key"][len(start) :] for page in pages for item in page.get("Contents", []))

    def start(self) -> None:
        """(Re)start on the same port with the same arguments; returns once /healthz answers 200."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError(f"the server at {self.url} is already running")
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "nbtrack.cli", "server", *self.args],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=subprocess_env(),
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"nbtrack server exited with status {self.process.returncode} before serving; "
                    f"its log ends:\n{self.log_tail()}"
                )
            try:
                if requests.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"nbtrack server did not serve within {START_TIMEOUT:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM, and SIGKILL if it has not exited after STOP_TIMEOUT seconds."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])


@dataclass
class Client:
    """Requests to one server as one entity (with its key, or none in open mode)."""

    url: str
    entity: str = "local"
    key: str | None = None
    session: requests.Session = field(default_factory=requests.Session, repr=False)

    def __post_init__(self) -> None:
        if self.key is not None:
            self.session.auth = ("api", self.key)

    def graphql(self, query: str, **variables: Any) -> requests.Response:
        return self.session.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables}, timeout=60
        )

    def data(self, query: str, **variables: Any) -> Any:
        """The data of a query that must succeed."""
        response = self.graphql(query, **variables)
        body = response.json()
        assert response.status_code == 200 and "errors" not in body, body
        return body["data"]

    def upsert(self, project: str, run: str, **fields: Any) -> Any:
        """upsertBucket with the given input fields; the payload."""
        query = """mutation Upsert($input: UpsertBucketInput!) {
            upsertBucket(input: $input) {
                inserted
                bucket {
                    id name displayName description config historyLineCount project { name entity { name } }
                }
            }
        }"""
        return self.data(query, input={"name": run, "project": project, **fields})["upsertBucket"]

    def stream(self, project: str, run: str, body: Any, entity: str | None = None) -> requests.Response:
        """POST a file-stream body (an object, sent as JSON; or bytes, sent as they are)."""
        url = f"{self.url}/files/{entity or self.entity}/{project}/{run}/file_stream"
        if isinstance(body, bytes):
            return self.session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=60)
        return self.session.post(url, json=body, timeout=60)

    def run(self, project: str, run: str, fields: str) -> Any:
        """The run's fields (GraphQL selection), or None if the project or run is not found."""
        query = (
            "query Run($p: String!, $r: String!) { project(name: $p) { run(name: $r) { " + fields + " } } }"
        )
        project_data = self.data(query, p=project, r=run)["project"]
        return None if project_data is None else project_data["run"]


def subprocess_env() -> dict[str, str]:
    """The environment of an `nbtrack` subprocess: this one's, with this checkout first on PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def unique_name(prefix: str) -> str:
    """A name no other test (nor an earlier session on a shared database) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def require_s3() -> str:
    """NBTRACK_TEST_S3_URL; skips the test without it (fails under CI=true: .ci/run starts SeaweedFS)."""
    if not S3_URL:
        reason = "set NBTRACK_TEST_S3_URL (and AWS_*) to run the file tests on S3: see .ci/seaweedfs.sh"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return S3_URL


def files_on(backend: str) -> str | None:
    """--files for a backend of FILE_BACKENDS: None (a folder of the server's own), or a new prefix
    of the test bucket, so that one test's files never meet another's."""
    if backend == "folder":
        return None
    return f"{require_s3().rstrip('/')}/{unique_name('files')}"


def start_server(
    tmp_path: Path,
    *,
    db_url: str | None = None,
    port: int | None = None,
    extra_args: Sequence[str] = (),
    files: str | None = None,
) -> ServerProcess:
    """Start `nbtrack server` on 127.0.0.1 (a free port unless given), serving a new --dir or db_url,
    its run files in files (a folder or s3://...; None: a new folder)."""
    port = port or free_port()
    base = tmp_path / f"server-{port}"
    base.mkdir(parents=True, exist_ok=True)
    root = None if db_url else base / "root"
    store = ["--db", db_url] if db_url else ["--dir", str(root)]
    files = files or str(base / "files")
    args = ["--host", "127.0.0.1", "--port", str(port), *store, "--files", files, *extra_args]
    served = ServerProcess(
        url=f"http://127.0.0.1:{port}",
        dir=root,
        db_url=db_url,
        args=args,
        log_path=base / "server.log",
        cwd=base,
        files=files,
    )
    served.start()
    return served


def create_key(server_or_root: ServerProcess | Path | str, entity: str) -> str:
    """A new API key for entity, made by `nbtrack server key create` on a server's store, a root or a URL."""
    if isinstance(server_or_root, ServerProcess):
        where = (
            ["--db", server_or_root.db_url] if server_or_root.db_url else ["--dir", str(server_or_root.dir)]
        )
    elif isinstance(server_or_root, Path):
        where = ["--dir", str(server_or_root)]
    else:
        where = ["--db", server_or_root]
    result = subprocess.run(
        [sys.executable, "-m", "nbtrack.cli", "server", "key", "create", entity, *where],
        capture_output=True,
        text=True,
        timeout=60,
        env=subprocess_env(),
    )
    if result.returncode != 0:
        raise RuntimeError(f"`nbtrack server key create` failed ({result.returncode}): {result.stderr}")
    return result.stdout.strip()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server on a fresh SQLite store under tmp_path (open mode until a key is created)."""
    served = start_server(tmp_path)
    yield served
    served.stop()


@pytest.fixture
def pg_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server on the shared NBTRACK_TEST_POSTGRES_URL database; skipped when that is not set."""
    if not POSTGRES_URL:
        pytest.skip("set NBTRACK_TEST_POSTGRES_URL to run the server tests on PostgreSQL")
    served = start_server(tmp_path, db_url=POSTGRES_URL)
    yield served
    served.stop()
