"""Several processes starting at once on one fresh PostgreSQL database all come up (they migrate one at a time)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import inspect

from service.db import make_engine, migrate


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)  # SQLite: one process per database file
def test_processes_starting_together_on_an_empty_database_each_migrate_without_error(database_url: str) -> None:
    start, errors = threading.Barrier(4), []

    def start_up() -> None:
        engine = make_engine(database_url)  # each its own engine and connection, as separate processes would have
        start.wait()
        try:
            migrate(engine)
        except Exception as exc:
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=start_up) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    engine = make_engine(database_url)
    assert {"questions", "review_items", "jobs", "outbox"} <= set(inspect(engine).get_table_names())
    engine.dispose()
