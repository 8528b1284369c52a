"""The retry policy is a plain value: bounded, jittered, capped, and it obeys Retry-After."""

from __future__ import annotations

import random
import threading
import time

import pytest

from nbtrack.online.client import ServerClient
from nbtrack.online.retry import Rejected, RetryPolicy, Transient, is_transient_status, parse_retry_after


def test_delays_grow_exponentially_within_the_jitter_band_and_stop_at_the_cap() -> None:
    policy = RetryPolicy(base=0.5, factor=2.0, cap=4.0, jitter=0.5)
    rng = random.Random(7)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 4.0), (30, 4.0)]:
        delays = [policy.delay(attempt, rng=rng) for _ in range(200)]
        assert all(ceiling * 0.5 <= d <= ceiling for d in delays), (attempt, min(delays), max(delays))
        assert max(delays) - min(delays) > ceiling * 0.3  # really jittered, not a constant


def test_retry_after_wins_and_is_capped() -> None:
    policy = RetryPolicy(retry_after_cap=30.0)
    assert policy.delay(1, retry_after=3.0) == 3.0
    assert policy.delay(9, retry_after=0.0) == 0.0
    assert policy.delay(1, retry_after=86_400.0) == 30.0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("2", 2.0), ("0.5", 0.5), ("-3", 0.0), ("", None), (None, None), ("soon", None)],
)
def test_retry_after_header_values(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


def test_retry_after_as_an_http_date() -> None:
    from email.utils import formatdate

    assert 8.0 <= (parse_retry_after(formatdate(time.time() + 10, usegmt=True)) or 0) <= 10.5


@pytest.mark.parametrize(
    ("status", "transient"), [(429, True), (500, True), (503, True), (400, False), (404, False)]
)
def test_which_statuses_are_worth_retrying(status: int, transient: bool) -> None:
    assert is_transient_status(status) is transient


def test_retrying_retries_transient_errors_and_passes_rejections_through() -> None:
    client = ServerClient("http://127.0.0.1:9", policy=RetryPolicy(base=0.01, cap=0.02))
    calls: list[int] = []
    retries: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise Transient("not yet")
        return "ok"

    stop = threading.Event()
    assert client.retrying(flaky, stop=stop, on_retry=lambda exc, n, wait: retries.append(n)) == "ok"
    assert retries == [1, 2, 3]

    def refused() -> None:
        calls.append(1)
        raise Rejected("no")

    calls.clear()
    with pytest.raises(Rejected):
        client.retrying(refused, stop=stop)
    assert len(calls) == 1


def test_retrying_gives_up_at_the_deadline_and_when_stopped() -> None:
    client = ServerClient("http://127.0.0.1:9", policy=RetryPolicy(base=0.05, cap=0.05))

    def down() -> None:
        raise Transient("down")

    started = time.monotonic()
    with pytest.raises(Transient):
        client.retrying(down, stop=threading.Event(), deadline=time.monotonic() + 0.3)
    assert time.monotonic() - started < 1.0
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    with pytest.raises(Transient):
        client.retrying(down, stop=stop)
