"""benchmarks/chunking.py on a two-document knowledge folder with the fake embedder, so the script does not rot."""

from pathlib import Path

import pytest

from benchmarks.chunking import adopt, broken_faq_documents, chunkers, langchain_chunker, measure
from service.retrieval.chunking import chunk_document
from service.retrieval.documents import load_documents
from service.retrieval.evaluation import RetrievalCase
from tests.fakes import HashedNgramEmbedder
from tests.retrieval.helpers import write_doc

pytest.importorskip("langchain_text_splitters")

FAQ = "## Q: 研修はありますか？\n営業部員向けに60時間のリスキリング研修があります。費用は会社が負担します。"
PLAN = (
    "# 体制\n## 役割\nPMOは経営企画部が担います。\n\n## 日程\n2027年4月に第一段階を始めます。" + "準備を進めます。" * 40
)


def make_knowledge(folder: Path) -> Path:
    write_doc(folder, "faq-training-ja", FAQ)
    write_doc(folder, "plan-roles-ja", PLAN, doc_type="plan")
    return folder


def make_cases() -> dict[str, list[RetrievalCase]]:
    return {
        "dev": [
            RetrievalCase(id="d1", lang="ja", question="リスキリング研修は何時間？", doc_ids=["faq-training-ja"]),
            RetrievalCase(id="d2", lang="ja", question="PMOはどこの部署？", doc_ids=["plan-roles-ja"]),
        ]
    }


def test_every_chunker_indexes_and_is_scored_on_the_dev_questions(tmp_path: Path) -> None:
    knowledge = make_knowledge(tmp_path / "knowledge")
    results = {
        label: measure(
            chunker,
            knowledge_dir=knowledge,
            cases=make_cases(),
            embedder=HashedNgramEmbedder(),
            data_dir=tmp_path / label,
            max_tokens=80,
        )
        for label, chunker in chunkers().items()
    }
    for result in results.values():
        assert result["chunks"] >= 2 and result["max_tokens"] <= 80 and not result["faq_broken"]
        assert set(result["scores"]["dev"]) == {"dense", "lexical", "hybrid"}
        assert result["scores"]["dev"]["hybrid"]["n"] == 2
    assert adopt(results, candidate="today")


def test_a_faq_entry_cut_in_two_is_reported_and_blocks_adoption(tmp_path: Path) -> None:
    docs = load_documents(make_knowledge(tmp_path)).documents
    assert broken_faq_documents(docs, chunk_document, max_tokens=400) == []
    assert broken_faq_documents(docs, langchain_chunker(), max_tokens=20) == ["faq-training-ja"]
    dev = {"hybrid": {"recall_at_3": 1.0}}
    results = {
        "today": {"faq_broken": [], "scores": {"dev": dev}},
        "other": {"faq_broken": ["x"], "scores": {"dev": dev}},
    }
    assert not adopt(results, candidate="other")
    results["other"]["faq_broken"] = []
    assert adopt(results, candidate="other")
