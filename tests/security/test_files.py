"""Hostile survey files: bad characters are cleaned row by row, bombs are refused before reading (issue 15)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from service.bootstrap import build_triage, open_clients
from service.db import session_scope
from service.jobs.engine import TriageClassifier
from service.jobs.results import write_result
from service.jobs.service import JobContext, JobOptions, create_job, run_job
from service.retrieval.ingest import ingest_knowledge
from tests.conftest import KNOWLEDGE, make_settings
from tests.fakes import HashedNgramEmbedder
from tests.jobs.conftest import Bulk
from tests.jobs.helpers import read_output


@pytest.fixture
def fast_bulk(tmp_path: Path, database_url: str) -> Iterator[Bulk]:
    """The offline bulk pipeline with the hashed n-gram embedder, on SQLite and on PostgreSQL."""
    settings = make_settings(tmp_path / "data", database_url=database_url)
    clients = open_clients(settings, embedder=HashedNgramEmbedder())
    with session_scope(clients.sessionmaker) as session:
        ingest_knowledge(session, clients.knowledge.store, knowledge_dir=KNOWLEDGE, max_tokens=400)
    clients.knowledge.refresh()
    try:
        yield Bulk(settings, clients, build_triage(settings, clients))
    finally:
        clients.close()


def run(bulk: Bulk, path: Path) -> tuple[str, list[dict[str, str]]]:
    with session_scope(bulk.clients.sessionmaker) as session:
        job = create_job(session, source="cli", path=path, name=path.name, options=JobOptions())
    context = JobContext(
        bulk.settings, bulk.clients.sessionmaker, TriageClassifier(bulk.triage, bulk.clients.sessionmaker)
    )
    job = run_job(context, job_id=job.public_id)
    out = path.with_name("out.csv")
    write_result(bulk.clients.sessionmaker, job, out)
    header, *body = read_output(out)
    return job.status, [dict(zip(header, row, strict=True)) for row in body]


def test_nul_and_lone_surrogates_in_bulk_rows_are_removed_and_the_row_flagged(fast_bulk: Bulk, tmp_path: Path) -> None:
    lines = [
        '{"id": 1, "department": "営業", "comment": "外注で仕事がなくなるのでは？"}',
        '{"id": 2, "department": "営業\\u0000一課", "comment": "顧客情報が\\u0000漏れないか心配です。"}',
        '{"id": 3, "department": "経理", "comment": "委託料が高すぎて\\ud800元が取れない。"}',
        '{"id": 4, "department": "経理", "comment": "引き継ぎは誰がやるのですか？"}',
    ]
    path = tmp_path / "survey.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    status, rows = run(fast_bulk, path)
    assert status == "done"
    assert [r["error"] for r in rows] == ["", "", "", ""]
    assert all(r["root_cause"] for r in rows)
    assert ["unsafe_characters_removed" in r["flags"] for r in rows] == [False, True, True, False]
