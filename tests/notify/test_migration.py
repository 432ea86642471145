"""Migration 0008 adds the outbox and the asker's e-mail columns and takes them away again, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.config import Config
from sqlalchemy import inspect

from alembic import command
from service.config import PROJECT_ROOT
from service.db import make_engine, migrate
from tests.followups.test_migration import columns


def test_0008_adds_the_outbox_and_the_asker_email_and_downgrades_cleanly(database_url: str) -> None:
    engine = make_engine(database_url)
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    try:
        migrate(engine)
        assert {"idempotency_key", "status", "next_attempt_at"} <= columns(engine, "outbox")
        assert {"asker_email", "followup_sealed"} <= columns(engine, "questions")
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0007")
        assert "outbox" not in inspect(engine).get_table_names()
        assert "asker_email" not in columns(engine, "questions")
        migrate(engine)
        assert "outbox" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
