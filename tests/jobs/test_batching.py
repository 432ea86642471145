"""Several comments per LLM request, checked item by item, within the rate budgets."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from service.triage.cascade import BatchItem, RootCauseClassifier
from service.triage.classifier import Classification
from tests.conftest import mock_requests, set_mock_fault
from tests.jobs.conftest import Bulk
from tests.jobs.helpers import distinct_comments, read_output, write_csv

pytestmark = pytest.mark.timeout(900)


def comments_in(request: dict[str, Any]) -> int:
    text = "".join(str(m.get("content", "")) for m in request["messages"])
    return len(re.findall(r'<comment id="\d+">', text))


def test_llm_mode_sends_several_comments_per_request(llm_bulk: Bulk, mock_llm: str, tmp_path: Path) -> None:
    texts = distinct_comments(12)
    path = write_csv(tmp_path / "s.csv", [[str(i), "営業", t] for i, t in enumerate(texts)])
    job, out = llm_bulk.classify(path)
    sent = mock_requests(mock_llm)
    assert [comments_in(r) for r in sent] == [5, 5, 2] or sorted(comments_in(r) for r in sent) == [2, 5, 5]
    assert job.llm_calls == 3 and job.prompt_tokens > 0
    header, *body = read_output(out)
    assert {r[header.index("classifier")] for r in body} == {"llm"}
    assert {r[header.index("model")] for r in body} == {"mock-llm"}
    assert {r[header.index("prompt_id")] for r in body} == {"classify"}


def test_labels_outside_the_taxonomy_fall_back_to_the_local_result_with_a_flag(
    llm_bulk: Bulk, mock_llm: str, tmp_path: Path
) -> None:
    set_mock_fault(mock_llm, "injection")  # the mock answers "hacked" for every comment
    path = write_csv(tmp_path / "s.csv", [[str(i), "営業", t] for i, t in enumerate(distinct_comments(3))])
    job, out = llm_bulk.classify(path)
    header, *body = read_output(out)
    assert {r[header.index("root_cause")] for r in body} <= {"job_fear", "security", "cost", "process", "other"}
    assert {r[header.index("flags")] for r in body} == {"llm_bad_output"}
    assert {r[header.index("classifier")] for r in body} == {"local"}
    assert {r[header.index("needs_review")] for r in body} == {"true"} and job.status == "done"


def test_an_answer_that_is_not_json_falls_back_for_the_whole_batch(
    llm_bulk: Bulk, mock_llm: str, tmp_path: Path
) -> None:
    set_mock_fault(mock_llm, "malformed", times=1)
    path = write_csv(tmp_path / "s.csv", [[str(i), "営業", t] for i, t in enumerate(distinct_comments(7))])
    _, out = llm_bulk.classify(path)
    header, *body = read_output(out)
    flags = [r[header.index("flags")] for r in body]
    # The batches (5 + 2 comments) go out in parallel; whichever got the broken answer falls back as a whole.
    assert flags in (["llm_bad_output"] * 5 + [""] * 2, [""] * 5 + ["llm_bad_output"] * 2)


def test_an_unreachable_llm_leaves_every_row_classified_locally_and_flagged(
    llm_bulk: Bulk, mock_llm: str, tmp_path: Path
) -> None:
    set_mock_fault(mock_llm, "500")
    path = write_csv(tmp_path / "s.csv", [["1", "営業", "費用が高すぎる"], ["2", "営業", "顧客情報が漏れないか"]])
    _, out = llm_bulk.classify(path)
    header, *body = read_output(out)
    assert [r[header.index("flags")] for r in body] == ["llm_unavailable"] * 2
    assert all(r[header.index("root_cause")] and r[header.index("error")] == "" for r in body)


def local(primary: str) -> Classification:
    return Classification(primary, None, 0.4, True, "「…」", "local")


def test_a_missing_item_or_an_unknown_id_only_affects_that_comment() -> None:
    fake: Any = SimpleNamespace
    classifier = RootCauseClassifier(
        local=fake(),
        taxonomy=fake(ids=["job_fear", "cost", "other"]),
        mode="llm",
        threshold=0.6,
        llm=fake(model="m"),
        prompt=fake(id="classify", hash="h"),
    )
    items = [
        BatchItem(id="1", primary="cost", confidence=0.9, is_objection=True, rationale="「高い」"),
        BatchItem(id="7", primary="cost", confidence=0.9, is_objection=True),
        BatchItem(id="3", primary="hacked", confidence=0.9, is_objection=True),
    ]
    results = classifier.match_items(items, [local("other"), local("job_fear"), local("cost")])
    assert (results[0].primary, results[0].classifier, results[0].flags) == ("cost", "llm", ())
    assert (results[1].primary, results[1].classifier, results[1].flags) == ("job_fear", "local", ("llm_bad_output",))
    assert (results[2].primary, results[2].classifier, results[2].flags) == ("cost", "local", ("llm_bad_output",))


def test_personal_data_in_survey_comments_is_redacted_before_a_batch_reaches_the_llm(
    make_bulk: Callable[..., Bulk], mock_llm: str, tmp_path: Path
) -> None:
    bulk = make_bulk(openai_base_url=mock_llm, llm_model="mock-llm", classifier="llm", redact_pii="always")
    texts = ["減給の件は yamada@minato-seiki.example まで", "090-1234-5678 に折り返しください、委託料が高い"]
    job, _ = bulk.classify(write_csv(tmp_path / "s.csv", [[str(i), "営業", t] for i, t in enumerate(texts)]))
    sent = str(mock_requests(mock_llm))
    assert job.llm_calls == 1 and "<comment id=" in sent, "both comments went out in one batch"
    assert "yamada@" not in sent and "090-1234-5678" not in sent and "[email]" in sent
