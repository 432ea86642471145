"""The clients (database, vector store, embedder, LLM) and the pipeline, built once.

Shared by the app lifespan, the CLI, bulk workers, the eval suite and the benchmarks:
`with clients(settings) as opened: triage = build_triage(settings, opened)`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine, make_url, text
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.db import make_engine, make_sessionmaker, migrate
from service.errors import DatabaseUnavailable
from service.llm.client import make_chat_model
from service.llm.prompts import load_prompts
from service.logging import get_logger
from service.retrieval.approved import ApprovedAnswers
from service.retrieval.embeddings import Embedder, make_embedder
from service.retrieval.lexical import load_synonyms
from service.retrieval.lock import EmbeddedStoreLock
from service.retrieval.service import KnowledgeIndex
from service.retrieval.store import ChunkStore, make_chroma_client
from service.review.service import SqlReviewQueue
from service.triage.answering import build_answering, in_scope_examples
from service.triage.cascade import RootCauseClassifier
from service.triage.classifier import LocalClassifier
from service.triage.service import Triage
from service.triage.taxonomy import load_taxonomy

log = get_logger("bootstrap")


@dataclass
class Clients:
    """Every stateful client the service uses."""

    engine: Engine
    sessionmaker: sessionmaker[Session]
    knowledge: KnowledgeIndex
    store_lock: EmbeddedStoreLock | None = None

    def close(self) -> None:
        self.engine.dispose()
        if self.store_lock:
            self.store_lock.release()


def open_clients(settings: Settings, *, embedder: Embedder | None = None) -> Clients:
    """Migrate the database and connect the vector store and the embedder (the configured one unless handed in);
    the caller closes them."""
    lock = None if settings.chroma_url else EmbeddedStoreLock(settings.chroma_path)
    try:
        engine = open_database(settings)
        store = ChunkStore(make_chroma_client(settings), settings.collection, embedder or make_embedder(settings))
    except BaseException:
        if lock:
            lock.release()
        raise
    synonyms = load_synonyms(settings.knowledge_dir / "synonyms.yaml")
    knowledge = KnowledgeIndex(store, synonyms, max_query_tokens=settings.max_embed_tokens)
    return Clients(engine, make_sessionmaker(engine), knowledge, lock)


def open_database(settings: Settings) -> Engine:
    """The engine, migrated to the newest schema; DatabaseUnavailable naming the setting and the cause."""
    try:
        engine = make_engine(settings.sqlalchemy_url)
        migrate(engine)
    except (SQLAlchemyError, OSError) as exc:
        cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:300]
        raise DatabaseUnavailable(
            f"cannot open the database {_shown_url(settings.sqlalchemy_url)} (NEMAWASHI_DATABASE_URL): {cause}"
        ) from exc
    return engine


def _shown_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(not a database URL)"


def unavailable(opened: Clients) -> list[str]:
    """What a ready instance needs and cannot reach right now: the database and the vector store."""
    problems = []
    try:
        with opened.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        problems.append(f"database: {type(getattr(exc, 'orig', None) or exc).__name__}")
    try:
        opened.knowledge.store.client.heartbeat()
    except Exception as exc:  # whatever the client raises, the store is not answering
        problems.append(f"vector store: {type(exc).__name__}")
    return problems


@contextmanager
def clients(settings: Settings) -> Iterator[Clients]:
    """open_clients as a context manager: `with clients(settings) as opened: ...` closes them on the way out."""
    opened = open_clients(settings)
    try:
        yield opened
    finally:
        opened.close()


def build_triage(settings: Settings, opened: Clients) -> Triage:
    """The pipeline's parts: taxonomy, local classifier (trained here), prompts, LLM, approved answers."""
    store = opened.knowledge.store
    taxonomy = load_taxonomy(settings.taxonomy_file)
    prompts = load_prompts(settings.prompts_dir)
    llm = make_chat_model(settings)
    local = LocalClassifier(
        store.embedder, taxonomy, synonyms=opened.knowledge.synonyms, cache_dir=settings.data_dir / "cache"
    )
    classifier = RootCauseClassifier(
        local=local,
        taxonomy=taxonomy,
        mode=settings.classifier_mode,
        threshold=settings.cascade_threshold,
        llm=llm,
        prompt=prompts["classify"],
        rationale_max_chars=settings.rationale_max_chars,
    )
    approved = ApprovedAnswers(
        ChunkStore(store.client, settings.approved_collection_name, store.embedder),
        expand=opened.knowledge.synonyms.expand,
    )
    if refreshed := approved.refresh():
        log.info("approved.refreshed", answers=refreshed)
    faq, scope = build_answering(
        settings, opened.knowledge, in_scope=in_scope_examples(taxonomy), sessions=opened.sessionmaker
    )
    return Triage(
        settings,
        opened.knowledge,
        approved,
        classifier,
        llm,
        prompts["draft"],
        SqlReviewQueue(settings),
        faq,
        scope,
        prompts.get("rewrite"),
    )


def warm_start_cache(settings: Settings, opened: Clients) -> None:
    """Embed what a start embeds (the classifier's examples, the FAQ's questions, the off-topic bank) into the data
    dir's cache, as build_triage would: run after `nemawashi ingest`, so the first `classify` or `serve` after it
    starts warm instead of embedding about a thousand texts first."""
    taxonomy = load_taxonomy(settings.taxonomy_file)
    LocalClassifier(
        opened.knowledge.store.embedder,
        taxonomy,
        synonyms=opened.knowledge.synonyms,
        cache_dir=settings.data_dir / "cache",
    )
    build_answering(settings, opened.knowledge, in_scope=in_scope_examples(taxonomy))
