"""App factory; the lifespan owns every client (database, vector store, embedder)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from service import __version__
from service.auth import routes as auth_routes
from service.auth.proxy import TrustedProxyMiddleware
from service.auth.service import active_names
from service.bootstrap import build_triage, open_clients, unavailable
from service.config import Settings, get_settings
from service.db import session_scope
from service.errors import NemawashiError, SignInRequired, install_error_handlers
from service.followups import routes as followups_routes
from service.jobs import routes as jobs_routes
from service.logging import configure_logging, get_logger
from service.notify import routes as notify_routes
from service.notify.service import DeliveryLoop
from service.reports import routes as reports_routes
from service.retrieval import admin_routes as kb_admin_routes
from service.retrieval import routes as retrieval_routes
from service.retrieval.embeddings import Embedder
from service.retrieval.ingest import catch_up_uploads, ingest_knowledge
from service.retrieval.service import KnowledgeIndex
from service.retrieval.sources import SourceLimits
from service.retrieval.uploads import knowledge_mark
from service.review import routes as review_routes
from service.review.decisions import sync_classifier
from service.review.pages import sign_in_form
from service.review.reconciler import catch_up_tasks
from service.triage import routes as triage_routes
from service.web import routes as web_routes
from service.web.pages import error_page
from service.web.security import install_web_security

log = get_logger("main")
LOADER_WAIT_S = 1.0  # how long a stop waits for the index loader (indexing, training) before leaving it behind
# waits between loading attempts while the database or the Chroma server is unreachable
LOADER_RETRY_S = (1.0, 2.0, 5.0, 10.0, 30.0)


@dataclass
class Readiness:
    """Whether the index is loaded; the reason when it is not; whether the process is stopping (the loader then
    starts nothing more)."""

    ready: bool = False
    reason: str = "loading the knowledge index"
    stopping: threading.Event = field(default_factory=threading.Event)
    # The first indexing began and has not finished (an outage cut it): the next attempt indexes the folder again,
    # embedding only what the index lacks, instead of taking the half-built index for a whole one.
    first_indexing: bool = False


def _prepare_index(app: FastAPI, settings: Settings) -> None:
    """Index knowledge/ on first start, then load BM25; runs beside the server so /healthz answers at once.

    A database or Chroma server that cannot be reached meanwhile (restarted, a network cut) is waited for: /readyz
    says so and the loading starts again, until it succeeds or the process stops. A problem a person must fix (a
    broken knowledge file, an index built by another embedder) is reported once."""
    readiness: Readiness = app.state.readiness
    for attempt in itertools.count():
        try:
            _load_index(app, settings)
            return
        except NemawashiError as exc:
            readiness.reason = exc.message
            log.error("index.not_ready", reason=exc.message)
            return
        except (SQLAlchemyError, ConnectionError, httpx.TransportError) as exc:
            # The Chroma server's client raises httpx's errors (ConnectError, ReadTimeout) when it cannot be reached.
            what = "the vector store" if isinstance(exc, httpx.TransportError) else "the database"
            wait = LOADER_RETRY_S[min(attempt, len(LOADER_RETRY_S) - 1)]
            cause = type(getattr(exc, "orig", None) or exc).__name__
            readiness.reason = f"waiting for {what} ({cause}); loading again in {wait:g} s"
            log.warning("index.waiting", waiting_for=what, cause=cause, attempt=attempt + 1, retry_in_s=wait)
            if readiness.stopping.wait(wait):
                return


def _load_index(app: FastAPI, settings: Settings) -> None:
    knowledge: KnowledgeIndex = app.state.knowledge
    readiness: Readiness = app.state.readiness
    if readiness.first_indexing or not knowledge.store.exists():
        log.info("index.first_start", knowledge_dir=str(settings.knowledge_dir))
        readiness.first_indexing = True
        with session_scope(app.state.sessionmaker) as session:
            ingest_knowledge(
                session,
                knowledge.store,
                knowledge_dir=settings.knowledge_dir,
                max_tokens=settings.chunk_max_tokens,
                limits=SourceLimits.from_settings(settings),
            )
        readiness.first_indexing = False
    else:  # uploads another process took, or one this process stopped indexing, are indexed here too
        with session_scope(app.state.sessionmaker) as session:
            catch_up_uploads(
                session,
                knowledge.store,
                max_tokens=settings.chunk_max_tokens,
                limits=SourceLimits.from_settings(settings),
            )
    if readiness.stopping.is_set():
        return
    loaded_at = knowledge_mark(app.state.sessionmaker)  # before loading: a later change is reloaded by the sync
    knowledge.refresh()
    triage = build_triage(settings, app.state.clients)
    sync_classifier(app.state.sessionmaker, classifier=triage.classifier.local)  # relabels survive restarts
    if readiness.stopping.is_set():
        return
    app.state.triage = triage
    app.state.periodic = catch_up_tasks(app.state.sessionmaker, triage, settings, loaded_at=loaded_at)
    readiness.ready, readiness.reason = True, ""
    log.info("index.ready", chunks=len(knowledge.chunks))
    try:  # a hint only: a database that went away since start-up is /readyz's business, not this thread's
        with session_scope(app.state.sessionmaker) as session:
            if not active_names(session):
                hint = "`nemawashi users add NAME --role admin` prints a /review token"
                log.info("review.no_reviewers", hint=hint)
    except OperationalError as exc:
        log.warning("review.reviewers_unknown", error=type(exc.orig).__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    clients = open_clients(settings, embedder=app.state.embedder)
    app.state.clients = clients
    app.state.triage = None
    app.state.sessionmaker = clients.sessionmaker
    app.state.knowledge = clients.knowledge
    app.state.readiness = Readiness()
    app.state.periodic = []
    loader = threading.Thread(target=_prepare_index, args=(app, settings), name="index-loader", daemon=True)
    loader.start()
    outbox = DeliveryLoop(clients.sessionmaker, settings)  # delivers notifications committed here or elsewhere
    outbox.start()
    try:
        yield
    finally:
        app.state.readiness.stopping.set()
        outbox.stop()
        for task in app.state.periodic:
            task.stop()
        loader.join(timeout=LOADER_WAIT_S)
        if loader.is_alive():  # still indexing or training: a stop must not wait for it (the process ends now; a
            # first indexing cut short is finished by `nemawashi ingest`, which `make run` runs before serving: a
            # restart alone sees the collection and indexes only uploads); it still uses the clients, so they stay open
            log.warning("index.loading_abandoned", reason="stopping")
        else:
            clients.close()


def create_app(settings: Settings | None = None, *, embedder: Embedder | None = None) -> FastAPI:
    """The ASGI app; settings default to the environment, the embedder to the configured one (tests hand in a fake)."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    app = FastAPI(title="nemawashi", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.embedder = embedder
    install_error_handlers(app, page=error_page)
    app.add_exception_handler(SignInRequired, sign_in_form)
    install_web_security(app, settings)
    app.add_middleware(TrustedProxyMiddleware, proxies=settings.trusted_proxies)  # outermost: decides first
    app.include_router(kb_admin_routes.router)
    app.include_router(retrieval_routes.router)
    app.include_router(triage_routes.router)
    app.include_router(jobs_routes.router)
    app.include_router(web_routes.router)
    app.include_router(auth_routes.router)
    app.include_router(review_routes.router)
    app.include_router(reports_routes.router)
    followups_routes.install(app, settings)
    app.include_router(notify_routes.router)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/kb")

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", tags=["ops"], responses={503: {"description": "Not ready: `status` and the `reason`"}})
    def readyz() -> JSONResponse:
        """Ready once the knowledge index is loaded and the database and vector store answer; 503 with the reason."""
        readiness: Readiness = app.state.readiness
        if not readiness.ready:
            return JSONResponse({"status": "not ready", "reason": readiness.reason}, status_code=503)
        if problems := unavailable(app.state.clients):
            return JSONResponse({"status": "not ready", "reason": "; ".join(problems)}, status_code=503)
        knowledge: KnowledgeIndex = app.state.knowledge
        return JSONResponse(
            {"status": "ready", "chunks": len(knowledge.chunks), "embedder": knowledge.store.embedder.name}
        )

    return app
