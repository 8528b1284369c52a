"""Slow clients: how long a request's head and body may take, so a stalled client holds nothing for long.

An asyncio server spends no thread on a waiting connection, but each one still holds a socket,
buffers and, mid-body, a handler (an upload's temporary file). Three deadlines bound them:

- the head: once a connection is open (or has been answered), the next request's line and
  headers must arrive within `body_timeout` seconds, or it is closed (protocol.py: uvicorn has
  no such timer, and a client trickling header bytes would otherwise keep a connection forever);
- the body, while a handler reads it: no chunk for `body_timeout` seconds, or a body arriving
  slower than MIN_BODY_RATE on average after the first `body_timeout` seconds, is answered
  408 REQUEST_TIMEOUT and the connection closed;
- a body the handler never read (a request refused before reading it) is not waited for
  beyond the head deadline either (protocol.py).
Idle kept-alive connections are closed by uvicorn after KEEP_ALIVE_SECONDS.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nbtrack.server.errors import ApiError

__all__ = ["KEEP_ALIVE_SECONDS", "MIN_BODY_RATE", "BodyDeadline"]

# nbtrack's sender posts every 0.5 s and a run page polls every second, so 5 s of idleness keeps
# their connections open between requests while idle ones go soon.
KEEP_ALIVE_SECONDS = 5
# A body slower than this on average (past the first body_timeout seconds) is a slow-loris, not
# a slow network: 1 GiB (the default upload limit) still has over a day at this rate.
MIN_BODY_RATE = 8 * 1024


class BodyDeadline:
    """ASGI middleware: the body's chunks must come in time, or ApiError REQUEST_TIMEOUT (408)."""

    def __init__(self, app: ASGIApp, body_timeout: float) -> None:
        self.app = app
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        started: float | None = None
        received = 0
        complete = False

        async def timed_receive() -> Message:
            nonlocal started, received, complete
            if complete:  # after the body, a handler only listens for the disconnect: no deadline
                return await receive()
            now = loop.time()
            if started is None:
                started = now
            # The whole body's deadline grows with what has arrived; each chunk also has its own.
            deadline = started + self.body_timeout + received / MIN_BODY_RATE
            timeout = min(self.body_timeout, deadline - now)
            try:
                message = await asyncio.wait_for(receive(), timeout=max(timeout, 0.0))
            except TimeoutError:
                raise ApiError(
                    "REQUEST_TIMEOUT",
                    f"the request body did not arrive in time (no data for {self.body_timeout:g} s, "
                    f"or slower than {MIN_BODY_RATE} bytes a second)",
                    headers={"Connection": "close"},  # the rest of the body is not waited for
                ) from None
            received += len(message.get("body", b""))
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, timed_receive, send)
