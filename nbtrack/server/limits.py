"""Per-caller rate limits: a token bucket per entity (or per client address), as ASGI middleware.

Only requests that reach the store or the run files are charged: POST /graphql and everything
under /files/. Pages, /static/ and /healthz are not: they need no key, read small files (or
count keys), a page load asks for a dozen modules at once, and a load balancer's health check
must never be told to back off. A flood of those is a job for a reverse proxy; the limit is
there so that one runaway client cannot starve every other client of the store.

A request with a valid API key is charged to the key's entity (every key of an entity shares
one budget); any other (open mode, no key, a wrong key, an upload URL) to its client address,
IPv6 addresses by their /64, since one host usually holds a whole /64. A wrong key is charged
before it is answered, so guessing keys is throttled too. Over the limit: 429 RATE_LIMITED
with Retry-After in whole seconds, which nbtrack's client (and W&B's) waits for and retries.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from nbtrack.server.errors import ApiError, error_response

__all__ = ["MAX_BUCKETS", "RateLimitMiddleware", "RateLimiter", "TokenBucket", "address_of", "charged"]

log = logging.getLogger("nbtrack.server")

# Buckets kept at most; the least recently used goes first. A forgotten bucket starts full again,
# so forgetting never refuses anyone, and the table cannot grow with the addresses seen.
MAX_BUCKETS = 10_000


@dataclass
class TokenBucket:
    """`burst` tokens at most, refilled at `rate` a second; each request takes one."""

    rate: float
    burst: float
    tokens: float
    updated: float

    def take(self, now: float) -> float:
        """0.0 if a token was taken, else the seconds until one will be there."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class RateLimiter:
    """The buckets of every caller seen lately. Not thread-safe: used on the event loop only."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self._clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def wait(self, caller: str) -> float:
        """0.0 if caller may go on now, else the seconds until it may."""
        now = self._clock()
        bucket = self._buckets.get(caller)
        if bucket is None:
            bucket = self._buckets[caller] = TokenBucket(self.rate, self.burst, self.burst, now)
            while len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(caller)
        return bucket.take(now)


def address_of(scope: Scope) -> str:
    """The client's address for its bucket: an IPv6 address as its /64."""
    client = scope.get("client")
    host = client[0] if client else "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:  # a Unix socket, or a test client's made-up name
        return host
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def charged(path: str) -> bool:
    """True for the paths that reach the store or run files (see the module's docstring)."""
    return path == "/graphql" or path.startswith("/files/")


class RateLimitMiddleware:
    """Answers 429 RATE_LIMITED to a caller over its budget, before the request is read."""

    def __init__(
        self,
        app: ASGIApp,
        limiter: RateLimiter,
        key_entity: Callable[[str], str | None],
        known_entity: Callable[[str], str | None],
    ) -> None:
        self.app = app
        self.limiter = limiter
        # Blocking (the store, for a key not seen lately): the entity of a valid key, else None.
        self.key_entity = key_entity
        # Not blocking: the entity of a key found valid lately, else None (then key_entity decides).
        self.known_entity = known_entity

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not charged(scope["path"]):
            await self.app(scope, receive, send)
            return
        caller = await self._caller(scope)
        wait = self.limiter.wait(caller)
        if wait > 0.0:
            seconds = max(1, math.ceil(wait))  # Retry-After is whole seconds; 0 would invite a spin
            log.info("rate limited %s: retry in %d s", caller, seconds)  # an entity name or address
            error = ApiError(
                "RATE_LIMITED",
                f"too many requests: this server allows {self.limiter.rate:g} a second "
                f"(bursts of {self.limiter.burst:g}) per caller; retry in {seconds} s",
                headers={"Retry-After": str(seconds)},
            )
            await error_response(error)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _caller(self, scope: Scope) -> str:
        authorization = next((value for name, value in scope["headers"] if name == b"authorization"), None)
        if authorization:
            header = authorization.decode("latin-1")
            entity = self.known_entity(header)
            if entity is None:
                entity = await run_in_threadpool(self.key_entity, header)
            if entity is not None:
                return f"entity:{entity}"
        return f"address:{address_of(scope)}"
