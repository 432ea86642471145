from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.config import Config
from sqlalchemy import text

from alembic import command
from service.bootstrap import Clients, open_clients
from service.config import PROJECT_ROOT
from service.db import make_engine, migrate, session_scope
from service.errors import BadInput, NotReady
from service.retrieval import ingest as ingest_module
from service.retrieval import repository
from service.retrieval.ingest import ingest_knowledge
from service.retrieval.models import KNOWLEDGE
from service.retrieval.schemas import IngestReport
from service.retrieval.service import Page, put_page, remove_page, search_passages
from service.retrieval.store import ChunkStore
from tests.conftest import make_settings
from tests.fakes import HashedNgramEmbedder
from tests.retrieval.helpers import write_doc


class CountingEmbedder:
    """An embedder, counting (and keeping) the passages it is asked to embed."""

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.passages, self.calls = inner, 0, 0
        self.name, self.dim = inner.name, inner.dim
        self.texts: list[str] = []

    def embed_passages(self, texts):  # type: ignore[no-untyped-def]
        self.passages += len(texts)
        self.texts.extend(texts)
        self.calls += 1
        return self.inner.embed_passages(texts)

    def embed_query(self, text):  # type: ignore[no-untyped-def]
        return self.inner.embed_query(text)


@pytest.fixture
def knowledge(tmp_path: Path) -> Path:
    folder = tmp_path / "knowledge"
    write_doc(
        folder, "faq-pay-ja", "## Q: 給料は下がりますか？\n基本給は2年間維持されます。", title="給料は下がりますか？"
    )
    write_doc(
        folder,
        "faq-data-ja",
        "## Q: 顧客データは安全ですか？\n委託先はVDIからのみCRMにアクセスします。",
        title="顧客データは安全ですか？",
        root_causes="[security]",
    )
    write_doc(
        folder,
        "faq-pay-en",
        "## Q: Will my salary go down?\nBase pay is kept for two years.",
        lang="en",
        title="Will my salary go down?",
    )
    return folder


@pytest.fixture
def clients(tmp_path: Path, database_url: str, fake_embedder: HashedNgramEmbedder) -> Iterator[Clients]:
    settings = make_settings(tmp_path / "data", database_url=database_url)
    opened = open_clients(settings, embedder=CountingEmbedder(fake_embedder))  # type: ignore[arg-type]
    yield opened
    opened.close()


def ingest(clients: Clients, folder: Path, **kwargs: object) -> IngestReport:
    with session_scope(clients.sessionmaker) as session:
        return ingest_knowledge(session, clients.knowledge.store, knowledge_dir=folder, max_tokens=400, **kwargs)  # type: ignore[arg-type]


def embedded(clients: Clients) -> int:
    return clients.knowledge.store.embedder.passages  # type: ignore[attr-defined, no-any-return]


def test_reingest_embeds_only_the_changed_document_and_removes_the_deleted_one(
    clients: Clients, knowledge: Path
) -> None:
    first = ingest(clients, knowledge)
    assert (first.documents, len(first.added), embedded(clients)) == (3, 3, 3)

    write_doc(
        knowledge,
        "faq-pay-ja",
        "## Q: 給料は下がりますか？\n基本給は少なくとも2年間維持されます。",
        title="給料は下がりますか？",
    )
    (knowledge / "faq-pay-en.md").unlink()
    second = ingest(clients, knowledge)

    assert (second.updated, second.removed, second.unchanged) == (["faq-pay-ja"], ["faq-pay-en"], 1)
    assert embedded(clients) == 4  # one more passage, not three
    clients.knowledge.refresh()
    assert {c.meta["doc_id"] for c in clients.knowledge.chunks.values()} == {"faq-pay-ja", "faq-data-ja"}
    with session_scope(clients.sessionmaker) as session:
        assert [d.doc_id for d in repository.list_documents(session)] == ["faq-data-ja", "faq-pay-ja"]
        assert "少なくとも" in repository.get_document(session, "faq-pay-ja").body  # type: ignore[union-attr]


def test_an_unchanged_folder_embeds_nothing(clients: Clients, knowledge: Path) -> None:
    ingest(clients, knowledge)
    again = ingest(clients, knowledge)
    assert (again.unchanged, again.added, again.updated, embedded(clients)) == (3, [], [], 3)


