"""Fixtures for jobs tests: the triage pipeline on the session's indexed knowledge base and a database of its own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from service.bootstrap import Clients, build_triage, open_clients
from service.config import Settings
from service.db import session_scope
from service.jobs.engine import TriageClassifier
from service.jobs.models import Job
from service.jobs.results import write_result
from service.jobs.service import JobContext, JobOptions, create_job, get_job, run_job
from service.triage.service import Triage
from tests.conftest import make_settings


@dataclass
class Bulk:
    """A pipeline plus helpers to run a file through it as a job."""

    settings: Settings
    clients: Clients
    triage: Triage

    def context(self, *, suggest: bool = False) -> JobContext:
        classifier = TriageClassifier(self.triage, self.clients.sessionmaker, suggest=suggest)
        return JobContext(self.settings, self.clients.sessionmaker, classifier)

    def create(self, path: Path, **options: object) -> Job:
        with session_scope(self.clients.sessionmaker) as session:
            return create_job(session, source="cli", path=path, name=path.name, options=JobOptions(**options))  # type: ignore[arg-type]

    def job(self, job_id: str) -> Job:
        with session_scope(self.clients.sessionmaker) as session:
            return get_job(session, job_id=job_id)

    def classify(self, path: Path, out: Path | None = None, **options: object) -> tuple[Job, Path]:
        """Create and run a job, then write its result CSV."""
        job = run_job(self.context(suggest=bool(options.get("suggest"))), job_id=self.create(path, **options).public_id)
        out = out or path.with_name("out.csv")
        write_result(self.clients.sessionmaker, job, out)
        return job, out


@pytest.fixture
def make_bulk(indexed_settings: Settings, tmp_path: Path) -> Iterator[Callable[..., Bulk]]:
    """Build a pipeline with settings overrides (default: SQLite in tmp_path, offline)."""
    opened: list[Clients] = []

    def build(**overrides: object) -> Bulk:
        values: dict[str, object] = {
            "database_url": f"sqlite:///{tmp_path / 'jobs.db'}",
            "llm_timeout_s": 5.0,
            "llm_max_retries": 0,
        }
        values.update(overrides)
        settings = make_settings(indexed_settings.data_dir, **values)
        clients = open_clients(settings)
        opened.append(clients)
        return Bulk(settings, clients, build_triage(settings, clients))

    yield build
    for clients in opened:
        clients.close()


@pytest.fixture
def bulk(make_bulk: Callable[..., Bulk], database_url: str) -> Bulk:
    """The offline pipeline on SQLite and on PostgreSQL."""
    return make_bulk(database_url=database_url)


@pytest.fixture
def llm_bulk(make_bulk: Callable[..., Bulk], mock_llm: str) -> Bulk:
    """The pipeline in llm mode against the mock LLM, 5 comments per request."""
    return make_bulk(openai_base_url=mock_llm, llm_model="mock-llm", classifier="llm", llm_batch_size=5)
