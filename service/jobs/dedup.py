"""Duplicates in a survey: the normalised form comments are compared by, and the results of comments seen before."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import OrderedDict

from sqlalchemy.orm import Session, sessionmaker

from service.db import session_scope
from service.jobs.columns import RowResult
from service.jobs.repository import classified_rows

CACHE_SIZE = 50_000
# A comment's result in the job's rows and the review-queue question it was given, if any.
Cached = tuple[RowResult, int | None]
_SPACE_NEXT_TO_CJK = re.compile(r"(?<=[^\x00-\x7f]) | (?=[^\x00-\x7f])")


def normalise_comment(text: str) -> str:
    """The form duplicates are found by: NFKC (width), case folded, spaces collapsed (dropped beside Japanese)."""
    collapsed = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return _SPACE_NEXT_TO_CJK.sub("", collapsed)


def comment_key(text: str) -> str:
    return hashlib.blake2b(normalise_comment(text).encode(), digest_size=16).hexdigest()


class ResultCache:
    """Results of comments seen before in this job: recent ones in memory, older ones from the job's rows."""

    def __init__(self, sessions: sessionmaker[Session], job_pk: int, size: int = CACHE_SIZE) -> None:
        self._sessions = sessions
        self._job = job_pk
        self._size = size
        self._memory: OrderedDict[str, Cached] = OrderedDict()

    def get_many(self, keys: set[str]) -> dict[str, Cached]:
        found = {key: self._memory[key] for key in keys if key in self._memory}
        for key in found:
            self._memory.move_to_end(key)
        missing = keys - found.keys()
        if missing:
            found.update(self._load(missing))
        return found

    def put_many(self, items: dict[str, Cached]) -> None:
        self._memory.update(items)
        while len(self._memory) > self._size:
            self._memory.popitem(last=False)

    def _load(self, keys: set[str]) -> dict[str, Cached]:
        with session_scope(self._sessions) as session:
            loaded = stored_results(session, job_pk=self._job, text_keys=keys)
        self.put_many(loaded)
        return loaded


def stored_results(session: Session, *, job_pk: int, text_keys: set[str]) -> dict[str, Cached]:
    """The results the job's stored rows carry for these comments (by any process)."""
    if not text_keys:
        return {}
    rows = classified_rows(session, job_pk=job_pk, text_keys=text_keys)
    return {row.text_key: (RowResult.from_row(row), row.question_id) for row in rows if row.text_key}
