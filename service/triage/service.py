"""The triage pipeline, one code path for every caller: retrieve, classify, draft, cite, abstain, store."""

from __future__ import annotations

import time
import uuid
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.db import session_scope
from service.errors import LLMUnavailable, NotFound
from service.llm.client import ChatModel, Usage
from service.llm.prompts import Prompt, fence
from service.logging import get_logger
from service.privacy import redact
from service.retrieval.approved import ApprovedAnswers
from service.retrieval.documents import detect_lang
from service.retrieval.paraphrase import agreement
from service.retrieval.schemas import Hit
from service.retrieval.service import KnowledgeIndex, SearchOptions, clean_query, expanded_query, search_passages
from service.sealing import seal
from service.triage.cascade import RootCauseClassifier, review_call
from service.triage.classifier import Classification
from service.triage.drafting import (
    ABSTAIN_TEXT,
    NO_ANSWER,
    REVIEW_FIRST_TEXT,
    Passage,
    StreamGuard,
    citations_for,
    number_passages,
    stream_chunks,
)
from service.triage.extractive import extractive_answer
from service.triage.faq import FaqEntry, FaqIndex, FaqMatch, FaqPolicy, FaqResult
from service.triage.faq_answers import faq_citation, related_questions
from service.triage.followup import standalone_question
from service.triage.links import followup_url, new_followup_token
from service.triage.models import Answer, ClassificationRow, Feedback, Question, QuestionSource
from service.triage.queue import ReviewQueue
from service.triage.schemas import MAX_TURNS, AskResponse, Citation, Flag, RelatedQuestion, RootCause, Turn, UsageOut
from service.triage.scope import ScopeDecision, ScopeGate

log = get_logger("triage")
REUSE_CANDIDATES = 8  # approved phrasings checked per question, closest first
Event = tuple[str, dict[str, Any]]


@dataclass
class Triage:
    """Everything the pipeline uses, built once by the app lifespan or the CLI."""

    settings: Settings
    knowledge: KnowledgeIndex
    approved: ApprovedAnswers
    classifier: RootCauseClassifier
    llm: ChatModel | None
    draft_prompt: Prompt
    queue: ReviewQueue  # where every stored draft goes for review
    faq: FaqIndex | None = None
    scope: ScopeGate | None = None
    rewrite_prompt: Prompt | None = None


@dataclass
class Draft:
    text: str
    mode: str
    flags: list[Flag]
    citations: list[Citation]
    related: list[RelatedQuestion] = field(default_factory=list)
    reused: str | None = None  # the approved answer's id, when one was served


def clearly_off_topic(triage: Triage, text: str) -> bool:
    """Whether a question on its own is well outside the knowledge base: the scope gate scores it at least
    new_topic_margin below its threshold. Asked only of short questions in a conversation that do not refer back."""
    if triage.scope is None:
        return False
    vector = triage.knowledge.store.embedder.embed_query(expanded_query(triage.knowledge, text))
    hits = search_passages(
        triage.knowledge,
        query=text,
        k=triage.settings.ask_k,
        options=SearchOptions.from_settings(triage.settings),
        query_vector=vector,
    )
    rule = triage.scope.rule
    return _scope_decision(triage, triage.scope, vector, hits).score < rule.threshold - rule.new_topic_margin


def _scope_decision(triage: Triage, scope: ScopeGate, vector: np.ndarray, hits: list[Hit]) -> ScopeDecision:
    """The scope gate's verdict on a question's vector and its passages (the FAQ weighed by its entries' titles)."""
    title = triage.faq.title_similarity(vector) if triage.faq else 0.0
    return scope.decide(vector, faq=title, hits=hits)