def test_a_new_chunker_version_re_embeds_every_document_instead_of_serving_old_chunks(
    clients: Clients, knowledge: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(clients, knowledge)
    monkeypatch.setattr(ingest_module, "CHUNKER_VERSION", f"{ingest_module.CHUNKER_VERSION}-next")
    again = ingest(clients, knowledge)
    assert (again.updated, again.unchanged, embedded(clients)) == (["faq-data-ja", "faq-pay-en", "faq-pay-ja"], 0, 6)
    assert ingest(clients, knowledge).unchanged == 3  # and once re-indexed, it stays so


def test_every_chunk_is_embedded_with_the_document_title_and_the_headings_above_it(
    clients: Clients, tmp_path: Path
) -> None:
    folder = tmp_path / "plan"
    body = (
        "## 委託する業務\n" + "委託の範囲は段階的に広げます。" * 40 + "\n### 対象顧客\n中小企業の新規開拓を委託します。"
    )
    write_doc(folder, "plan-scope-ja", body, doc_type="plan", title="BRIDGE導入計画")
    ingest(clients, folder)
    seen = clients.knowledge.store.embedder.texts  # type: ignore[attr-defined]
    *parent, child = seen
    assert parent and all(p.startswith("BRIDGE導入計画\n## 委託する業務\n委託の範囲") for p in parent)  # heading once
    assert child == "BRIDGE導入計画\n委託する業務\n### 対象顧客\n中小企業の新規開拓を委託します。"


def test_a_file_broken_by_an_edit_is_reported_and_its_last_good_version_stays_searchable(
    clients: Clients, knowledge: Path
) -> None:
    ingest(clients, knowledge)
    (knowledge / "faq-data-ja.md").write_text("---\nid: [oops\n---\n壊れた。", encoding="utf-8")
    report = ingest(clients, knowledge)
    assert [s.path for s in report.skipped] == ["faq-data-ja.md"]
    assert report.removed == []
    hits = search_passages(clients.knowledge, query="顧客データは安全？", k=1)
    assert hits[0].doc_id == "faq-data-ja"


def test_rebuild_embeds_everything_again(clients: Clients, knowledge: Path) -> None:
    ingest(clients, knowledge)
    report = ingest(clients, knowledge, rebuild=True)
    assert (len(report.added), embedded(clients)) == (3, 6)


def test_searching_an_index_built_by_another_embedder_says_to_rebuild(clients: Clients, knowledge: Path) -> None:
    ingest(clients, knowledge)
    other = CountingEmbedder(clients.knowledge.store.embedder)
    other.name = "openai/text-embedding-3-small"
    clients.knowledge.store = ChunkStore(clients.knowledge.store.client, "knowledge", other)
    with pytest.raises(NotReady, match=r"nemawashi ingest --rebuild"):
        search_passages(clients.knowledge, query="給料", k=1)


def faq_page(doc_id: str, *, origin: str = "review") -> Page:
    return Page(
        doc_id=doc_id,
        origin=origin,
        title="賞与は減りますか？",
        type="faq",
        lang="ja",
        root_causes=["job_fear"],
        updated=None,
        body="## Q: 賞与は減りますか？\n\n減りません。\n",
        path=f"somewhere/{doc_id}.md",  # not the old `review:` marker: the origin column alone protects it
    )


def doc_ids(clients: Clients) -> set[str]:
    with session_scope(clients.sessionmaker) as session:
        return {doc.doc_id for doc in repository.list_documents(session)}


def test_ingest_removes_only_its_own_documents_never_pages_put_by_other_domains(
    clients: Clients, knowledge: Path
) -> None:
    ingest(clients, knowledge)
    with session_scope(clients.sessionmaker) as session:
        put_page(session, faq_page("approved-7"))
    (knowledge / "faq-pay-en.md").unlink()
    ingest(clients, knowledge)
    assert doc_ids(clients) == {"faq-pay-ja", "faq-data-ja", "approved-7"}
    with session_scope(clients.sessionmaker) as session:
        remove_page(session, doc_id="approved-7")
    assert doc_ids(clients) == {"faq-pay-ja", "faq-data-ja"}


def test_a_page_cannot_pretend_to_come_from_the_knowledge_folder(clients: Clients) -> None:
    with session_scope(clients.sessionmaker) as session, pytest.raises(BadInput):
        put_page(session, faq_page("approved-8", origin=KNOWLEDGE))
    assert "approved-8" not in doc_ids(clients)


def test_the_migration_marks_approved_answer_pages_of_older_databases_as_review_pages(database_url: str) -> None:
    engine = make_engine(database_url)
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0004")
            for doc_id, path in (("approved-3", "review:items/3"), ("faq-pay-ja", "faq/faq-pay-ja.md")):
                connection.execute(
                    text(
                        "INSERT INTO kb_documents (doc_id, title, type, lang, root_causes, path, content_hash, body,"
                        " chunks, indexed_at) VALUES (:id, 't', 'faq', 'ja', '[]', :path, 'h', 'b', 0, :at)"
                    ),
                    {"id": doc_id, "path": path, "at": datetime.now(UTC)},
                )
        migrate(engine)
        with engine.connect() as connection:
            origins = dict(connection.execute(text("SELECT doc_id, origin FROM kb_documents")).tuples().all())
        assert origins == {"approved-3": "review", "faq-pay-ja": KNOWLEDGE}
    finally:
        engine.dispose()


def test_chunks_of_many_documents_are_embedded_in_one_call_per_batch(clients: Clients, tmp_path: Path) -> None:
    folder = tmp_path / "many"
    for i in range(150):
        write_doc(folder, f"faq-{i:03d}-ja", f"## Q: 質問{i}ですか？\n答え{i}です。")
    report = ingest(clients, folder)
    embedder = clients.knowledge.store.embedder
    assert report.documents == 150 and report.chunks == 150
    assert (embedder.passages, embedder.calls) == (150, 3)  # type: ignore[attr-defined]  # 64 + 64 + 22
    clients.knowledge.refresh()
    [hit] = search_passages(clients.knowledge, query="質問77ですか", k=1, method="lexical")
    assert hit.doc_id == "faq-077-ja" and hit.text.endswith("答え77です。")
