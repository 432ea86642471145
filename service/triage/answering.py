"""The FAQ index and the scope gate, built once at start-up beside the rest of the pipeline."""

from __future__ import annotations

from service.config import Settings
from service.retrieval.service import KnowledgeIndex
from service.triage.faq import FaqIndex, load_faq
from service.triage.scope import ScopeGate, build_scope_gate


def build_answering(
    settings: Settings, knowledge: KnowledgeIndex, *, in_scope: list[str]
) -> tuple[FaqIndex, ScopeGate]:
    """FAQ entries from knowledge/ and the off-topic bank, embedded once (cached on disk in the data dir)."""
    cache = settings.data_dir / "cache"
    embedder, expand = knowledge.store.embedder, knowledge.synonyms.expand
    faq = FaqIndex(load_faq(settings.knowledge_dir), embedder, expand=expand, cache_dir=cache)
    questions = [entry.question for entry in faq.entries]
    scope = build_scope_gate(
        settings.knowledge_dir, embedder, in_scope=[*questions, *in_scope], expand=expand, cache_dir=cache
    )
    return faq, scope