def ask_events(
    triage: Triage,
    sessions: sessionmaker[Session],
    *,
    question: str,
    source: QuestionSource,
    department: str | None = None,
    asker: str | None = None,
    asker_email: str | None = None,
    stream: bool = True,
    conversation_id: str | None = None,
    history: Sequence[Turn] = (),
) -> Iterator[Event]:
    """Events for one question: meta (candidate citations), delta (answer text), done (the stored result)."""
    started = time.perf_counter()
    text = clean_query(question, max_chars=triage.settings.max_query_chars)
    lang = detect_lang(text)
    usage = Usage.within(triage.settings.ask_deadline_s)
    # A follow-up that leans on the previous turn is searched as a standalone question; the typed text is kept.
    standalone = standalone_question(
        text,
        list(history)[-MAX_TURNS:],
        lang=lang,
        llm=triage.llm,
        prompt=triage.rewrite_prompt,
        usage=usage,
        off_topic=lambda alone: clearly_off_topic(triage, alone),
    )
    searched = standalone or text
    outgoing = redact(searched) if triage.settings.redact_for_llm else searched
    # One embedding of the synonym-expanded question serves the classifier and the search.
    vector = triage.knowledge.store.embedder.embed_query(expanded_query(triage.knowledge, searched))
    immediate = triage.settings.answer_policy == "immediate"
    faq = triage.faq.match(vector, lang=lang) if triage.faq else FaqResult(None, [])
    policy = faq_policy(triage.settings)

    approved = reusable_answer(triage, sessions, searched, vector)
    reuse = approved is not None
    # One passage search serves the FAQ decision (does the search agree with the FAQ match?) and the draft.
    hits = (
        []
        if reuse
        else search_passages(
            triage.knowledge,
            query=searched,
            k=triage.settings.ask_k,
            options=SearchOptions.from_settings(triage.settings),
            query_vector=vector,
        )
    )
    if reuse:
        supported = True
    elif triage.scope is not None:
        supported = _scope_decision(triage, triage.scope, vector, hits).in_scope
    else:
        supported = any((h.dense_score or 0) >= triage.settings.abstain_below for h in hits)
    if approved and reuse:
        # A reviewed answer is reused without any LLM call: the local classifier labels the question.
        classification = triage.classifier.local.classify(text, vector=vector)
        draft = Draft(approved.text, "approved", [], approved.citations, reused=approved.answer_id)
        yield "meta", {"citations": [c.model_dump() for c in draft.citations], "lang": lang, "mode": "approved"}
    elif chosen := policy.choose(faq, hits=hits, in_scope=supported):
        # A curated FAQ answer, as the project office wrote it, wins over any draft: no LLM call.
        classification = triage.classifier.local.classify(searched, vector=vector)
        draft = faq_draft(chosen.entry, triage.knowledge, policy.related(faq, include_best=False, answered=chosen))
        yield "meta", {"citations": [c.model_dump() for c in draft.citations], "lang": lang, "mode": "faq"}
    else:
        classification = triage.classifier.classify_many(
            [searched], usage=usage, redact=triage.settings.redact_for_llm, vectors=[vector]
        )[0]
        passages = number_passages(hits, lang=lang)
        yield "meta", {"citations": [p.citation().model_dump() for p in passages] if supported else [], "lang": lang}
        if not supported:
            draft = Draft(ABSTAIN_TEXT[lang], "abstain", [Flag.kb_not_supporting], [])
        elif triage.llm is None or Flag.llm_unavailable in classification.flags:
            draft = _fallback(searched, passages, lang, [])
        else:
            draft = yield from _llm_draft(triage, outgoing, passages, lang=lang, usage=usage, live=immediate and stream)
        if draft.mode != "abstain":  # もしかして: the FAQ questions close to this one
            draft.related = related_questions(policy.related(faq, include_best=True))
    if draft.mode in ("llm", "extractive") and not draft.citations:
        draft.flags.append(Flag.no_citation)
    visible = draft.text if immediate or draft.mode in ("approved", "faq") else REVIEW_FIRST_TEXT[lang]
    if draft.mode != "llm" or not immediate or not stream:
        for delta in stream_chunks(visible):
            yield "delta", {"text": delta}
    response = _store(
        sessions,
        triage,
        text=text,
        lang=lang,
        source=source,
        department=department,
        asker=(asker, asker_email),
        conversation=(conversation_id, standalone),
        draft=draft,
        classification=classification,
        usage=usage,
        vector=vector,
        visible=visible,
        latency_ms=round((time.perf_counter() - started) * 1000),
    )
    yield "done", response.model_dump()


