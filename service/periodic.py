"""A task run on a daemon thread at start and then every interval (reconciling stores, picking up new versions)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from service.logging import get_logger

log = get_logger("periodic")


class Periodic:
    """Runs task once at start and then every interval_s seconds (0: only at start) until stopped. A failing round
    is logged and the next one tries again: these tasks catch up with a database or a store that was away."""

    def __init__(self, name: str, task: Callable[[], object], *, interval_s: float) -> None:
        self._name, self._task, self._interval = name, task, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> Periodic:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._task()
            except Exception as exc:  # the database or the store is down: try again next round
                log.warning("periodic.failed", task=self._name, error=f"{type(exc).__name__}: {exc}")
            if self._interval <= 0 or self._stop.wait(self._interval):
                return
