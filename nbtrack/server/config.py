"""What a server process is started with, and the rules that turn command-line options into it."""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from nbtrack.errors import UsageError
from nbtrack.server.file_backend import is_s3_url, parse_s3_url
from nbtrack.server.hosts import allowed_host
from nbtrack.settings import resolve_root, store_url
from nbtrack.vocabulary import SILENT_RUN_SECONDS

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_BURST_SECONDS",
    "DEFAULT_RATE",
    "LOG_LEVELS",
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
LOG_LEVELS = ("debug", "info", "warning", "error")
# Rate limit (limits.py), per entity or per address. nbtrack's sender posts at most twice a
# second per run (one post in flight) and an open run page polls once a second: 100 requests a
# second is ~40 busy runs of one entity at once, and past that the 429s only make posts fewer
# and larger (every row still arrives).
DEFAULT_RATE = 100.0
DEFAULT_BURST_SECONDS = 4.0  # the default burst: this many seconds of the rate
DEFAULT_BODY_TIMEOUT = 30.0  # seconds a request's head, or the next piece of its body, may take


@dataclass(frozen=True)
class ServerConfig:
    store_url: str
    # Run files live in files_dir/<entity>/<project>/<run>/: a folder, or "s3://BUCKET/PREFIX"
    # (file_backend.py).
    files_dir: Path | str
    host: str = "127.0.0.1"
    port: int = 8080
    max_body: int = MAX_BODY
    max_upload: int = MAX_UPLOAD
    rate_limit: float = DEFAULT_RATE  # requests a second per caller (limits.py); 0: no limit
    rate_burst: float = DEFAULT_RATE * DEFAULT_BURST_SECONDS
    body_timeout: float = DEFAULT_BODY_TIMEOUT  # seconds (timeouts.py)
    # A running run silent this long (seconds) is marked crashed (silent_runs.py); 0: never.
    crashed_after: float = SILENT_RUN_SECONDS
    log_level: str = "warning"
    # Host names answered besides loopback's (hosts.py), as hosts.allowed_host gives them. On a
    # loopback server only these and loopback names are answered; beyond loopback, with none
    # listed, any name is.
    allowed_hosts: tuple[str, ...] = ()


def server_config(
    *,
    host: str,
    port: int,
    dir: str | None,
    db: str | None,
    files: str | None,
    max_body: int | None,
    max_upload: int | None,
    rate_limit: float | None = None,
    rate_burst: float | None = None,
    body_timeout: float | None = None,
    crashed_after: float | None = None,
    log_level: str | None = None,
    allowed_hosts: Sequence[str] | None = None,
) -> ServerConfig:
    """The configuration `nbtrack server`'s options describe (None: the default); UsageError if invalid."""
    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be 0..65535, not {port}")
    for option, value in (("--max-body", max_body), ("--max-upload", max_upload)):
        if value is not None and value < 1:
            raise UsageError(f"{option} must be a positive number of bytes, not {value}")
    if rate_limit is not None and not (0 <= rate_limit < math.inf):
        raise UsageError(
            f"--rate-limit must be a number of requests a second >= 0 (0: off), not {rate_limit}"
        )
    if rate_burst is not None and not (1 <= rate_burst < math.inf):
        raise UsageError(f"--rate-burst must be a number of requests >= 1, not {rate_burst}")
    if body_timeout is not None and not (0 < body_timeout < math.inf):
        raise UsageError(f"--body-timeout must be a positive number of seconds, not {body_timeout}")
    if crashed_after is not None and not (0 <= crashed_after < math.inf):
        raise UsageError(f"--crashed-after must be a number of seconds >= 0 (0: never), not {crashed_after}")
    if log_level is not None and log_level not in LOG_LEVELS:
        raise UsageError(f"--log-level must be one of {', '.join(LOG_LEVELS)}, not {log_level!r}")
    names = []
    for given in allowed_hosts or ():
        name = allowed_host(given)
        if name is None:
            raise UsageError(
                f"--allowed-host must be a host name or address without a port or scheme, not {given!r}"
            )
        names.append(name)
    rate = DEFAULT_RATE if rate_limit is None else rate_limit
    url, files_dir = resolve_store(dir, db, files)
    return ServerConfig(
        store_url=url,
        files_dir=files_dir,
        host=host,
        port=port,
        max_body=max_body or MAX_BODY,
        max_upload=max_upload or MAX_UPLOAD,
        rate_limit=rate,
        # Unless given, a burst of DEFAULT_BURST_SECONDS' worth: a page load or a run's start
        # (a few GraphQL calls and the first posts at once) never waits.
        rate_burst=rate_burst or max(1.0, rate * DEFAULT_BURST_SECONDS),
        body_timeout=body_timeout or DEFAULT_BODY_TIMEOUT,
        crashed_after=SILENT_RUN_SECONDS if crashed_after is None else crashed_after,
        log_level=log_level or "warning",
        allowed_hosts=tuple(dict.fromkeys(names)),
    )


def resolve_store(dir: str | None, db: str | None, files: str | None) -> tuple[str, Path | str]:
    """The store URL and files folder (or s3:// URL) for --dir / --db / --files (--dir: the store
    local mode writes)."""
    if files is not None and is_s3_url(files):
        parse_s3_url(files)  # a malformed URL is refused before anything starts
        return resolve_store(dir, db, None)[0], files
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