@dataclass(frozen=True)
class Reusable:
    answer_id: str
    text: str
    citations: list[Citation]


def reusable_answer(
    triage: Triage, sessions: sessionmaker[Session], question: str, vector: np.ndarray
) -> Reusable | None:
    """The closest reviewer-approved answer close enough to reuse, with its text and citations as the database says
    they are now.

    Close enough: an approved phrasing (the question or an alternate) in the asker's language within
    approved_min_similarity, that the question agrees with (same numbers, same kind of question, no word the
    phrasing and its answer do not say; see service.retrieval.paraphrase). The vector store only finds candidates:
    an answer withdrawn a moment ago (or by another process whose store update failed) may still be there, so each
    is checked in SQL before it is served."""
    lang, expand = detect_lang(question), triage.knowledge.synonyms.expand
    close = []
    for phrasing in triage.approved.phrasings(question, vector=vector, n=REUSE_CANDIDATES):
        if phrasing.similarity < triage.settings.approved_min_similarity or phrasing.lang != lang:
            continue
        verdict = agreement(question, phrasing.question, phrasing.answer, expand=expand)
        if verdict.agrees:
            close.append(phrasing)
        else:  # the reason names words of the question, so it stays at debug level like other comment text
            log.debug("approved.not_reused", answer=phrasing.answer_id, reason=verdict.reason)
    if not close:
        return None
    with session_scope(sessions) as session:
        for candidate in close:
            if (served := triage.queue.approved_answer(session, candidate.answer_id)) is not None:
                citations = [Citation.model_validate(c) for c in served.citations]
                return Reusable(candidate.answer_id, served.text, citations)
            log.info("approved.stale_match", answer=candidate.answer_id)
    return None


def _llm_draft(
    triage: Triage, question: str, passages: list[Passage], *, lang: str, usage: Usage, live: bool
) -> Generator[Event, None, Draft]:
    """Stream the LLM's draft through the guard; fall back to the extractive draft when the LLM fails."""
    assert triage.llm is not None
    messages = triage.draft_prompt.render(
        lang=lang,
        question=fence(question),
        passages=[
            {"n": p.n, "doc_id": p.hit.doc_id, "title": fence(p.hit.title), "text": fence(p.hit.text)} for p in passages
        ],
    )
    guard = StreamGuard(valid={p.n for p in passages}, system_prompt=messages[0]["content"])
    try:
        whole = None if live else [triage.llm.complete_text(messages, usage)]
        for delta in whole or triage.llm.stream_text(messages, usage):
            shown = guard.feed(delta)
            if guard.leaked:
                break
            if shown and live:
                yield "delta", {"text": shown}
        tail = guard.finish()
        if tail and live:
            yield "delta", {"text": tail}
    except LLMUnavailable as exc:
        log.warning("draft.llm_unavailable", reason=exc.message)
        return _fallback(question, passages, lang, [Flag.llm_unavailable, *guard.flags])
    answer = guard.clean_text()
    if guard.leaked:
        return _fallback(question, passages, lang, guard.flags)
    if answer.startswith(NO_ANSWER) or not answer:
        return Draft(ABSTAIN_TEXT[lang], "abstain", [Flag.llm_no_answer, *guard.flags], [])
    return Draft(answer, "llm", guard.flags, citations_for(answer, passages))


def _fallback(question: str, passages: list[Passage], lang: str, flags: list[Flag]) -> Draft:
    answer = extractive_answer(question, passages, lang=lang)
    return Draft(answer, "extractive", flags, citations_for(answer, passages))


