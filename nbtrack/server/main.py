"""`nbtrack server`: run the app under uvicorn in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Iterator
from typing import TextIO

import uvicorn

from nbtrack.server.app import create_app
from nbtrack.server.config import ServerConfig, describe_store, is_loopback
from nbtrack.server.protocol import guarded_protocol
from nbtrack.server.silent_runs import SilentRuns
from nbtrack.server.timeouts import KEEP_ALIVE_SECONDS
from nbtrack.store import Store
from nbtrack.vocabulary import RUN_ALIVE_SECONDS

__all__ = ["serve"]

# The one exit status of a refusal to start (as argparse uses for a bad command line).
REFUSED = 2
# How long a stop signal waits for requests in flight (a large post being written) before cutting them.
_GRACE_SECONDS = 10


class _Server(uvicorn.Server):
    """uvicorn's server, saying once where it listens, and exiting 0 (not re-raising) on a stop signal."""

    def __init__(self, config: uvicorn.Config, announcement: str, out: TextIO) -> None:
        super().__init__(config)
        self._announcement = announcement
        self._out = out

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            print(self._announcement, file=self._out, flush=True)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn's own version raises the signal again after shutting down, which would make a
        # clean stop on SIGTERM look like a crash (exit status -15) to whoever started us.
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def serve(config: ServerConfig, out: TextIO = sys.stdout) -> int:
    """Serve until stopped; the exit status (REFUSED if it may not start as asked)."""
    store = Store(config.store_url)
    try:
        keys = store.key_count()
        if keys == 0 and not is_loopback(config.host):
            print(
                f"nbtrack server: refusing to serve {config.host} without API keys, since anyone who can "
                "reach it could read and write every run; create a key with "
                "`nbtrack server key create ENTITY` first",
                file=sys.stderr,
            )
            return REFUSED
        level = getattr(logging, config.log_level.upper())
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        # SQLAlchemy logs statements with their parameters at INFO, and those hold key hashes and
        # the URL-signing secret: its log stays at WARNING whatever the server's level (SQLAlchemy
        # sets that itself on import; said here so that no logging change can undo it).
        logging.getLogger("sqlalchemy").setLevel(max(level, logging.WARNING))
        app = create_app(config, store)
        sock = _bind(config.host, config.port)
        host, port = sock.getsockname()[:2]
        where = f"[{host}]" if ":" in host else host
        announcement = (
            f"nbtrack server: serving http://{where}:{port} "
            f"(store: {describe_store(config.store_url)}, files: {app.state.files_location}, "
            f"{keys} key{'' if keys == 1 else 's'})"
        )
        # No access log: it would be one line per file-stream post, and the lines a user needs
        # (refused requests are answered, failures are logged) come from the app itself.
        # Nor an access log at any level: upload URLs carry their token in the query string.
        uvicorn_config = uvicorn.Config(
            app,
            log_level=config.log_level,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=_GRACE_SECONDS,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            # uvicorn's h11 protocol with a deadline on request heads (protocol.py).
            http=guarded_protocol(config.body_timeout),
        )
        if 0 < config.crashed_after < 2 * RUN_ALIVE_SECONDS:
            logging.getLogger("nbtrack.server").warning(
                "nbtrack server: --crashed-after %g s is shorter than two heartbeats of an idle run "
                "(%g s each): a live run that logs nothing may read crashed until its next heartbeat",
                config.crashed_after,
                RUN_ALIVE_SECONDS,
            )
        silent_runs = SilentRuns(store, config.crashed_after) if config.crashed_after > 0 else None
        try:
            _Server(uvicorn_config, announcement, out).run(sockets=[sock])
        finally:
            if silent_runs is not None:
                silent_runs.stop(5.0)
        return 0
    finally:
        store.close()


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket; bound here rather than by uvicorn so that port 0 and bind errors are ours."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not the default 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets that
    # say they are TCP, and with Nagle on every answer on a kept-alive connection waited ~40 ms
    # for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock
