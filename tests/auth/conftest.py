"""Fixtures for auth tests: the real app per test (SQLite and PostgreSQL), or a migrated database of the test's own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.db import make_engine, make_sessionmaker, migrate
from tests.review.helpers import ReviewApp, review_app


@pytest.fixture
def review(indexed_settings: Settings, database_url: str) -> Iterator[ReviewApp]:
    with review_app(indexed_settings, database_url) as running:
        yield running


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    """A migrated, empty database of the test's own."""
    engine = make_engine(database_url)
    migrate(engine)
    yield make_sessionmaker(engine)
    engine.dispose()
