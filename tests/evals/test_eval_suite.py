"""The eval suite is honest (the mock never sees gold labels), deterministic, and its gate names what dropped."""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import yaml

from service.config import PROJECT_ROOT, Settings
from service.evals.datasets import (
    DATASETS,
    ArticleCase,
    Objection,
    load_crosslingual,
    load_jsonl,
    load_questions,
)
from service.evals.report import check_thresholds, write_reports
from service.evals.runner import Recorder, eval_environment, judge_faithfulness, run_objections, run_suite
from service.llm.client import Usage
from service.retrieval.chunking import split_sections
from service.retrieval.documents import load_documents
from tests.conftest import make_settings

OBJECTIONS = [
    {
        "id": "t-1",
        "lang": "ja",
        "text": "外注したら俺たちの仕事なくなるんじゃないの？",
        "root_cause": "job_fear",
        "is_objection": True,
        "split": "dev",
    },
    {
        "id": "t-2",
        "lang": "en",
        "text": "Who signs off on quotes once the vendor handles my accounts?",
        "root_cause": "process",
        "is_objection": False,
        "split": "test",
    },
    {
        "id": "t-3",
        "lang": "ja",
        "text": "顧客名簿を外の会社に渡して漏えいしたら誰が責任取るの",
        "root_cause": "security",
        "is_objection": True,
        "split": "test",
    },
]
QUESTIONS = [
    {
        "id": "q-1",
        "lang": "ja",
        "question": "ボーナスって減らされるの？",
        "doc_ids": ["faq-cost-08-ja", "faq-cost-08-en"],
        "answerable": True,
        "split": "dev",
    },
    {
        "id": "q-2",
        "lang": "en",
        "question": "What's the Wi-Fi password for the guest network?",
        "doc_ids": [],
        "answerable": False,
        "split": "test",
    },
]
APPROVED = [
    {
        "id": "a-1",
        "lang": "ja",
        "approved_question": "外注が始まったら営業は解雇されますか？",
        "approved_answer": "解雇はありません。",
        "split": "test",
        "probes": [
            {"text": "外注が始まったら営業は解雇されるの？", "should_hit": True},
            {"text": "外注の費用はいくらですか？", "should_hit": False},
        ],
    },
]


ARTICLE = [
    {
        "id": "art-1",
        "lang": "ja",
        "question": "アンケートは匿名にすべき？",
        "sections": ["社内アンケート"],
        "split": "test",
    },
    {
        "id": "art-2",
        "lang": "en",
        "question": "Should the survey be anonymous?",
        "sections": ["社内アンケート"],
        "split": "test",
    },
]
FILLER = {
    "進捗報告会": "進捗報告会は対面で開き、質疑応答の時間を設けます。",
    "目標": "売上目標を数値で示すと経営層が判断しやすくなります。",
}
CORPUS = (
    "---\nid: article-test-ja\ntype: doc\ntitle: 社内調整の進め方\nlang: ja\n---\n"
    + "".join(f"## {head}\n{sentence * 20}\n" for head, sentence in FILLER.items())
    + "## 社内向けアンケート\n### 社内アンケート\nアンケートは匿名で実施すると、率直な意見が集まります。\n"
)  # five chunks: recall@3 means something