def faq_policy(settings: Settings) -> FaqPolicy:
    return FaqPolicy(
        min_similarity=settings.faq_min_similarity,
        min_margin=settings.faq_min_margin,
        agree_min_similarity=settings.faq_agree_min_similarity,
        agree_min_lead=settings.faq_agree_min_lead,
        out_of_scope_min=settings.faq_out_of_scope_min,
    )


def faq_draft(entry: FaqEntry, knowledge: KnowledgeIndex, related: list[FaqMatch]) -> Draft:
    """The curated answer as written, cited to its /kb page."""
    return Draft(entry.answer, "faq", [], [faq_citation(entry, knowledge)], related_questions(related))


def _store(
    sessions: sessionmaker[Session],
    triage: Triage,
    *,
    text: str,
    lang: str,
    source: QuestionSource,
    department: str | None,
    asker: tuple[str | None, str | None],
    conversation: tuple[str | None, str | None],
    draft: Draft,
    classification: Classification,
    usage: Usage,
    vector: np.ndarray,
    visible: str,
    latency_ms: int,
) -> AskResponse:
    """Store the result for review, then answer with it (and the asker's follow-up link, whose token is not kept:
    for an asker with a known e-mail address a sealed copy is, so the e-mail about a later decision can link it)."""
    token, digest = new_followup_token()
    key = triage.settings.link_key.get_secret_value() if triage.settings.link_key else ""
    public_id = _persist(
        sessions,
        triage,
        question=Question(
            text=text,
            lang=lang,
            source=source,
            department=department,
            asker=asker[0],
            conversation_id=conversation[0],
            standalone_text=conversation[1],
            followup_hash=digest,
            asker_email=asker[1],
            followup_sealed=seal(token, digest=digest, key=key) if asker[1] and key else None,
        ),
        draft=draft,
        classification=classification,
        usage=usage,
        vector=vector,
        latency_ms=latency_ms,
    )
    log.info(
        "ask.done",
        id=public_id,
        mode=draft.mode,
        root_cause=classification.primary,
        flags=[str(flag) for flag in draft.flags],  # values, not Flag reprs, on the console
        latency_ms=latency_ms,
        llm_calls=usage.calls,
    )
    response = _response(
        public_id,
        lang=lang,
        conversation=conversation,
        draft=draft,
        classification=classification,
        usage=usage,
        visible=visible,
        latency_ms=latency_ms,
    )
    response.followup_url = followup_url(token)
    return response


def _persist(
    sessions: sessionmaker[Session],
    triage: Triage,
    *,
    question: Question,
    draft: Draft,
    classification: Classification,
    usage: Usage,
    vector: np.ndarray,
    latency_ms: int,
) -> str:
    """Question, draft and classification in one transaction, and a pending review item; returns the public id.
    A question answered with an approved answer is not reviewed again: the reuse is logged against that answer."""
    by_llm = draft.mode == "llm"
    answer = Answer(
        mode=draft.mode,
        text=draft.text,
        citations=[c.model_dump() for c in draft.citations],
        flags=draft.flags,
        model=triage.llm.model if by_llm and triage.llm else None,
        prompt_id=triage.draft_prompt.id if by_llm else None,
        prompt_hash=triage.draft_prompt.hash if by_llm else None,
        usage=usage.__dict__,
        latency_ms=latency_ms,
    )
    with session_scope(sessions) as session:
        if draft.reused is not None:
            store_question(session, question, classification, answer=answer)
            triage.queue.record_reuse(session, answer_id=draft.reused, question_id=question.id)
            return question.public_id
        stored = store_for_review(
            session,
            question,
            classification,
            queue=triage.queue,
            answer=answer,
            urgent=review_call(
                classification,
                threshold=triage.classifier.threshold,
                draft_flags=draft.flags,
                abstained=draft.mode == "abstain",
            ).urgent,
            vector=vector,
            embedder=triage.knowledge.store.embedder.name,
        )
        return stored.public_id


