"""The LLM budget of bulk jobs: requests per minute and tokens per minute, over a sliding window.

Batching comments into requests is the classifier's (service/triage/cascade.py); a job hands it this limiter.
"""

from __future__ import annotations

import threading
import time
from collections import deque


class RateLimiter:
    """A sliding 60-second window over requests and tokens; acquire() waits until a request fits in both."""

    def __init__(self, *, requests_per_minute: int, tokens_per_minute: int, window_s: float = 60.0) -> None:
        self._rpm = requests_per_minute
        self._tpm = tokens_per_minute
        self._window = window_s
        self._sent: deque[tuple[float, int]] = deque()
        self._lock = threading.Lock()

    def acquire(self, tokens: int) -> None:
        """Block until one more request of `tokens` tokens stays within both budgets, then count it."""
        while True:
            with self._lock:
                now = time.monotonic()
                while self._sent and now - self._sent[0][0] >= self._window:
                    self._sent.popleft()
                used = sum(t for _, t in self._sent)
                # A single request larger than the whole token budget still goes, alone.
                if len(self._sent) < self._rpm and (used + tokens <= self._tpm or not self._sent):
                    self._sent.append((now, tokens))
                    return
                wait = self._window - (now - self._sent[0][0])
            time.sleep(min(max(wait, 0.01), 1.0))
