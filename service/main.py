"""App factory; the lifespan owns every client (database, vector store, embedder)."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlparse

from fastapi import FastAPI
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from service import __version__
from service.config import Settings, get_settings
from service.db import make_engine, make_sessionmaker, migrate, session_scope
from service.errors import NemawashiError, install_error_handlers
from service.jobs import routes as jobs_routes
from service.llm.client import make_chat_model
from service.llm.prompts import load_prompts
from service.logging import configure_logging, get_logger
from service.reports import routes as reports_routes
from service.retrieval import routes as retrieval_routes
from service.retrieval.approved import ApprovedAnswers
from service.retrieval.embeddings import make_embedder
from service.retrieval.ingest import ingest_knowledge
from service.retrieval.lexical import load_synonyms
from service.retrieval.service import KnowledgeIndex
from service.retrieval.store import ChunkStore, make_chroma_client
from service.review import routes as review_routes
from service.review.auth import SignInRequired, active_names
from service.review.decisions import retrain_classifier
from service.review.pages import sign_in_form
from service.triage import routes as triage_routes
from service.triage.answering import build_answering
from service.triage.classifier import LocalClassifier, RootCauseClassifier
from service.triage.service import Triage
from service.triage.taxonomy import load_taxonomy
from service.web import routes as web_routes
from service.web.security import install_web_security

log = get_logger("main")


@dataclass
class Readiness:
    """Whether the index is loaded; the reason when it is not."""

    ready: bool = False
    reason: str = "loading the knowledge index"


@dataclass
class Clients:
    """Every stateful client the service uses; the API lifespan and the CLI both open them here."""

    engine: Engine
    sessionmaker: sessionmaker[Session]
    knowledge: KnowledgeIndex

    def close(self) -> None:
        self.engine.dispose()


def _is_loopback(url: str | None) -> bool:
    host = urlparse(url or "").hostname or ""
    return host == "localhost" or host == "::1" or host.startswith("127.")


def build_triage(settings: Settings, clients: Clients) -> Triage:
    """The pipeline's parts: taxonomy, local classifier (trained here), prompts, LLM, approved answers."""
    store = clients.knowledge.store
    taxonomy = load_taxonomy(settings.taxonomy_file)
    prompts = load_prompts(settings.prompts_dir)
    llm = make_chat_model(settings)
    local = LocalClassifier(
        store.embedder, taxonomy, synonyms=clients.knowledge.synonyms, cache_dir=settings.data_dir / "cache"
    )
    classifier = RootCauseClassifier(
        local=local,
        taxonomy=taxonomy,
        mode=settings.classifier_mode,
        threshold=settings.cascade_threshold,
        llm=llm,
        prompt=prompts["classify"],
    )
    approved_name = settings.approved_collection or f"{settings.collection}-approved"
    approved = ApprovedAnswers(
        ChunkStore(store.client, approved_name, store.embedder), expand=clients.knowledge.synonyms.expand
    )
    if refreshed := approved.refresh():
        log.info("approved.refreshed", answers=refreshed)
    faq, scope = build_answering(
        settings, clients.knowledge, in_scope=[t for t, label in taxonomy.examples() if label != "other"]
    )
    redact_for_llm = settings.redact_pii == "always" or (
        settings.redact_pii == "auto" and not _is_loopback(settings.openai_base_url)
    )
    return Triage(
        settings,
        clients.knowledge,
        approved,
        classifier,
        llm,
        prompts["draft"],
        redact_for_llm,
        faq,
        scope,
        prompts.get("rewrite"),
    )


def open_clients(settings: Settings) -> Clients:
    """Migrate the database and connect the vector store and embedder."""
    engine = make_engine(settings.sqlalchemy_url)
    migrate(engine)
    store = ChunkStore(make_chroma_client(settings), settings.collection, make_embedder(settings))
    synonyms = load_synonyms(settings.knowledge_dir / "synonyms.yaml")
    return Clients(engine, make_sessionmaker(engine), KnowledgeIndex(store, synonyms))


def _prepare_index(app: FastAPI, settings: Settings) -> None:
    """Index knowledge/ on first start, then load BM25; runs beside the server so /healthz answers at once."""
    knowledge: KnowledgeIndex = app.state.knowledge
    readiness: Readiness = app.state.readiness
    try:
        if not knowledge.store.exists():
            log.info("index.first_start", knowledge_dir=str(settings.knowledge_dir))
            with session_scope(app.state.sessionmaker) as session:
                ingest_knowledge(
                    session, knowledge.store, knowledge_dir=settings.knowledge_dir, max_tokens=settings.chunk_max_tokens
                )
        knowledge.refresh()
        triage = build_triage(settings, app.state.clients)
        retrain_classifier(app.state.sessionmaker, classifier=triage.classifier.local)  # relabels survive restarts
        app.state.triage = triage
        readiness.ready, readiness.reason = True, ""
        log.info("index.ready", chunks=len(knowledge.chunks))
        with session_scope(app.state.sessionmaker) as session:
            if not active_names(session):
                log.info("review.no_reviewers", hint="`nemawashi users add NAME --role admin` prints a /review token")
    except NemawashiError as exc:
        readiness.reason = exc.message
        log.error("index.not_ready", reason=exc.message)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    clients = open_clients(settings)
    app.state.clients = clients
    app.state.triage = None
    app.state.sessionmaker = clients.sessionmaker
    app.state.knowledge = clients.knowledge
    app.state.readiness = Readiness()
    loader = threading.Thread(target=_prepare_index, args=(app, settings), name="index-loader", daemon=True)
    loader.start()
    try:
        yield
    finally:
        loader.join(timeout=60)
        clients.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    """The ASGI app; settings default to the environment."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    app = FastAPI(title="nemawashi", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    install_error_handlers(app)
    app.add_exception_handler(SignInRequired, sign_in_form)
    install_web_security(app, settings)
    app.include_router(retrieval_routes.router)
    app.include_router(triage_routes.router)
    app.include_router(jobs_routes.router)
    app.include_router(web_routes.router)
    app.include_router(review_routes.router)
    app.include_router(reports_routes.router)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/kb")

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", tags=["ops"])
    def readyz() -> JSONResponse:
        """Ready once the knowledge index is loaded; 503 with the reason otherwise."""
        readiness: Readiness = app.state.readiness
        if not readiness.ready:
            return JSONResponse({"status": "not ready", "reason": readiness.reason}, status_code=503)
        knowledge: KnowledgeIndex = app.state.knowledge
        return JSONResponse(
            {"status": "ready", "chunks": len(knowledge.chunks), "embedder": knowledge.store.embedder.name}
        )

    return app
