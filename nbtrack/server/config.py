"""What a server process is started with, and the rules that turn command-line options into it."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from nbtrack.errors import UsageError
from nbtrack.settings import resolve_root, store_url

__all__ = [
    "MAX_BODY",
    "MAX_UPLOAD",
    "ServerConfig",
    "describe_store",
    "is_loopback",
    "resolve_store",
    "server_config",
]

MAX_BODY = 64 * 1024 * 1024  # JSON bodies (GraphQL, file stream): a 10,000-row post is a few MB
MAX_UPLOAD = 1024 * 1024 * 1024  # one uploaded run file


@dataclass(frozen=True)
class ServerConfig:
    store_url: str
    files_dir: Path  # run files live in files_dir/<entity>/<project>/<run>/
    host: str = "127.0.0.1"
    port: int = 8080
    max_body: int = MAX_BODY
    max_upload: int = MAX_UPLOAD


def server_config(
    *,
    host: str,
    port: int,
    dir: str | None,
    db: str | None,
    files: str | None,
    max_body: int | None,
    max_upload: int | None,
) -> ServerConfig:
    """The configuration `nbtrack server`'s options describe (None: the default); UsageError if invalid."""
    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be 0..65535, not {port}")
    for option, value in (("--max-body", max_body), ("--max-upload", max_upload)):
        if value is not None and value < 1:
            raise UsageError(f"{option} must be a positive number of bytes, not {value}")
    url, files_dir = resolve_store(dir, db, files)
    return ServerConfig(
        store_url=url,
        files_dir=files_dir,
        host=host,
        port=port,
        max_body=max_body or MAX_BODY,
        max_upload=max_upload or MAX_UPLOAD,
    )


def resolve_store(dir: str | None, db: str | None, files: str | None) -> tuple[str, Path]:
    """The store URL and files folder for --dir / --db / --files (--dir: the store local mode writes)."""
    if db is not None:
        url = db
        # SQLAlchemy reads a bare postgresql:// as psycopg2, which nbtrack does not depend on.
        for bare in ("postgresql://", "postgres://"):
            if url.startswith(bare):
                url = "postgresql+psycopg://" + url[len(bare) :]
        default_files = resolve_root(None) / "files"
        return url, Path(files).expanduser().absolute() if files else default_files
    root = resolve_root(dir)
    return store_url(root), Path(files).expanduser().absolute() if files else root / "files"


def describe_store(url: str) -> str:
    """The store for humans: a SQLite file's path, or the database URL without its password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return os.fspath(parsed.database or ":memory:")
    return parsed.render_as_string(hide_password=True)


def is_loopback(host: str) -> bool:
    """True when host only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False
