"""SQLAlchemy engine, sessions and migrations: SQLite file by default, PostgreSQL by URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from alembic.config import Config
from pydantic import AfterValidator
from sqlalchemy import DateTime, Dialect, Engine, String, create_engine, event, text
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from alembic import command
from service.config import PROJECT_ROOT


class Base(DeclarativeBase):
    """Base class of every table."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """The moment in UTC; a naive value is UTC already (as SQLite hands it back)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# What every API schema uses for a moment: always sent with its offset (+00:00), whichever database stored it.
UTCTime = Annotated[datetime, AfterValidator(as_utc)]


class StrEnumType(TypeDecorator[StrEnum]):
    """A StrEnum stored as its string value: a misspelt state fails when written, not as a silently empty query."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[StrEnum], length: int = 16) -> None:
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> StrEnum | None:
        return None if value is None else self.enum(value)


class UTCDateTime(TypeDecorator[datetime]):
    """A moment stored in UTC and read back aware: SQLite keeps no zone, PostgreSQL does; both hand back UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is None:
            return value  # naive values are UTC already (as SQLite hands them back)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


def make_engine(url: str) -> Engine:
    """An engine; SQLite gets a parent folder, foreign keys and a busy timeout."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine
    # A bounded connect, so a database that is down answers /readyz and requests within seconds.
    connect_args = {"connect_timeout": 5} if url.startswith("postgresql") else {}
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


MIGRATION_LOCK = 0x6E656D61  # "nema": the advisory lock key migrations take on PostgreSQL


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision.

    Several processes starting at once on one PostgreSQL database would each create the same tables: a
    transaction-level advisory lock lets one migrate while the others wait, then find it done."""
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits once on success and rolls back on error (CLI and background work)."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
