"""--dry-run: rows, distinct comments, and the LLM tokens and cost a run would take, without calling anything."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from service.config import Settings
from service.jobs.columns import Layout
from service.jobs.readers import Source
from service.jobs.service import prepare_row
from service.llm.prompts import fence, load_prompts
from service.privacy import redact
from service.tokens import count_tokens
from service.triage.cascade import ANSWER_TOKENS_PER_COMMENT
from service.triage.taxonomy import load_taxonomy


@dataclass(frozen=True)
class Estimate:
    """What a run would process and, in llm/cascade mode, send to the LLM at most."""

    rows: int
    unique: int
    errors: int
    mode: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    note: str


def estimate(source: Source, layout: Layout, settings: Settings) -> Estimate:
    """Read the whole file once; count tokens as the batch prompt would carry each distinct comment."""
    seen: set[str] = set()
    comment_tokens: list[int] = []
    rows = errors = 0
    for row in source.rows():
        rows += 1
        prepared = prepare_row(row, layout, settings.max_query_chars)
        if prepared.error or prepared.key is None:
            errors += 1
            continue
        if prepared.key in seen:
            continue
        seen.add(prepared.key)
        if settings.classifier_mode != "local":
            outgoing = redact(prepared.text) if settings.redact_for_llm else prepared.text
            comment_tokens.append(count_tokens(fence(outgoing)) + 8)  # + the <comment id="n"> tags
    mode = settings.classifier_mode
    if mode == "local":
        note = "local classifier only: no LLM requests, no cost"
        return Estimate(rows, len(seen), errors, mode, 0, 0, 0, 0.0, note)
    size = settings.llm_batch_size
    fixed = _fixed_prompt_tokens(settings)
    prompt = batch_prompt_tokens(fixed, comment_tokens, batch_size=size)
    completion = ANSWER_TOKENS_PER_COMMENT * len(comment_tokens)
    cost = (prompt * settings.llm_price_input_per_1m + completion * settings.llm_price_output_per_1m) / 1_000_000
    note = f"{size} comments per request"
    if mode == "cascade":
        note += (
            f"; an upper bound: the cascade only sends comments the local classifier is unsure of "
            f"(confidence < {settings.cascade_threshold:g})"
        )
    return Estimate(rows, len(seen), errors, mode, -(-len(comment_tokens) // size), prompt, completion, cost, note)


def batch_prompt_tokens(classifier_prompt_tokens: int, comment_tokens: Sequence[int], *, batch_size: int) -> int:
    """Prompt tokens for sending these comments in batches: the fixed part once per request, plus each comment."""
    requests = -(-len(comment_tokens) // batch_size) if comment_tokens else 0
    return requests * classifier_prompt_tokens + sum(comment_tokens)


def _fixed_prompt_tokens(settings: Settings) -> int:
    """Tokens of the classify prompt with empty comments: what every request carries whatever its comments."""
    prompt = load_prompts(settings.prompts_dir)["classify"]
    labels = load_taxonomy(settings.taxonomy_file).labels
    empty = [{"id": "1", "text": ""}, {"id": "2", "text": ""}]
    return sum(count_tokens(m["content"]) for m in prompt.render(labels=labels, comments=empty))
