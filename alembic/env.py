"""Alembic environment: uses the connection handed in by service.db.migrate, or the configured URL."""

import service.auth.models
import service.jobs.models
import service.notify.models
import service.retrieval.models
import service.review.models
import service.triage.models  # noqa: F401
from alembic import context
from service.config import get_settings
from service.db import Base, make_engine

target_metadata = Base.metadata


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(get_settings().sqlalchemy_url)
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run_migrations()
