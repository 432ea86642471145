"""The one sliding-window limiter: asks per client (/v1/ask) and LLM requests/tokens per minute (bulk jobs)."""

from __future__ import annotations

from service.ratelimit import SlidingWindowLimiter


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
