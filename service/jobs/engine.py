"""Classify many distinct comments at once with the triage pipeline's classifier, FAQ search and drafts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from service.jobs.batching import classify_with_llm
from service.llm.client import Usage
from service.privacy import redact
from service.ratelimit import SlidingWindowLimiter
from service.retrieval.documents import detect_lang
from service.retrieval.embeddings import Vectors
from service.retrieval.service import SearchOptions, expanded_query, search_passages
from service.triage.classifier import Classification
from service.triage.service import Triage, ask


@dataclass(frozen=True)
class Outcome:
    """What one distinct comment was classified as, plus its best FAQ entry."""

    root_cause: str
    secondary_cause: str | None
    confidence: float
    is_objection: bool
    needs_review: bool
    matched_doc_id: str | None = None
    matched_title: str | None = None
    classifier: str = "local"
    model: str | None = None
    prompt_id: str | None = None
    prompt_hash: str | None = None
    flags: tuple[str, ...] = ()
    rationale: str = ""
    lang: str = "ja"
    suggested_answer: str | None = None
    question_public_id: str | None = None  # set when ask() already stored it and queued it for review
    # The comment's expanded query vector and its embedder: the review queue groups with it instead of embedding again.
    vector: Vectors | None = field(default=None, compare=False, repr=False)
    embedder: str | None = None

    def classification(self) -> Classification:
        return Classification(
            primary=self.root_cause,
            secondary=self.secondary_cause,
            confidence=self.confidence,
            is_objection=self.is_objection,
            rationale=self.rationale,
            classifier=self.classifier,
            model=self.model,
            prompt_id=self.prompt_id,
            prompt_hash=self.prompt_hash,
            flags=self.flags,
        )


class CommentClassifier(Protocol):
    """Classifies distinct comments; the departments are those of each comment's first row."""

    def classify_many(self, texts: list[str], *, departments: list[str | None], usage: Usage) -> list[Outcome]: ...


class TriageClassifier:
    """The /v1/ask classifier on many comments: local for all, the LLM (batched) where the mode asks for it."""

    def __init__(self, triage: Triage, sessions: sessionmaker[Session], *, suggest: bool = False) -> None:
        settings = triage.settings
        self._triage = triage
        self._sessions = sessions
        self._suggest = suggest
        self._options = SearchOptions.from_settings(settings)
        self._limiter = SlidingWindowLimiter(
            settings.llm_requests_per_minute, token_limit=settings.llm_tokens_per_minute
        )

    def classify_many(self, texts: list[str], *, departments: list[str | None], usage: Usage) -> list[Outcome]:
        knowledge = self._triage.knowledge
        vectors = knowledge.store.embedder.embed_queries([expanded_query(knowledge, t) for t in texts])
        local = [self._triage.classifier.local.classify(t, vector=v) for t, v in zip(texts, vectors, strict=True)]
        final = self._with_llm(texts, local, usage)
        return [
            self._outcome(text, vector, classification, department, usage)
            for text, vector, classification, department in zip(texts, vectors, final, departments, strict=True)
        ]

    def _with_llm(self, texts: list[str], local: list[Classification], usage: Usage) -> list[Classification]:
        classifier = self._triage.classifier
        if classifier.mode == "local" or classifier.llm is None or classifier.prompt is None:
            return local
        unsure = [i for i, c in enumerate(local) if classifier.mode == "llm" or c.confidence < classifier.threshold]
        if not unsure:
            return local
        outgoing = [redact(texts[i]) if self._triage.redact_for_llm else texts[i] for i in unsure]
        answered = classify_with_llm(
            classifier,
            outgoing,
            [local[i] for i in unsure],
            batch_size=self._triage.settings.llm_batch_size,
            limiter=self._limiter,
            usage=usage,
        )
        final = list(local)
        for i, classification in zip(unsure, answered, strict=True):
            final[i] = classification
        return final

    def _outcome(self, text: str, vector: Vectors, c: Classification, department: str | None, usage: Usage) -> Outcome:
        lang = detect_lang(text)
        doc_id, title = self._match(text, vector, lang)
        answer, question = self._suggestion(text, department, usage) if self._suggest else (None, None)
        return Outcome(
            root_cause=c.primary,
            secondary_cause=c.secondary,
            confidence=c.confidence,
            is_objection=c.is_objection,
            needs_review=c.confidence < self._triage.settings.cascade_threshold or bool(c.flags),
            matched_doc_id=doc_id,
            matched_title=title,
            classifier=c.classifier,
            model=c.model,
            prompt_id=c.prompt_id,
            prompt_hash=c.prompt_hash,
            flags=c.flags,
            rationale=c.rationale,
            lang=lang,
            suggested_answer=answer,
            question_public_id=question,
            vector=vector,
            embedder=self._triage.knowledge.store.embedder.name,
        )

    def _match(self, text: str, vector: Vectors, lang: str) -> tuple[str | None, str | None]:
        """The FAQ entry that answers the comment, when the knowledge base supports one."""
        hits = search_passages(
            self._triage.knowledge,
            query=text,
            k=1,
            types=["faq"],
            lang=lang,
            options=self._options,
            query_vector=vector,
        )
        if not hits or (hits[0].dense_score or 0.0) < self._triage.settings.abstain_below:
            return None, None
        return hits[0].doc_id, hits[0].title

    def _suggestion(self, text: str, department: str | None, usage: Usage) -> tuple[str | None, str | None]:
        """A drafted answer through the /v1/ask pipeline (which also stores it and queues it for review); its LLM
        calls count in the job's usage."""
        response = ask(self._triage, self._sessions, question=text, source="survey", department=department)
        spent = response.usage
        usage.add(
            Usage(
                calls=spent.llm_calls,
                prompt_tokens=spent.prompt_tokens,
                completion_tokens=spent.completion_tokens,
                latency_ms=spent.llm_latency_ms,
                cost_usd=spent.cost_usd,
            )
        )
        return (response.draft if response.mode != "abstain" else None), response.id
