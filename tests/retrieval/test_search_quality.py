"""Retrieval quality gate on evals/datasets/retrieval.jsonl (numbers measured in benchmarks/retrieval.py)."""

from collections.abc import Iterator

import pytest

from service.bootstrap import clients
from service.config import PROJECT_ROOT, Settings
from service.retrieval.evaluation import load_cases, score_retrieval
from service.retrieval.service import KnowledgeIndex, search_passages

# Measured 2026-11-29 on all 90 questions (benchmarks/retrieval.py): hybrid recall@3 0.922,
# dense 0.856, lexical 0.778. The gate sits two questions below the measured value.
MIN_HYBRID_RECALL_AT_3 = 0.90


@pytest.fixture(scope="module")
def knowledge(indexed_settings: Settings) -> Iterator[KnowledgeIndex]:
    with clients(indexed_settings) as opened:  # closed after the module: the CLI tests open the same store
        opened.knowledge.refresh()
        yield opened.knowledge


@pytest.mark.parametrize(
    "question", ["外注が始まったら営業はクビになるの？", "Will sales people get fired once the outsourcing starts?"]
)
def test_the_layoff_question_finds_the_job_security_faq_in_the_top_3(knowledge: KnowledgeIndex, question: str) -> None:
    doc_ids = [h.doc_id for h in search_passages(knowledge, query=question, k=3)]
    assert {"faq-job-01-ja", "faq-job-01-en"} & set(doc_ids), doc_ids


def test_hybrid_search_is_at_least_as_good_as_either_method_and_above_the_gate(knowledge: KnowledgeIndex) -> None:
    cases = [c for c in load_cases(PROJECT_ROOT / "evals/datasets/retrieval.jsonl") if not c.search_lang]
    scores = {m: score_retrieval(knowledge, cases, method=m) for m in ("dense", "lexical", "hybrid")}
    hybrid = scores["hybrid"]
    assert hybrid.recall_at_3 >= MIN_HYBRID_RECALL_AT_3, hybrid.misses_at_3
    assert hybrid.recall_at_3 >= max(scores["dense"].recall_at_3, scores["lexical"].recall_at_3)
    assert hybrid.mrr >= scores["lexical"].mrr


class _Keys:
    """Question keys that name one document at a given similarity, whatever the question."""

    def __init__(self, doc_id: str, similarity: float) -> None:
        self.doc_id, self.similarity = doc_id, similarity

    def closest_document(self, vector: object, *, lang: str) -> tuple[str, float] | None:
        return self.doc_id, self.similarity


def test_a_document_whose_curated_question_is_close_gets_a_place_among_the_first_three(
    knowledge: KnowledgeIndex,
) -> None:
    question = "引き継ぎの同行期間は何週間ですか？"
    plain = [h.doc_id for h in search_passages(knowledge, query=question, k=5)]
    keyed = "faq-cost-02-ja"  # an FAQ entry the search itself does not put first for this question
    assert keyed not in plain[:3]
    try:
        knowledge.question_keys = _Keys(keyed, 0.95)
        hits = search_passages(knowledge, query=question, k=5)
        assert [h.doc_id for h in hits][:2] == plain[:2]  # the search's own first two stay
        assert hits[2].doc_id == keyed and [h.rank for h in hits] == [1, 2, 3, 4, 5]
        assert len({h.chunk_id for h in hits}) == 5
        # Not close enough, or a search for other types of document: the search's own order.
        knowledge.question_keys = _Keys(keyed, 0.89)
        assert [h.doc_id for h in search_passages(knowledge, query=question, k=5)] == plain
        knowledge.question_keys = _Keys(keyed, 0.95)
        assert keyed not in [h.doc_id for h in search_passages(knowledge, query=question, k=5, types=["plan"])]
        # Nor a document in another language than the one searched.
        english = search_passages(knowledge, query=question, k=5, lang="en")
        assert english and all(h.lang == "en" for h in english)
    finally:
        knowledge.question_keys = None
