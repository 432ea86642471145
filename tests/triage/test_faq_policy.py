"""When an FAQ entry answers: a close question match alone, or the passage search agreeing with a fair one."""

from __future__ import annotations

import pytest

from service.retrieval.schemas import Hit
from service.triage.faq import FaqEntry, FaqIndex, FaqMatch, FaqPolicy, FaqResult, retrieval_lead
from tests.fakes import HashedNgramEmbedder

POLICY = FaqPolicy(0.92, 0.01, agree_min_similarity=0.85, agree_min_lead=0.2, out_of_scope_min=0.95)
QUESTION_MATCH_ONLY = FaqPolicy(0.92, 0.01, agree_min_similarity=1.1, agree_min_lead=0.2, out_of_scope_min=0.95)


def match(base: str, similarity: float) -> FaqMatch:
    return FaqMatch(FaqEntry(f"{base}-ja", base, "ja", f"{base}?", f"answer of {base}"), similarity)


def hit(doc_id: str, score: float, rank: int = 1) -> Hit:
    return Hit(
        rank=rank,
        doc_id=doc_id,
        chunk_id=f"{doc_id}#0",
        title=doc_id,
        type="faq" if doc_id.startswith("faq-") else "plan",
        lang=doc_id[-2:],
        section="",
        score=score,
        dense_score=0.85,
        lexical_score=5.0,
        text="",
        url=f"/kb/{doc_id}",
    )


def result(*matches: FaqMatch) -> FaqResult:
    return FaqResult(matches[0], list(matches[1:]))


def test_a_close_question_match_answers_without_the_search() -> None:
    faq = result(match("faq-a", 0.95), match("faq-b", 0.90))
    assert POLICY.choose(faq) == faq.best


def test_a_fair_match_answers_when_the_search_puts_the_same_entry_clearly_first() -> None:
    faq = result(match("faq-a", 0.89), match("faq-b", 0.885))
    hits = [hit("faq-a-en", 1.0), hit("faq-a-ja", 0.9, 2), hit("plan-x-ja", 0.7, 3)]
    assert abs(retrieval_lead(hits, "faq-a") - 0.3) < 1e-9  # the other language of the same entry is no rival
    assert POLICY.choose(faq, hits=hits) == faq.best


def test_the_search_picks_among_close_matches_and_the_answered_entry_is_not_offered_again() -> None:
    faq = result(match("faq-a", 0.90), match("faq-b", 0.89), match("faq-c", 0.88))
    hits = [hit("faq-b-ja", 0.95), hit("plan-x-ja", 0.6, 2)]
    chosen = POLICY.choose(faq, hits=hits)
    assert chosen is not None and chosen.entry.base_id == "faq-b"
    offered = [m.entry.base_id for m in POLICY.related(faq, include_best=False, answered=chosen)]
    assert offered == ["faq-a", "faq-c"]


def test_no_answer_when_the_search_is_not_clearly_ahead_disagrees_or_the_question_is_off_topic() -> None:
    faq = result(match("faq-a", 0.89), match("faq-b", 0.885))
    close_race = [hit("faq-a-ja", 0.95), hit("faq-b-ja", 0.9, 2)]
    other_first = [hit("plan-x-ja", 1.0), hit("faq-a-ja", 0.5, 2)]
    clear = [hit("faq-a-ja", 1.0), hit("plan-x-ja", 0.5, 2)]
    assert POLICY.choose(faq, hits=close_race) is None
    assert POLICY.choose(faq, hits=other_first) is None
    assert POLICY.choose(faq, hits=clear, in_scope=False) is None
    assert POLICY.choose(faq) is None  # no search, no agreement


def test_a_weak_question_match_is_not_answered_even_when_the_search_agrees() -> None:
    faq = result(match("faq-a", 0.84), match("faq-b", 0.80))
    assert POLICY.choose(faq, hits=[hit("faq-a-ja", 1.0), hit("plan-x-ja", 0.5, 2)]) is None


def test_a_policy_without_search_agreement_needs_the_question_match_alone() -> None:
    faq = result(match("faq-a", 0.89), match("faq-b", 0.80))
    assert QUESTION_MATCH_ONLY.choose(faq, hits=[hit("faq-a-ja", 1.0), hit("plan-x-ja", 0.1, 2)]) is None


def test_a_question_the_scope_gate_calls_off_topic_needs_a_near_rewording_of_the_entry() -> None:
    """A question about changing the bank account one's salary goes to is close to the salary entry, yet off-topic."""
    close = result(match("faq-salary", 0.93), match("faq-b", 0.85))
    assert POLICY.choose(close, in_scope=True) == close.best
    assert POLICY.choose(close, in_scope=False) is None
    rewording = result(match("faq-salary", 0.97), match("faq-b", 0.85))
    assert POLICY.choose(rewording, in_scope=False) == rewording.best


def test_an_alternate_phrasing_matches_its_entry_like_the_title() -> None:
    entries = [
        FaqEntry("faq-a-ja", "faq-a", "ja", "成果報酬の仕組みは？", "答えA", ("成果報酬って最大いくら？",)),
        FaqEntry("faq-b-ja", "faq-b", "ja", "研修はありますか？", "答えB"),
    ]
    index = FaqIndex(entries, HashedNgramEmbedder())
    asked = HashedNgramEmbedder().embed_query("成果報酬って最大いくら？")
    assert index.match(asked, lang="ja").best == FaqMatch(entries[0], pytest.approx(1.0))
