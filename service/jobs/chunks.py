"""Working on a job chunk by chunk: who this process is as an owner, which owners died on this machine, the lease
heartbeat, and the rows of each claimed chunk read from the job's file."""

from __future__ import annotations

import itertools
import os
import secrets
import socket
import threading

from sqlalchemy.orm import Session, sessionmaker

from service.db import session_scope, utcnow
from service.jobs.models import CHUNK_ROWS
from service.jobs.readers import InputRow, Source
from service.jobs.repository import chunk_owners, release_chunks, renew, renew_chunk
from service.logging import get_logger

log = get_logger("jobs")
PROCESS = f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(3)}"  # this process, as a job owner


def died_here(owner: str) -> bool:
    """True when owner was a process on this machine that is no longer running."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != PROCESS.partition(":")[0] or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # alive, owned by another user
    return False


def free_dead_chunks(session: Session, *, job_pk: int, owner: str, whole: bool) -> None:
    """Release the chunks of processes that died on this machine (no need to wait for their leases); with whole
    (this process holds the job itself, a CLI job) those of every other process, which lost the job."""
    gone = [o for o in chunk_owners(session, job_pk=job_pk) if o != owner and (whole or died_here(o))]
    if gone and release_chunks(session, job_pk=job_pk, owners=gone):
        log.info("jobs.taking_over", job=job_pk, previous=gone)


class ChunkRows:
    """The rows of one chunk after another, reading the file once while the chunks come in order (and again from
    the top when an earlier one comes back, from a process that died)."""

    def __init__(self, source: Source) -> None:
        self._source = source
        self._rows = source.rows()
        self._at = 0  # the index of the row self._rows yields next

    def chunk(self, seq: int) -> list[InputRow]:
        start = seq * CHUNK_ROWS
        if start < self._at:
            self._rows, self._at = self._source.rows(), 0
        rows = list(itertools.islice(self._rows, start - self._at, start - self._at + CHUNK_ROWS))
        self._at = start + CHUNK_ROWS
        return rows


class Heartbeat:
    """Renews the lease of the chunk being classified (and of the job, for a CLI job) every third of it: an LLM
    chunk can outlast a lease. A chunk taken over meanwhile is refused when it is stored (store_chunk)."""

    def __init__(
        self, sessions: sessionmaker[Session], *, job_pk: int, owner: str, lease_s: float, whole: bool
    ) -> None:
        self._sessions, self._job_pk, self._owner, self._lease_s, self._whole = sessions, job_pk, owner, lease_s, whole
        self.chunk: int | None = None  # set by the thread working on the job
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="job-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self._lease_s / 3):
            try:
                self._beat()
            except Exception as exc:  # the database is away for a moment: the next beat tries again
                log.warning("jobs.heartbeat_failed", job=self._job_pk, error=type(exc).__name__)

    def _beat(self) -> None:
        job, owner, lease_s, chunk = self._job_pk, self._owner, self._lease_s, self.chunk
        with session_scope(self._sessions) as session:
            if self._whole:
                renew(session, job_pk=job, owner=owner, now=utcnow(), lease_s=lease_s)
            if chunk is not None:
                renew_chunk(session, job_pk=job, seq=chunk, owner=owner, now=utcnow(), lease_s=lease_s)
