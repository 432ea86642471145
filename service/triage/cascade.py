"""The LLM's part of root-cause classification: local for every comment, the LLM (in batches, within a budget) for
those the mode and the confidence threshold send to it, checked against the taxonomy; and the one review rule.

A numbered batch of comments gets {"items": [{"id", "primary", ...}]}. Each answered item is checked on its own: a
missing item, an id that was not sent or a label outside the taxonomy falls back to the local result for that comment.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
from pydantic import BaseModel, Field

from service.errors import LLMUnavailable
from service.llm.client import ChatModel, LLMOutputError, Usage
from service.llm.prompts import Prompt, fence
from service.logging import get_logger
from service.privacy import redact as redact_pii
from service.tokens import count_tokens
from service.triage.classifier import Classification, LLMClassification, LocalClassifier
from service.triage.rationale import check_rationale
from service.triage.schemas import Flag
from service.triage.taxonomy import Taxonomy

log = get_logger("classifier")
ANSWER_TOKENS_PER_COMMENT = 80  # a classification with a short rationale, for the tokens-per-minute budget
MAX_PARALLEL_REQUESTS = 8


class BatchItem(LLMClassification):
    """One comment's answer inside a batch."""

    id: str
    rationale: str = Field(default="", max_length=600)


class BatchAnswer(BaseModel):
    """The structured answer to a batch prompt: {"items": [{"id", "primary", ...}]}."""

    items: list[BatchItem]


class RequestBudget(Protocol):
    """Requests-per-minute and tokens-per-minute limits on the LLM: acquire() returns once a request fits."""

    def acquire(self, tokens: int) -> None: ...


@dataclass(frozen=True)
class ReviewCall:
    """Whether a result goes to the reviewers' queue, and at the front of it."""

    needed: bool
    urgent: bool


def review_call(
    classification: Classification,
    *,
    threshold: float,
    draft_flags: Sequence[str] | None = None,
    abstained: bool = False,
) -> ReviewCall:
    """The one review rule for asks and bulk jobs. A drafted answer (draft_flags given) always goes to reviewers; a
    bare classification goes when the classifier was unsure (below the threshold) or the LLM failed (flags).
    Urgent: something went wrong (any flag, or the knowledge base did not support an answer)."""
    drafted = draft_flags is not None
    urgent = bool(classification.flags) or bool(draft_flags) or abstained
    needed = drafted or urgent or classification.confidence < threshold
    return ReviewCall(needed=needed, urgent=urgent)


