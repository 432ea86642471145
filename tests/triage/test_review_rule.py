"""The one rule for what reviewers must see, shared by /v1/ask and bulk jobs."""

from __future__ import annotations

from service.triage.cascade import review_call
from service.triage.classifier import Classification


def call(
    classification: Classification, *, draft_flags: list[str] | None = None, abstained: bool = False
) -> tuple[bool, bool]:
    """(goes to reviewers, urgent) with the default threshold, 0.6."""
    decision = review_call(classification, threshold=0.6, draft_flags=draft_flags, abstained=abstained)
    return decision.needed, decision.urgent


def classified(confidence: float, *flags: str) -> Classification:
    return Classification("cost", None, confidence, True, "「高い」", "local", flags=flags)


def test_a_survey_comment_goes_to_reviewers_only_when_the_classifier_was_unsure_or_the_llm_failed() -> None:
    assert call(classified(0.9)) == (False, False)
    assert call(classified(0.5)) == (True, False)
    assert call(classified(0.9, "llm_unavailable")) == (True, True)


def test_a_drafted_answer_always_goes_to_reviewers_and_is_urgent_when_anything_went_wrong() -> None:
    assert call(classified(0.9), draft_flags=[]) == (True, False)
    assert call(classified(0.9), draft_flags=["no_citation"]) == (True, True)
    assert call(classified(0.9), draft_flags=[], abstained=True) == (True, True)
    assert call(classified(0.9, "llm_bad_output"), draft_flags=[]) == (True, True)