def write_datasets(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows_by_name = (("objections", OBJECTIONS), ("questions", QUESTIONS), ("approved", APPROVED), ("article", ARTICLE))
    for name, rows in rows_by_name:
        (folder / f"{name}.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), "utf-8")
    (folder / "retrieval.jsonl").write_text("", encoding="utf-8")
    (folder.parent / "corpora").mkdir(exist_ok=True)
    (folder.parent / "corpora" / "article-test-ja.md").write_text(CORPUS, encoding="utf-8")
    return folder


@pytest.fixture
def base(indexed_settings: Settings) -> Settings:
    return make_settings(indexed_settings.data_dir)


def test_the_mock_llm_is_sent_the_comments_and_never_their_gold_labels(base: Settings) -> None:
    cases = [Objection.model_validate(o) for o in OBJECTIONS]
    # Curated FAQ answers are classified locally with no LLM call; switched off here so every objection is sent.
    no_faq = {"classifier": "llm", "faq_min_similarity": 1.0, "faq_agree_min_similarity": 1.0}
    with eval_environment(base.model_copy(update=no_faq), llm="mock") as env:
        run_objections(env, cases, Recorder(), lambda *_: None)
        assert env.mock_url
        sent = httpx.get(env.mock_url.removesuffix("/v1") + "/mock/requests").json()
    users = [m["content"] for body in sent for m in body["messages"] if m["role"] == "user"]
    assert users, "the classifier should have asked the LLM"
    for case in OBJECTIONS:
        assert any(str(case["text"]) in u for u in users)
    for body in sent:
        text = json.dumps(body, ensure_ascii=False)
        assert '"root_cause"' not in text and "gold" not in text and 'is_objection": true' not in text


def test_two_runs_on_the_mock_give_identical_quality_numbers(base: Settings, tmp_path: Path) -> None:
    datasets = write_datasets(tmp_path / "datasets")
    first = run_suite(base, llm="mock", datasets=datasets)
    second = run_suite(base, llm="mock", datasets=datasets)
    assert first["metrics"] == second["metrics"]
    assert first["metrics"]["test"]["all"]["abstention"]["n"] == 1
    assert first["metrics"]["test"]["all"]["approved"]["recall"] == 1.0
    # The long article is indexed alone and scored by section, in both languages.
    article = first["metrics"]["test"]["all"]["article"]
    assert (article["n"], article["recall_at_3"]) == (2, 1.0)
    assert first["metrics"]["test"]["en"]["article"]["n"] == 1


def test_a_metric_under_its_threshold_fails_the_gate_by_name(base: Settings, tmp_path: Path) -> None:
    report = run_suite(base, llm="none", datasets=write_datasets(tmp_path / "datasets"))
    gate = tmp_path / "thresholds.yaml"
    gate.write_text(
        yaml.safe_dump(
            {"metrics": {"citations.validity": {"min": 0.0}, "approved.recall": {"min": 1.01, "measured": 1.0}}}
        ),
        "utf-8",
    )
    failures = check_thresholds(report, gate)
    assert len(failures) == 1 and failures[0].startswith("approved.recall = 1.000, below the threshold 1.01")


def test_the_html_report_has_the_confusion_matrix_and_every_item(base: Settings, tmp_path: Path) -> None:
    report = run_suite(base, llm="none", datasets=write_datasets(tmp_path / "datasets"))
    html = write_reports(report, tmp_path / "out" / "report.json").read_text(encoding="utf-8")
    assert "Confusion matrix" in html and all(str(o["id"]) in html for o in OBJECTIONS)
    # The second yardstick: the local classifier on its own taxonomy examples, each held out once.
    taxonomy = yaml.safe_load((PROJECT_ROOT / "knowledge" / "taxonomy.yaml").read_text(encoding="utf-8"))
    examples = sum(len(label["examples"][lang]) for label in taxonomy["labels"] for lang in ("ja", "en"))
    cv = report["cross_validation"]
    assert cv["n"] == examples and 0.5 < cv["accuracy"] < 1.0
    assert f"cross-validation over the taxonomy's {examples} examples" in html
    assert json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))["meta"]["llm"] == "none"


def _norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def test_no_eval_comment_is_among_the_classifier_training_examples() -> None:
    taxonomy = yaml.safe_load((PROJECT_ROOT / "knowledge" / "taxonomy.yaml").read_text(encoding="utf-8"))
    examples = {_norm(e) for label in taxonomy["labels"] for lang in ("ja", "en") for e in label["examples"][lang]}
    items = [_norm(o.text) for o in load_jsonl(DATASETS / "objections.jsonl", Objection)]
    assert len(items) >= 200
    assert not [t for t in items if t in examples or any(t in e or e in t for e in examples if len(e) > 12)]


def test_the_faithfulness_judge_is_shown_the_text_of_the_cited_passages() -> None:
    seen: list[str] = []

    class Judge:
        def structured(
            self, messages: list[dict[str, str]], schema: Any, *, name: str, deadline: float | None = None
        ) -> tuple[Any, Usage]:
            seen.append(messages[-1]["content"])
            return schema(score=1.0, reason="supported"), Usage(calls=1)

    env: Any = SimpleNamespace(triage=SimpleNamespace(llm=Judge()), mock_url=None)
    rec = Recorder()
    passage = "[1] 雇用に関する約束: 解雇や強制的な異動は行いません。"
    rec.items.append(
        {"kind": "question", "abstained": False, "answer": "解雇はありません。[1]", "cited_passages": [passage]}
    )
    assert judge_faithfulness(env, rec) == 1.0
    assert passage in seen[0] and "解雇はありません。[1]" in seen[0]


def test_the_article_questions_name_sections_of_the_article_in_both_languages_and_splits() -> None:
    cases = load_jsonl(DATASETS / "article.jsonl", ArticleCase)
    [article] = load_documents(DATASETS.parent / "corpora").documents
    headings = {s.path[-1] for s in split_sections(article.body) if s.path}
    assert len(cases) >= 40 and len({c.id for c in cases}) == len(cases)
    assert all(set(c.sections) <= headings for c in cases), [c.id for c in cases if not set(c.sections) <= headings]
    counts = Counter((c.lang, c.split) for c in cases)
    assert min(counts[lang, split] for lang in ("ja", "en") for split in ("dev", "test")) >= 10, counts
    assert (article.meta.type, article.meta.lang) == ("doc", "ja")


def test_the_cross_lingual_items_are_english_questions_searched_in_japanese_documents_only() -> None:
    cases = load_crosslingual()
    assert len(cases) >= 20 and {c.split for c in cases} == {"dev", "test"}
    assert all(c.lang == "en" and c.search_lang == "ja" and any(d.endswith("-ja") for d in c.doc_ids) for c in cases)
    assert not {c.id for c in cases} & {q.id for q in load_questions()}  # retrieval only, never asked