@dataclass
class RootCauseClassifier:
    """Modes: local, llm, or cascade (the LLM only when the local confidence is below the threshold)."""

    local: LocalClassifier
    taxonomy: Taxonomy
    mode: str
    threshold: float
    llm: ChatModel | None = None
    prompt: Prompt | None = None
    rationale_max_chars: int = 200

    def pinned(self) -> RootCauseClassifier:
        """This classifier with its local model fixed at today's version (see LocalClassifier.pinned)."""
        return replace(self, local=self.local.pinned())

    def classify(
        self, text: str, *, usage: Usage, redact: bool = False, vector: np.ndarray | None = None
    ) -> Classification:
        """One text through classify_many."""
        return self.classify_many([text], usage=usage, redact=redact, vectors=None if vector is None else [vector])[0]

    def classify_many(
        self,
        texts: Sequence[str],
        *,
        usage: Usage,
        redact: bool = False,
        vectors: Sequence[np.ndarray] | None = None,
        batch_size: int = 1,
        budget: RequestBudget | None = None,
    ) -> list[Classification]:
        """Local for every text; the LLM, batch_size comments per request, for those the mode and threshold send
        to it (redacted first when redact is set), within the budget. Where the LLM fails or answers outside the
        taxonomy, the local result stands, flagged llm_unavailable or llm_bad_output. vectors: each text's
        synonym-expanded form already embedded as a query, when the caller has them."""
        if vectors is None:
            local = [self.local.classify(text) for text in texts]
        else:  # the batch at once
            local = self.local.classify_many(list(texts), np.asarray(vectors)) if texts else []
        if self.mode == "local" or self.llm is None or self.prompt is None:
            return local
        unsure = [i for i, c in enumerate(local) if self.mode == "llm" or c.confidence < self.threshold]
        if not unsure:
            return local
        outgoing = [redact_pii(texts[i]) if redact else texts[i] for i in unsure]
        answered, spent = self._ask_llm(
            outgoing, [local[i] for i in unsure], batch_size=batch_size, budget=budget, deadline=usage.deadline
        )
        for call_usage in spent:
            usage.add(call_usage)
        final = list(local)
        for i, classification in zip(unsure, answered, strict=True):
            final[i] = classification
        return final

    def _ask_llm(
        self,
        texts: list[str],
        fallbacks: list[Classification],
        *,
        batch_size: int,
        budget: RequestBudget | None,
        deadline: float | None = None,
    ) -> tuple[list[Classification], list[Usage]]:
        """Each text's classification by the LLM, in batches sent in parallel, and the usage of each request."""
        size = max(1, batch_size)
        batches = [(texts[i : i + size], fallbacks[i : i + size]) for i in range(0, len(texts), size)]
        if len(batches) == 1:
            answered = [self._ask_batch(batches[0][0], batches[0][1], budget, deadline)]
        else:
            with ThreadPoolExecutor(min(MAX_PARALLEL_REQUESTS, len(batches)), thread_name_prefix="llm-batch") as pool:
                answered = list(pool.map(lambda batch: self._ask_batch(batch[0], batch[1], budget, deadline), batches))
        classifications = [c for batch, _ in answered for c in batch]
        return classifications, [u for _, u in answered if u is not None]

    def _ask_batch(
        self,
        texts: list[str],
        fallbacks: list[Classification],
        budget: RequestBudget | None,
        deadline: float | None = None,
    ) -> tuple[list[Classification], Usage | None]:
        assert self.llm is not None and self.prompt is not None
        comments = [{"id": str(i + 1), "text": fence(text)} for i, text in enumerate(texts)]
        messages = self.prompt.render(labels=self.taxonomy.labels, comments=comments)
        if budget is not None:
            budget.acquire(sum(count_tokens(m["content"]) for m in messages) + ANSWER_TOKENS_PER_COMMENT * len(texts))
        try:
            if len(texts) == 1:  # the prompt asks for a single object when there is one comment
                single, usage = self.llm.structured(
                    messages, LLMClassification, name="classification", deadline=deadline
                )
                items = [BatchItem(id="1", **single.model_dump())]
            else:
                answer, usage = self.llm.structured(
                    messages, BatchAnswer, name="classification_batch", deadline=deadline
                )
                items = answer.items
        except LLMOutputError as exc:
            log.warning("classify.llm_bad_output", comments=len(texts), reason=exc.message)
            return [_flagged(f, Flag.llm_bad_output) for f in fallbacks], exc.usage  # its tokens were spent anyway
        except LLMUnavailable as exc:
            log.warning("classify.llm_unavailable", comments=len(texts), reason=exc.message)
            return [_flagged(f, Flag.llm_unavailable) for f in fallbacks], None
        return self.match_items(items, fallbacks, comments=texts, system_prompt=messages[0]["content"]), usage

    def match_items(
        self,
        items: Sequence[BatchItem],
        fallbacks: Sequence[Classification],
        *,
        comments: Sequence[str] | None = None,
        system_prompt: str = "",
    ) -> list[Classification]:
        """Each sent id's answer, checked on its own; the fallback, flagged llm_bad_output, where it is missing or
        invalid (an id that was not sent is ignored). With the comments as sent, each rationale is checked against
        its comment and the system prompt (see guard_rationale)."""
        by_id: dict[str, BatchItem] = {}
        for item in items:
            by_id.setdefault(item.id.strip(), item)
        unknown = set(by_id) - {str(i + 1) for i in range(len(fallbacks))}
        if unknown:
            log.warning("classify.llm_unknown_ids", count=len(unknown))
        results = []
        for i, fallback in enumerate(fallbacks):
            answer = by_id.get(str(i + 1))
            try:
                if answer is None:
                    raise LLMOutputError("the LLM left this comment out")
                classification = self.from_llm(answer)
                if comments is not None:
                    classification = self.guard_rationale(
                        classification, comments[i], fallback=fallback, system_prompt=system_prompt
                    )
                results.append(classification)
            except LLMOutputError as exc:
                log.warning("classify.llm_bad_output", comments=1, reason=exc.message)
                results.append(_flagged(fallback, Flag.llm_bad_output))
        return results

    def from_llm(self, answer: LLMClassification) -> Classification:
        """The LLM's answer checked against the taxonomy: LLMOutputError when its primary label is not in it; a
        secondary label outside it (or equal to the primary) is dropped."""
        assert self.llm is not None and self.prompt is not None
        if answer.primary not in self.taxonomy.ids:
            raise LLMOutputError(f"the LLM answered a label outside the taxonomy: {answer.primary[:40]!r}")
        secondary = (
            answer.secondary if answer.secondary in self.taxonomy.ids and answer.secondary != answer.primary else None
        )
        return Classification(
            primary=answer.primary,
            secondary=secondary,
            confidence=round(answer.confidence, 3),
            is_objection=answer.is_objection,
            rationale=answer.rationale.strip()[:300],
            classifier="llm",
            model=self.llm.model,
            prompt_id=self.prompt.id,
            prompt_hash=self.prompt.hash,
        )

    def guard_rationale(
        self, classification: Classification, comment: str, *, fallback: Classification, system_prompt: str
    ) -> Classification:
        """The LLM's rationale reaches the asker and reviewers: cleaned and capped when it quotes the comment;
        replaced by the local quote and flagged rationale_rejected (urgent review) when it leaks the system prompt,
        carries a link or a role marker, or does not quote the comment (an obeyed injection looks like that)."""
        checked = check_rationale(
            classification.rationale, comment, system_prompt=system_prompt, max_chars=self.rationale_max_chars
        )
        if checked.rejected is None:
            return replace(classification, rationale=checked.text)
        log.warning("classify.rationale_rejected", reason=checked.rejected)
        return _flagged(replace(classification, rationale=fallback.rationale), Flag.rationale_rejected)


def _flagged(classification: Classification, flag: Flag) -> Classification:
    return replace(classification, flags=(*classification.flags, flag))
