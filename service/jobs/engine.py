"""Classify many distinct comments at once with the triage pipeline's classifier, FAQ search and drafts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from service.jobs.columns import RowResult
from service.llm.client import Usage
from service.ratelimit import make_limiter
from service.retrieval.documents import detect_lang
from service.retrieval.embeddings import Vectors
from service.retrieval.service import SearchOptions, dense_candidates_many, expanded_query, search_passages
from service.triage.cascade import ReviewCall, review_call
from service.triage.classifier import Classification
from service.triage.models import QuestionSource
from service.triage.service import Triage, ask


@dataclass(frozen=True)
class Outcome:
    """What one distinct comment was classified as, whether reviewers must see it, and its best FAQ entry."""

    classification: Classification
    review: ReviewCall
    lang: str = "ja"
    matched_doc_id: str | None = None
    matched_title: str | None = None
    suggested_answer: str | None = None
    question_public_id: str | None = None  # set when ask() already stored it and queued it for review
    # The comment's expanded query vector and its embedder: the review queue groups with it instead of embedding again.
    vector: Vectors | None = field(default=None, compare=False, repr=False)
    embedder: str | None = None

    def result(self) -> RowResult:
        """The columns this outcome fills in each of its rows."""
        c = self.classification
        return RowResult(
            root_cause=c.primary,
            secondary_cause=c.secondary,
            confidence=c.confidence,
            is_objection=c.is_objection,
            needs_review=self.review.needed,
            matched_doc_id=self.matched_doc_id,
            matched_title=self.matched_title,
            suggested_answer=self.suggested_answer,
            classifier=c.classifier,
            model=c.model,
            prompt_id=c.prompt_id,
            flags=c.flags,
        )


class CommentClassifier(Protocol):
    """Classifies distinct comments; the departments are those of each comment's first row."""

    def classify_many(self, texts: list[str], *, departments: list[str | None], usage: Usage) -> list[Outcome]: ...


class TriageClassifier:
    """The /v1/ask classifier on many comments: local for all, the LLM (batched) where the mode asks for it."""

    def __init__(self, triage: Triage, sessions: sessionmaker[Session], *, suggest: bool = False) -> None:
        settings = triage.settings
        # One classifier version for the whole run, whatever relabels arrive meanwhile (recorded on the job).
        self._triage = replace(triage, classifier=triage.classifier.pinned())
        self.version = self._triage.classifier.local.version
        self._sessions = sessions
        self._suggest = suggest
        self._options = SearchOptions.from_settings(settings)
        self._limiter = make_limiter(  # the LLM budget of bulk jobs, shared by every process through Redis if set
            settings.redis_url, "llm", settings.llm_requests_per_minute, token_limit=settings.llm_tokens_per_minute
        )

    def classify_many(self, texts: list[str], *, departments: list[str | None], usage: Usage) -> list[Outcome]:
        # Each comment is expanded and embedded once; the classifier, the FAQ match and the review queue all use
        # that vector, and the FAQ match asks the store for the whole batch's dense candidates in one call per language.
        knowledge = self._triage.knowledge
        expanded = [expanded_query(knowledge, t) for t in texts]
        vectors = knowledge.store.embedder.embed_queries(expanded)
        langs = [detect_lang(t) for t in texts]
        dense = self._faq_candidates(vectors, langs)
        classifications = self._triage.classifier.classify_many(
            texts,
            usage=usage,
            redact=self._triage.settings.redact_for_llm,
            vectors=list(vectors),
            batch_size=self._triage.settings.llm_batch_size,
            budget=self._limiter,
        )
        return [
            self._outcome(text, *found, department, usage)
            for text, found, department in zip(
                texts, zip(expanded, vectors, langs, dense, classifications, strict=True), departments, strict=True
            )
        ]

    def _faq_candidates(self, vectors: Vectors, langs: Sequence[str]) -> list[list[tuple[str, float]]]:
        """Each comment's dense FAQ candidates in its language: one store query per language in the batch."""
        found: list[list[tuple[str, float]]] = [[] for _ in langs]
        for lang in dict.fromkeys(langs):
            rows = [i for i, comment_lang in enumerate(langs) if comment_lang == lang]
            hits = dense_candidates_many(
                self._triage.knowledge, vectors[rows], types=["faq"], lang=lang, options=self._options
            )
            for i, candidates in zip(rows, hits, strict=True):
                found[i] = candidates
        return found

    def _outcome(
        self,
        text: str,
        expanded: str,
        vector: Vectors,
        lang: str,
        dense: list[tuple[str, float]],
        c: Classification,
        department: str | None,
        usage: Usage,
    ) -> Outcome:
        doc_id, title = self._match(text, expanded, vector, lang, dense)
        answer, question = self._suggestion(text, department, usage) if self._suggest else (None, None)
        return Outcome(
            classification=c,
            review=review_call(c, threshold=self._triage.classifier.threshold),
            lang=lang,
            matched_doc_id=doc_id,
            matched_title=title,
            suggested_answer=answer,
            question_public_id=question,
            vector=vector,
            embedder=self._triage.knowledge.store.embedder.name,
        )

    def _match(
        self, text: str, expanded: str, vector: Vectors, lang: str, dense: list[tuple[str, float]]
    ) -> tuple[str | None, str | None]:
        """The FAQ entry that answers the comment, when the knowledge base supports one."""
        hits = search_passages(
            self._triage.knowledge,
            query=text,
            k=1,
            types=["faq"],
            lang=lang,
            options=self._options,
            query_vector=vector,
            expanded=expanded,
            dense_hits=dense,
        )
        if not hits or (hits[0].dense_score or 0.0) < self._triage.settings.abstain_below:
            return None, None
        return hits[0].doc_id, hits[0].title

    def _suggestion(self, text: str, department: str | None, usage: Usage) -> tuple[str | None, str | None]:
        """A drafted answer through the /v1/ask pipeline (which also stores it and queues it for review); its LLM
        calls count in the job's usage."""
        response = ask(self._triage, self._sessions, question=text, source=QuestionSource.survey, department=department)
        usage.add(response.usage.spent())
        return (response.draft if response.mode != "abstain" else None), response.id
