"""The sample knowledge base is the demo and the ground of the evals: check what the issue promised."""

from collections import Counter
from pathlib import Path

import yaml

from service.config import PROJECT_ROOT
from service.retrieval.documents import ROOT_CAUSES, load_documents
from service.retrieval.evaluation import load_cases

KNOWLEDGE = PROJECT_ROOT / "knowledge"


def test_every_knowledge_file_parses() -> None:
    result = load_documents(KNOWLEDGE)
    assert result.skipped == []


def test_there_are_at_least_40_faq_pairs_and_12_risks_in_each_language() -> None:
    counts = Counter((d.meta.type, d.meta.lang) for d in load_documents(KNOWLEDGE).documents)
    assert counts[("faq", "ja")] >= 40 and counts[("faq", "en")] >= 40
    assert counts[("risk", "ja")] >= 12 and counts[("risk", "en")] >= 12
    assert counts[("plan", "ja")] >= 1 and counts[("plan", "en")] >= 1


def test_every_japanese_document_has_an_english_version_with_the_same_root_causes() -> None:
    docs = {d.doc_id: d for d in load_documents(KNOWLEDGE).documents}
    japanese = {doc_id[:-3]: doc for doc_id, doc in docs.items() if doc_id.endswith("-ja")}
    english = {doc_id[:-3]: doc for doc_id, doc in docs.items() if doc_id.endswith("-en")}
    assert len(japanese) >= 53  # the 40 FAQ pairs, 12 risks and the plan counted above
    assert set(japanese) == set(english)
    for stem, doc in japanese.items():
        assert (english[stem].meta.root_causes, english[stem].meta.type) == (doc.meta.root_causes, doc.meta.type), stem


def test_faq_covers_every_root_cause() -> None:
    causes = {c for d in load_documents(KNOWLEDGE).documents if d.meta.type == "faq" for c in d.meta.root_causes}
    assert causes == set(ROOT_CAUSES)


def test_taxonomy_has_the_five_labels_with_ten_examples_per_language() -> None:
    taxonomy = yaml.safe_load((KNOWLEDGE / "taxonomy.yaml").read_text(encoding="utf-8"))
    labels = taxonomy["labels"]
    assert [label["id"] for label in labels] == list(ROOT_CAUSES)
    for label in labels:
        assert label["name"]["ja"] and label["description"]["en"]
        assert len(set(label["examples"]["ja"])) >= 10 and len(set(label["examples"]["en"])) >= 10


def test_retrieval_questions_point_at_documents_that_exist_and_are_not_copied_from_them() -> None:
    docs = load_documents(KNOWLEDGE).documents
    ids, titles = {d.doc_id for d in docs}, {d.meta.title for d in docs}
    cases = load_cases(PROJECT_ROOT / "evals/datasets/retrieval.jsonl")
    assert len(cases) >= 60 and {c.lang for c in cases} == {"ja", "en"}
    assert len({c.id for c in cases}) == len(cases)
    for case in cases:
        assert set(case.doc_ids) <= ids, case.id
        assert case.question not in titles, case.id


def test_the_synonyms_file_parses(tmp_path: Path) -> None:
    groups = yaml.safe_load((KNOWLEDGE / "synonyms.yaml").read_text(encoding="utf-8"))["groups"]
    assert all(isinstance(g, list) and len(g) >= 2 for g in groups)
