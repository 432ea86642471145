"""Sliding-window rate limits: asks and searches per client, LLM requests and tokens per minute. In memory for one
process; shared by every process through Redis when NEMAWASHI_REDIS_URL is set (the `limits` library's moving
window, so two processes behind one proxy count each client once)."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from limits import RateLimitItemPerSecond
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError

from service.logging import get_logger

log = get_logger("ratelimit")

_MAX_KEYS = 10_000  # past this many tracked keys, idle ones are dropped so memory stays bounded


class Limiter(Protocol):
    """What callers need from a limiter, in memory or shared."""

    limit: int
    window_s: float

    def hit(self, key: str) -> int | None: ...

    def acquire(self, tokens: int = 0, *, key: str = "") -> None: ...


class SlidingWindowLimiter:
    """At most `limit` hits per key, and at most `token_limit` tokens when set, in any `window_s` seconds.

    The clock and the sleep are injectable so tests move time by hand instead of waiting for it.
    """

    def __init__(
        self,
        limit: int,
        *,
        token_limit: int | None = None,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit = limit
        self.token_limit = token_limit
        self.window_s = window_s
        self._clock = clock
        self._sleep = sleep
        self._hits: dict[str, deque[tuple[float, int]]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> int | None:
        """Count one hit for `key`; None when allowed, else the whole seconds to wait before the next one."""
        wait = self._try(key, tokens=0)
        return None if wait is None else max(1, math.ceil(wait))

    def acquire(self, tokens: int = 0, *, key: str = "") -> None:
        """Block until one more hit of `tokens` tokens stays within both budgets, then count it."""
        while (wait := self._try(key, tokens=tokens)) is not None:
            self._sleep(min(max(wait, 0.01), 1.0))

    def _try(self, key: str, *, tokens: int) -> float | None:
        """Count the hit and return None when it fits; otherwise (counting nothing) the seconds until it may."""
        with self._lock:
            now = self._clock()
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0][0] <= now - self.window_s:
                hits.popleft()
            used = sum(spent for _, spent in hits)
            # A single request larger than the whole token budget still goes, alone.
            tokens_fit = self.token_limit is None or used + tokens <= self.token_limit or not hits
            if len(hits) >= self.limit or not tokens_fit:
                return hits[0][0] + self.window_s - now
            hits.append((now, tokens))
            if len(self._hits) > _MAX_KEYS:
                self._forget_idle(now)
            return None

    def _forget_idle(self, now: float) -> None:
        idle = [key for key, hits in self._hits.items() if not hits or hits[-1][0] <= now - self.window_s]
        for key in idle:
            del self._hits[key]


class RedisLimiter:
    """The same limits kept in Redis, so every process counts together. When Redis cannot be reached the limits
    fall back to this process's memory (logged): a limiter outage must not take the service down with it."""

    def __init__(
        self,
        url: str,
        name: str,
        limit: int,
        *,
        token_limit: int | None = None,
        window_s: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit, self.token_limit, self.window_s = limit, token_limit, window_s
        self._name, self._sleep = name, sleep
        self._limiter = MovingWindowRateLimiter(RedisStorage(url, socket_timeout=1, socket_connect_timeout=1))
        seconds = max(1, round(window_s))
        self._requests = RateLimitItemPerSecond(limit, seconds, namespace=f"nemawashi:{name}")
        self._tokens = (
            RateLimitItemPerSecond(token_limit, seconds, namespace=f"nemawashi:{name}:tokens")
            if (token_limit)
            else None
        )
        self._local = SlidingWindowLimiter(limit, token_limit=token_limit, window_s=window_s, sleep=sleep)

    def hit(self, key: str) -> int | None:
        try:
            if self._limiter.hit(self._requests, key or "-"):
                return None
            return max(1, math.ceil(self._reset_in(self._requests, key)))
        except (RedisError, OSError) as exc:  # Redis is down: this process limits on its own meanwhile
            log.warning("ratelimit.redis_unavailable", limiter=self._name, error=type(exc).__name__)
            return self._local.hit(key)

    def acquire(self, tokens: int = 0, *, key: str = "") -> None:
        """Block until one more request of `tokens` tokens fits both shared budgets, then count it."""
        cost = min(tokens, self.token_limit) if self.token_limit else 0  # one request larger than the budget: alone
        try:
            while not self._fits(key, cost):
                self._sleep(min(max(self._reset_in(self._requests, key), 0.05), 1.0))
        except (RedisError, OSError) as exc:
            log.warning("ratelimit.redis_unavailable", limiter=self._name, error=type(exc).__name__)
            self._local.acquire(tokens, key=key)

    def _fits(self, key: str, cost: int) -> bool:
        identifier = key or "-"
        if self._tokens is not None and cost and not self._limiter.test(self._tokens, identifier, cost=cost):
            return False
        if not self._limiter.hit(self._requests, identifier):
            return False
        if self._tokens is not None and cost:
            self._limiter.hit(self._tokens, identifier, cost=cost)
        return True

    def _reset_in(self, item: RateLimitItemPerSecond, key: str) -> float:
        stats = self._limiter.get_window_stats(item, key or "-")
        return max(0.0, stats.reset_time - time.time())


def make_limiter(
    redis_url: str | None, name: str, limit: int, *, token_limit: int | None = None, window_s: float = 60.0
) -> Limiter:
    """Shared through Redis when a URL is configured, else in this process's memory."""
    if redis_url:
        return RedisLimiter(redis_url, name, limit, token_limit=token_limit, window_s=window_s)
    return SlidingWindowLimiter(limit, token_limit=token_limit, window_s=window_s)
