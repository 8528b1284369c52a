"""The HTTP/1.1 connection: uvicorn's h11 protocol with a deadline on request heads, and its own
refusals (a malformed request, an unfinished head over h11's 16 KiB, a request framed twice) in
the server's error shape.

uvicorn closes a kept-alive connection that stays idle, but starts no timer on a new connection
nor on one whose client is part-way through a head: trickling header bytes, or never sending the
rest of a body the server answered without reading, would hold the connection forever. Here the
next request's head must be in within head_timeout of the connection opening or of the last
answer, or the connection is closed.

A request with both Content-Length and Transfer-Encoding is refused and its connection closed
(RFC 9112 §6.1). h11 lets Transfer-Encoding win and reads on, but a proxy in front that went by
Content-Length would see a different end of the body, and what it took for the body this server
would read as the next request (request smuggling): past such a request, nothing on its
connection can be trusted to be what the client sent.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
import orjson
from h11._connection import DEFAULT_MAX_INCOMPLETE_EVENT_SIZE  # h11 exports no name for it
from uvicorn.protocols.http.h11_impl import H11Protocol

from nbtrack.server.errors import error_body

__all__ = ["guarded_protocol"]

_MALFORMED = "the request is not valid HTTP/1.1, or its head (request line and headers) is too large"


class _SingleFramingConnection(h11.Connection):
    """h11's server side, which also refuses a request framed by both Content-Length and
    Transfer-Encoding (see the module's docstring)."""

    refusal: str | None = None  # why the last request was refused, for the answer

    def next_event(self) -> h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]:
        event = super().next_event()
        if isinstance(event, h11.Request):
            names = {name for name, _ in event.headers}  # h11 gives them lowercased
            if b"content-length" in names and b"transfer-encoding" in names:
                self.refusal = (
                    "the request has both Content-Length and Transfer-Encoding: it must be framed "
                    "by one of them only (RFC 9112 section 6.1)"
                )
                # uvicorn answers a RemoteProtocolError with send_400_response, which closes.
                raise h11.RemoteProtocolError(self.refusal, error_status_hint=400)
        return event


def guarded_protocol(head_timeout: float) -> type[H11Protocol]:
    """The protocol class for uvicorn.Config(http=...)."""

    class GuardedH11Protocol(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            # The same connection uvicorn makes, refusing a request framed twice.
            size = self.config.h11_max_incomplete_event_size
            self.conn = self._conn = _SingleFramingConnection(
                h11.SERVER, DEFAULT_MAX_INCOMPLETE_EVENT_SIZE if size is None else size
            )

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
            body = orjson.dumps(error_body("BAD_REQUEST", self._conn.refusal or _MALFORMED))
            headers = [
                (b"content-type", b"application/json"),
                # Else h11 sends the body chunked to a client whose request it had parsed.
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ]
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
