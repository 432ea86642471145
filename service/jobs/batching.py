"""Several comments per LLM request, within requests-per-minute and tokens-per-minute budgets.

The classify prompt renders a numbered batch when given several comments and asks for
{"items": [{"id", "primary", ...}]}. Each answered item is checked on its own: a missing item, an id that
was not sent or a label outside the taxonomy falls back to the local result for that comment only.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from pydantic import BaseModel, Field

from service.errors import LLMUnavailable
from service.llm.client import LLMOutputError, Usage
from service.llm.prompts import fence
from service.logging import get_logger
from service.ratelimit import SlidingWindowLimiter
from service.tokens import count_tokens
from service.triage.classifier import Classification, LLMClassification, RootCauseClassifier

log = get_logger("jobs.batching")
ANSWER_TOKENS_PER_COMMENT = 80  # a classification with a short rationale, for the tokens-per-minute budget
MAX_PARALLEL_REQUESTS = 8


class BatchItem(LLMClassification):
    """One comment's answer inside a batch."""

    id: str
    rationale: str = Field(default="", max_length=600)


class BatchAnswer(BaseModel):
    """The structured answer to a batch prompt."""

    items: list[BatchItem]


def classify_with_llm(
    classifier: RootCauseClassifier,
    texts: Sequence[str],
    fallbacks: Sequence[Classification],
    *,
    batch_size: int,
    limiter: SlidingWindowLimiter,
    usage: Usage,
) -> list[Classification]:
    """The LLM's classification of each text (already redacted), in batches; the fallback where it fails."""
    starts = range(0, len(texts), batch_size)
    batches = [(list(texts[i : i + batch_size]), list(fallbacks[i : i + batch_size])) for i in starts]
    workers = max(1, min(MAX_PARALLEL_REQUESTS, len(batches)))
    with ThreadPoolExecutor(workers, thread_name_prefix="llm-batch") as pool:
        answered = list(pool.map(lambda batch: _ask(classifier, batch[0], batch[1], limiter), batches))
    results: list[Classification] = []
    for classifications, call_usage in answered:
        results.extend(classifications)
        usage.add(call_usage)
    return results


def _ask(
    classifier: RootCauseClassifier, texts: list[str], fallbacks: list[Classification], limiter: SlidingWindowLimiter
) -> tuple[list[Classification], Usage]:
    assert classifier.llm is not None and classifier.prompt is not None
    comments = [{"id": str(i + 1), "text": fence(text)} for i, text in enumerate(texts)]
    messages = classifier.prompt.render(labels=classifier.taxonomy.labels, comments=comments)
    limiter.acquire(sum(count_tokens(m["content"]) for m in messages) + ANSWER_TOKENS_PER_COMMENT * len(texts))
    try:
        if len(texts) == 1:  # the prompt asks for a single object when there is one comment
            single, usage = classifier.llm.structured(messages, LLMClassification, name="classification")
            items = [BatchItem(id="1", **single.model_dump())]
        else:
            answer, usage = classifier.llm.structured(messages, BatchAnswer, name="classification_batch")
            items = answer.items
    except LLMOutputError as exc:
        log.warning("jobs.llm_bad_output", comments=len(texts), reason=exc.message)
        return [_flagged(f, "llm_bad_output") for f in fallbacks], Usage()
    except LLMUnavailable as exc:
        log.warning("jobs.llm_unavailable", comments=len(texts), reason=exc.message)
        return [_flagged(f, "llm_unavailable") for f in fallbacks], Usage()
    return _match_items(classifier, items, fallbacks), usage


def _match_items(
    classifier: RootCauseClassifier, items: list[BatchItem], fallbacks: list[Classification]
) -> list[Classification]:
    """Each sent id's answer, checked on its own; the fallback, flagged, where it is missing or invalid."""
    by_id: dict[str, BatchItem] = {}
    for item in items:
        by_id.setdefault(item.id.strip(), item)
    unknown = set(by_id) - {str(i + 1) for i in range(len(fallbacks))}
    if unknown:
        log.warning("jobs.llm_unknown_ids", count=len(unknown))
    results = []
    for i, fallback in enumerate(fallbacks):
        answer = by_id.get(str(i + 1))
        try:
            if answer is None:
                raise LLMOutputError("the LLM left this comment out")
            results.append(classifier.from_llm(answer))
        except LLMOutputError:
            results.append(_flagged(fallback, "llm_bad_output"))
    return results


def _flagged(classification: Classification, flag: str) -> Classification:
    return replace(classification, flags=(*classification.flags, flag))


def batch_prompt_tokens(classifier_prompt_tokens: int, comment_tokens: Sequence[int], *, batch_size: int) -> int:
    """Prompt tokens for sending these comments in batches: the fixed part once per request, plus each comment."""
    requests = -(-len(comment_tokens) // batch_size) if comment_tokens else 0
    return requests * classifier_prompt_tokens + sum(comment_tokens)
