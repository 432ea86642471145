"""One process per embedded Chroma store: two processes on one data dir silently diverge, so the second is refused."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path
from typing import IO

from service.errors import NemawashiError

_held: dict[Path, tuple[IO[str], int]] = {}  # lock file → (open handle, how many holders in this process)
_guard = threading.Lock()


class StoreInUse(NemawashiError):
    status_code = 503


class EmbeddedStoreLock:
    """An exclusive lock on the embedded store, held while this process uses it; the OS drops it when the process
    dies (kill -9 included), so a stale lock file never blocks a restart. Re-entrant within one process."""

    def __init__(self, chroma_path: Path) -> None:
        self.path = chroma_path / ".nemawashi.lock"
        self._released = False
        with _guard:
            handle, holders = _held.get(self.path) or (self._acquire(), 0)
            _held[self.path] = (handle, holders + 1)

    def _acquire(self) -> IO[str]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise StoreInUse(
                f"the embedded vector store in {self.path.parent} is in use by {owner}: stop it, or run every "
                "process against one Chroma server (NEMAWASHI_CHROMA_URL) and one database (NEMAWASHI_DATABASE_URL)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()}")
        handle.flush()
        return handle

    def release(self) -> None:
        """Give the lock back (once); the last holder in this process unlocks the file."""
        with _guard:
            if self._released or self.path not in _held:
                return
            self._released = True
            handle, holders = _held[self.path]
            if holders > 1:
                _held[self.path] = (handle, holders - 1)
                return
            del _held[self.path]
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()
