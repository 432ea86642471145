"""The eval suite is honest (the mock never sees gold labels), deterministic, and its gate names what dropped."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import yaml

from service.config import PROJECT_ROOT, Settings
from service.evals.datasets import DATASETS, Objection, load_jsonl
from service.evals.report import check_thresholds, write_reports
from service.evals.runner import Recorder, eval_environment, judge_faithfulness, run_objections, run_suite
from service.llm.client import Usage
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


def write_datasets(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("objections", OBJECTIONS), ("questions", QUESTIONS), ("approved", APPROVED)):
        (folder / f"{name}.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), "utf-8")
    (folder / "retrieval.jsonl").write_text("", encoding="utf-8")
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
