"""The HTTP/1.1 connection: uvicorn's h11 protocol with a deadline on request heads, and its own
refusals (a malformed request, an unfinished head over h11's 16 KiB) in the server's error shape.

uvicorn closes a kept-alive connection that stays idle, but starts no timer on a new connection
nor on one whose client is part-way through a head: trickling header bytes, or never sending the
rest of a body the server answered without reading, would hold the connection forever. Here the
next request's head must be in within head_timeout of the connection opening or of the last
answer, or the connection is closed.
"""

from __future__ import annotations

import asyncio

import h11
import orjson
from uvicorn.protocols.http.h11_impl import H11Protocol

from nbtrack.server.errors import error_body

__all__ = ["guarded_protocol"]


def guarded_protocol(head_timeout: float) -> type[H11Protocol]:
    """The protocol class for uvicorn.Config(http=...)."""

    class GuardedH11Protocol(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_head_timer()

        def handle_events(self) -> None:
            super().handle_events()
            if self.cycle is not None and not self.cycle.response_complete and self._head_timer is not None:
                self._head_timer.cancel()  # a request's head arrived: its body has its own deadline
                self._head_timer = None

        def on_response_complete(self) -> None:
            self._arm_head_timer()  # first: the base class may start a pipelined request at once
            super().on_response_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
            super().connection_lost(exc)

        def send_400_response(self, msg: str) -> None:
            # uvicorn's own is text/plain; every refusal of this server has the one error shape.
            body = orjson.dumps(
                error_body(
                    "BAD_REQUEST",
                    "the request is not valid HTTP/1.1, or its head (request line and headers) is too large",
                )
            )
            headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
            for event in (
                h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
                h11.Data(data=body),
                h11.EndOfMessage(),
            ):
                self.transport.write(self.conn.send(event) or b"")
            self.transport.close()

        def _arm_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            self._head_timer = self.loop.call_later(head_timeout, self._head_timed_out)

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self.cycle is not None and not self.cycle.response_complete:
                return  # a request is being handled; its body has its own deadline
            if not self.transport.is_closing():
                self.transport.close()  # connection_lost brings h11's state up to date

    return GuardedH11Protocol
