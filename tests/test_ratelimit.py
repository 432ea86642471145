"""Sliding-window limits: asks per client (/v1/ask) and LLM requests/tokens per minute (bulk jobs), in memory and
shared by several processes through Redis."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.ratelimit import RedisLimiter, SlidingWindowLimiter, make_limiter
from tests.conftest import free_port


class FakeClock:
    """Time that moves only when told to: by hand, or by the limiter's own sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


def test_the_limiter_allows_the_limit_then_says_how_long_until_the_oldest_hit_expires() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(2, clock=clock)
    assert limiter.hit("a") is None
    clock.now += 20
    assert limiter.hit("a") is None
    clock.now += 10.5
    assert limiter.hit("a") == 30  # the first hit leaves the window 29.5 s from now: rounded up
    clock.now += 29.5
    assert limiter.hit("a") is None


def test_the_limiter_counts_each_client_separately() -> None:
    limiter = SlidingWindowLimiter(1, clock=FakeClock())
    assert limiter.hit("10.0.0.1") is None
    assert limiter.hit("10.0.0.2") is None
    assert limiter.hit("10.0.0.1") is not None


def test_the_limiter_does_not_count_refused_questions_against_the_window() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(1, clock=clock)
    assert limiter.hit("a") is None
    for _ in range(5):  # a client that keeps retrying does not push its own wait further out
        clock.now += 10
        assert limiter.hit("a") is not None
    clock.now += 10.1
    assert limiter.hit("a") is None


def test_acquire_holds_a_request_that_would_exceed_the_requests_per_minute_until_the_window_moves() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(2, token_limit=1_000_000, clock=clock, sleep=clock.sleep)
    limiter.acquire(10)
    limiter.acquire(10)
    assert clock.slept == 0
    limiter.acquire(10)
    assert clock.slept >= 60


def test_acquire_holds_a_request_that_would_exceed_the_tokens_per_minute() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(100, token_limit=1000, clock=clock, sleep=clock.sleep)
    limiter.acquire(900)
    clock.now += 30
    limiter.acquire(900)
    assert 30 <= clock.slept <= 31  # until the first request leaves the window, 30 s after the second was sent


def test_a_request_larger_than_the_whole_token_budget_still_goes_alone() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(100, token_limit=1000, clock=clock, sleep=clock.sleep)
    limiter.acquire(5000)
    assert clock.slept == 0
    limiter.acquire(1)
    assert clock.slept >= 60


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A private Redis server on a free loopback port (Debian's redis-server), stopped after the test."""
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            break
        time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    server.terminate()
    server.wait(10)


def test_two_processes_sharing_redis_count_each_client_once(redis_url: str) -> None:
    first, second = (make_limiter(redis_url, "ask", 3) for _ in range(2))  # as two serve processes build them
    assert first.hit("10.0.0.5") is None and second.hit("10.0.0.5") is None and first.hit("10.0.0.5") is None
    wait = second.hit("10.0.0.5")  # the fourth in a minute, whichever process it reaches
    assert wait is not None and 1 <= wait <= 60
    assert first.hit("10.0.0.6") is None  # another client has its own count


class Waited(Exception):
    """Raised by a limiter's sleep: the request would have had to wait."""


def refuse(seconds: float) -> None:
    raise Waited(seconds)


def test_the_llm_budget_is_shared_and_a_limiter_outage_falls_back_to_counting_locally(redis_url: str) -> None:
    first, second = (RedisLimiter(redis_url, "llm", 5, token_limit=1000, sleep=refuse) for _ in range(2))
    first.acquire(600)
    second.acquire(300)  # 900 tokens spent across both processes
    with pytest.raises(Waited):
        second.acquire(200)  # would pass 1,000 tokens a minute: it waits, whichever process asks
    first.acquire(100)
    down = make_limiter(f"redis://127.0.0.1:{free_port()}/0", "ask", 1)  # nothing listens there
    assert down.hit("a") is None and down.hit("a") is not None  # still limited, in this process's memory