def _response(
    public_id: str,
    *,
    lang: str,
    conversation: tuple[str | None, str | None],
    draft: Draft,
    classification: Classification,
    usage: Usage,
    visible: str,
    latency_ms: int,
) -> AskResponse:
    """What the asker gets: the visible answer, the draft, citations, root cause, status and usage."""
    return AskResponse(
        id=public_id,
        answer=visible,
        draft=draft.text,
        citations=draft.citations,
        root_cause=RootCause(
            primary=classification.primary,
            secondary=classification.secondary,
            confidence=classification.confidence,
            rationale=classification.rationale,
            classifier=classification.classifier,
        ),
        is_objection=classification.is_objection,
        mode=draft.mode,
        related=draft.related,
        standalone_question=conversation[1],
        conversation_id=conversation[0],
        status=_status(draft.mode, shown=visible == draft.text),
        flags=list(dict.fromkeys([*draft.flags, *classification.flags])),
        lang=lang,
        usage=UsageOut(
            llm_calls=usage.calls,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cost_usd=usage.cost_usd,
            llm_latency_ms=usage.latency_ms,
            latency_ms=latency_ms,
        ),
    )


def _status(mode: str, *, shown: bool) -> Literal["draft", "approved", "pending_review"]:
    """approved: a reviewer-approved or curated FAQ answer; draft: shown while under review; else hidden."""
    if mode in ("approved", "faq"):
        return "approved"
    return "draft" if shown else "pending_review"


def store_for_review(
    session: Session,
    question: Question,
    classification: Classification,
    *,
    queue: ReviewQueue,
    answer: Answer | None = None,
    urgent: bool,
    vector: np.ndarray | None = None,
    embedder: str | None = None,
) -> Question:
    """A new question with its classification (and draft, when there is one), handed to the review queue."""
    store_question(session, question, classification, answer=answer)
    queue.enqueue(session, question_id=question.id, urgent=urgent, vector=vector, embedder=embedder)
    return question


def store_question(
    session: Session, question: Question, classification: Classification, *, answer: Answer | None = None
) -> Question:
    """A new question with its classification (and draft, when there is one), kept for analytics."""
    question.public_id = question.public_id or str(uuid.uuid4())
    session.add(question)
    session.flush()
    if answer is not None:
        answer.question_id = question.id
        session.add(answer)
    session.add(
        ClassificationRow(
            question_id=question.id,
            primary=classification.primary,
            secondary=classification.secondary,
            confidence=classification.confidence,
            is_objection=classification.is_objection,
            rationale=classification.rationale,
            classifier=classification.classifier,
            model=classification.model,
            prompt_id=classification.prompt_id,
            prompt_hash=classification.prompt_hash,
            flags=list(classification.flags),
        )
    )
    return question


def ask(
    triage: Triage,
    sessions: sessionmaker[Session],
    *,
    question: str,
    source: QuestionSource,
    department: str | None = None,
    asker: str | None = None,
    asker_email: str | None = None,
    conversation_id: str | None = None,
    history: Sequence[Turn] = (),
) -> AskResponse:
    """The pipeline once, returning the final result (the JSON form of the events)."""
    events = ask_events(
        triage,
        sessions,
        question=question,
        source=source,
        department=department,
        asker=asker,
        asker_email=asker_email,
        stream=False,
        conversation_id=conversation_id,
        history=history,
    )
    for name, payload in events:
        if name == "done":
            return AskResponse.model_validate(payload)
    raise RuntimeError("the pipeline ended without a result")  # unreachable: ask_events always ends with done


def record_feedback(session: Session, *, answer_id: str, helpful: bool, comment: str | None) -> Feedback:
    """Store the asker's thumbs up/down (and comment) for reviewers."""
    question = session.query(Question).filter_by(public_id=answer_id).one_or_none()
    if question is None:
        raise NotFound(f"no answer with id {answer_id!r}", detail={"id": answer_id})
    feedback = Feedback(question_id=question.id, helpful=helpful, comment=(comment or "").strip() or None)
    session.add(feedback)
    session.flush()
    return feedback
