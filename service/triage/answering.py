"""The FAQ index and the scope gate, built once at start-up beside the rest of the pipeline; both are built
again when any process changes the uploaded knowledge files (see KnowledgeSync)."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.db import session_scope
from service.retrieval import kb_files
from service.retrieval.documents import LoadResult, load_documents
from service.retrieval.service import KnowledgeIndex
from service.retrieval.sources import SourceLimits
from service.triage.faq import FaqEntry, FaqIndex, faq_entries
from service.triage.scope import ScopeGate, build_scope_gate
from service.triage.taxonomy import Taxonomy


def in_scope_examples(taxonomy: Taxonomy) -> list[str]:
    """What the scope gate learns as in scope besides the FAQ: the taxonomy's examples of objections."""
    return [text for text, label in taxonomy.examples() if label != "other"]


def build_answering(
    settings: Settings,
    knowledge: KnowledgeIndex,
    *,
    in_scope: list[str],
    sessions: sessionmaker[Session] | None = None,
) -> tuple[FaqIndex, ScopeGate]:
    """FAQ entries from knowledge/ (and the uploaded files, given the database) and the off-topic bank, embedded
    once (cached on disk in the data dir); in_scope, what else the scope gate learns as in scope. The FAQ's questions
    become the search's question keys too (a close one gives its entry a place among the first three hits)."""
    embedder, expand = knowledge.store.embedder, knowledge.synonyms.expand
    cache_dir = settings.data_dir / "cache"
    faq = FaqIndex(load_faq_entries(settings, sessions), embedder, expand=expand, cache_dir=cache_dir)
    knowledge.question_keys = faq
    questions = [entry.question for entry in faq.entries]
    scope = build_scope_gate(
        settings.knowledge_dir,
        embedder,
        in_scope=[*questions, *in_scope],
        expand=expand,
        cache_dir=cache_dir,
    )
    return faq, scope


def load_faq_entries(settings: Settings, sessions: sessionmaker[Session] | None) -> list[FaqEntry]:
    """The FAQ documents of the knowledge folder and of the uploaded files (an upload replaces the folder file at its
    path, as in search)."""
    folder = load_documents(settings.knowledge_dir) if settings.knowledge_dir.is_dir() else LoadResult()
    uploads = LoadResult()
    if sessions is not None:
        with session_scope(sessions) as session:
            uploads = kb_files.load_uploads(session, SourceLimits.from_settings(settings))
    return faq_entries(kb_files.merge(folder, uploads).documents)
