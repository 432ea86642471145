"""One sliding-window rate limiter, in memory (one process): asks per client, LLM requests and tokens per minute."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

_MAX_KEYS = 10_000  # past this many tracked keys, idle ones are dropped so memory stays bounded


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
