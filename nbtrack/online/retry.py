"""When to try a request to the tracking server again, and how long to wait before it.

A `RetryPolicy` is a plain value: exponential backoff with full jitter, capped, which honours a
server's `Retry-After`. `Transient` marks what is worth retrying (connection errors, timeouts,
429 and 5xx); anything else a server refuses is a `Rejected` error the user must hear about, but
`TooLarge` (413), which a smaller request can get past.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from nbtrack.errors import NbtrackError

__all__ = ["Rejected", "RetryPolicy", "TooLarge", "Transient", "is_transient_status", "parse_retry_after"]


class Transient(NbtrackError):
    """The server could not be reached or was overloaded; the same request may succeed later."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Rejected(NbtrackError):
    """The server refused the request (bad key, bad input, unknown run): retrying cannot help."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TooLarge(Rejected):
    """The server refused a body of `sent` bytes as too large (413); `limit`: its limit, if it said."""

    def __init__(self, message: str, sent: int, limit: int | None = None) -> None:
        super().__init__(message, 413)
        self.sent = sent
        self.limit = limit


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff for attempt n (1-based): uniform in [base*factor**(n-1) * (1-jitter), that], capped."""

    base: float = 0.5
    factor: float = 2.0
    cap: float = 8.0  # a server back from an outage is found again within seconds
    jitter: float = 0.5  # fraction of each delay that is random, so clients do not retry in lockstep
    retry_after_cap: float = 60.0  # longest Retry-After honoured (a server may ask for hours)

    def delay(
        self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait before attempt + 1, after `attempt` failures; Retry-After wins when given."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_cap)
        ceiling = min(self.cap, self.base * self.factor ** max(attempt - 1, 0))
        draw = (rng or random).random()
        return ceiling * (1.0 - self.jitter * draw)


def is_transient_status(status: int) -> bool:
    return status == 429 or status >= 500


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (HTTP allows delta-seconds or a date; dates are rare from APIs)."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        import time

        return max(when.timestamp() - time.time(), 0.0)
