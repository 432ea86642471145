"""Migration 0007 adds the follow-up columns and takes them away again, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.config import Config
from sqlalchemy import inspect

from alembic import command
from service.config import PROJECT_ROOT
from service.db import make_engine, migrate


def columns(engine: object, table: str) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns(table)}  # type: ignore[arg-type]


def test_0007_adds_the_followup_hash_and_the_reply_and_downgrades_cleanly(database_url: str) -> None:
    engine = make_engine(database_url)
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    try:
        migrate(engine)
        assert "followup_hash" in columns(engine, "questions") and "reply" in columns(engine, "review_items")
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0006")
        assert "followup_hash" not in columns(engine, "questions") and "reply" not in columns(engine, "review_items")
        migrate(engine)
        assert "followup_hash" in columns(engine, "questions")
    finally:
        engine.dispose()
