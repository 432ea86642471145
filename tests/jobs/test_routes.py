"""The jobs API through HTTP: upload, progress, events, results, report, limits, and a restart mid-job."""

from __future__ import annotations

import html
import io
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.auth.deps import signed_in_reviewer
from service.config import Settings
from service.jobs.problems import FileProblem
from service.main import create_app
from service.web.i18n import TEXTS
from tests.conftest import make_settings, set_mock_fault
from tests.jobs.helpers import distinct_comments, survey_rows, write_csv
from tests.test_api import wait_ready

pytestmark = pytest.mark.timeout(900)


@pytest.fixture
def settings(indexed_settings: Settings, tmp_path: Path) -> Settings:
    return make_settings(indexed_settings.data_dir, database_url=f"sqlite:///{tmp_path / 'api.db'}", upload_max_mb=1)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(reviewer_app(settings)) as test_client:
        wait_ready(test_client)
        yield test_client


def reviewer_app(settings: Settings) -> FastAPI:
    """The app with every request taken as a reviewer's: who may run jobs is tested in tests/review."""
    app = create_app(settings)
    app.dependency_overrides[signed_in_reviewer] = lambda: None
    return app


def upload(client: TestClient, path: Path, **fields: str) -> dict[str, object]:
    with path.open("rb") as handle:
        response = client.post("/v1/jobs/classify", files={"file": (path.name, handle, "text/csv")}, data=fields)
    assert response.status_code == 202, response.text
    return response.json()  # type: ignore[no-any-return]


def wait_for(
    client: TestClient, job_id: str, *, done_rows: int | None = None, seconds: float = 600
) -> dict[str, object]:
    """The job once it is done (or has at least done_rows rows)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("done", "failed") or (done_rows is not None and job["done_rows"] >= done_rows):
            return job  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {job['status']} at {job['done_rows']} rows")


def test_an_uploaded_survey_is_classified_and_its_results_and_report_are_downloadable(
    client: TestClient, tmp_path: Path
) -> None:
    created = upload(client, write_csv(tmp_path / "survey.csv", survey_rows(10)))
    assert created["total_rows"] == 10 and created["text_column"] == "コメント"
    job = wait_for(client, str(created["id"]))
    assert job["status"] == "done" and job["done_rows"] == 10 and job["percent"] == 100.0

    csv_response = client.get(f"/v1/jobs/{job['id']}/result?format=csv")
    assert csv_response.status_code == 200 and csv_response.content.startswith(b"\xef\xbb\xbf")
    lines = csv_response.content.decode("utf-8-sig").splitlines()
    assert len(lines) == 11 and lines[0].startswith("回答ID,部署,コメント,root_cause")

    from openpyxl import load_workbook

    xlsx = client.get(f"/v1/jobs/{job['id']}/result", params={"format": "xlsx"})
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None and sheet.max_row == 11
    # Opened in Excel: a frozen header with filters, readable widths, ids as numbers, cause names beside the ids.
    header = [c.value for c in sheet[1]]
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == f"A1:{sheet.cell(1, len(header)).column_letter}11"
    assert sheet.column_dimensions["C"].width == 60 and sheet.column_dimensions["A"].width == 12
    assert [sheet.cell(r, 1).value for r in range(2, 5)] == [1, 2, 3]
    cause = header.index("根本原因（ID）")
    assert header[cause + 1] == "根本原因（名称）" and "副次的な原因（名称）" in header
    ids, names = (
        {sheet.cell(r, cause + 1).value for r in range(2, 12)},
        {sheet.cell(r, cause + 2).value for r in range(2, 12)},
    )
    assert "job_fear" in ids and "雇用・キャリアへの不安" in names  # the machine id keeps its own column
    # A Japanese file speaks Japanese: headers, yes/no, the classifier's name and the sheet's name.
    assert sheet.title == "分類済み"
    assert header[3:] == [
        "根本原因（ID）", "根本原因（名称）", "副次的な原因（ID）", "副次的な原因（名称）", "確信度", "反対・懸念か",
        "要確認", "該当FAQのID", "該当FAQ", "分類方法", "モデル", "プロンプトID", "注意事項", "エラー",
    ]  # fmt: skip
    column = {name: header.index(name) + 1 for name in header}
    objection_cells = {sheet.cell(r, column["反対・懸念か"]).value for r in range(2, 12)}
    assert objection_cells <= {"はい", "いいえ", None} and objection_cells & {"はい", "いいえ"}
    assert {sheet.cell(r, column["要確認"]).value for r in range(2, 12)} <= {"はい", "いいえ", None}
    assert {sheet.cell(r, column["分類方法"]).value for r in range(2, 12)} <= set(TEXTS["ja"]["classifiers"].values())
    english = load_workbook(io.BytesIO(client.get(f"/v1/jobs/{job['id']}/result?format=xlsx&lang=en").content)).active
    assert english is not None and "Root cause (name)" in [c.value for c in english[1]]
    assert "Job and career fear" in {english.cell(r, cause + 2).value for r in range(2, 12)}
    # An English file is as it was: the machine names and values scripts read.
    english_header = [c.value for c in english[1]]
    assert english.title == "classified" and english_header[3:6] == [
        "root_cause",
        "Root cause (name)",
        "secondary_cause",
    ]
    objection = english_header.index("is_objection") + 1
    assert {english.cell(r, objection).value for r in range(2, 12)} <= {True, False}
    assert {english.cell(r, english_header.index("classifier") + 1).value for r in range(2, 12)} == {"local"}

    report = client.get(f"/v1/jobs/{job['id']}/report")
    assert report.headers["content-type"].startswith("text/html") and report.text.count("<svg") == 2
    # /jobs links to the report at a page's address: the same report, and a browser's unknown job is an error page.
    done = client.get(f"/v1/jobs/{job['id']}").json()
    assert done["links"]["report"] == f"/jobs/{job['id']}" and client.get(done["links"]["report"]).text == report.text
    missing = client.get("/jobs/no-such-job", headers={"accept": "text/html"})
    assert missing.status_code == 404 and 'id="site-header"' in missing.text and "no job with id" not in missing.text
    # One language in the report, tooltips included, and no job id among the words a reader sees.
    assert "雇用・キャリアへの不安: " in report.text and "Job and career fear" not in report.text
    assert " / " not in visible_text(report.text) and str(job["id"]) not in visible_text(report.text)

    events = client.get(f"/v1/jobs/{job['id']}/events").text.strip().split("\n\n")
    last = dict(line.split(": ", 1) for line in events[-1].splitlines())
    assert last["event"] == "done" and json.loads(last["data"])["done_rows"] == 10


def test_an_upload_over_the_size_limit_is_a_413_that_says_the_limit(client: TestClient, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "big.csv", [[str(i), "営業", "あ" * 500] for i in range(1200)])  # about 1.8 MB
    with path.open("rb") as handle:
        response = client.post("/v1/jobs/classify", files={"file": ("big.csv", handle, "text/csv")})
    assert response.status_code == 413 and "1 MB upload limit" in response.json()["error"]
    # Refused before the route reads it, with the code and limit the /jobs page words in the reader's language.
    assert response.json()["detail"] | {"limit_bytes": 0} == {"code": "too_large", "limit_mb": 1, "limit_bytes": 0}


def visible_text(page: str) -> str:
    """The words of an HTML page a reader sees (tooltips of SVG charts included), without tags and attributes."""
    return html.unescape(re.sub(r"<style.*?</style>|<script.*?</script>|<[^>]*>", " ", page, flags=re.S))


@pytest.mark.parametrize(
    ("name", "content", "message", "code"),
    [
        ("survey.csv", b"", "is empty", FileProblem.empty_file),
        ("survey.csv", "id,コメント\r\n".encode("cp932"), "no data rows", FileProblem.no_rows),
        ("survey.csv", b"\x00\x01\x02" * 100, "not a text file", FileProblem.not_text),
        ("bad.csv", b"a,b\n\n", "no data rows", FileProblem.no_rows),
        ("bad.csv", b"a,b\n1,2\n3,4\n", "no column that looks like free text", FileProblem.no_text_column),
        ("bad.csv", b"a,b\n\x81 1,2\n" * 20, "UTF-8 or Shift_JIS", FileProblem.undecodable),
        ("old.xls", b"\xd0\xcf\x11\xe0" + b"\x00" * 600, ".xls", FileProblem.xls_file),
        ("book.xlsx", b"PK\x03\x04 not really a zip", "not a readable XLSX", FileProblem.unreadable_xlsx),
        ("a.jsonl", b"[1]\n[2]\n", "no JSON objects", FileProblem.no_json_objects),
        ("out.csv", "root_cause,コメント\nx,不安です\n".encode(), "already has the column", FileProblem.result_columns),
    ],
)
def test_a_file_that_cannot_be_classified_is_a_422_with_the_reason_and_its_code(
    client: TestClient, name: str, content: bytes, message: str, code: FileProblem
) -> None:
    response = client.post("/v1/jobs/classify", files={"file": (name, content, "text/csv")})
    body = response.json()
    assert response.status_code == 422 and message in body["error"]  # API clients keep the English reason
    assert body["detail"]["code"] == code  # the page words it in its own language from the code
    assert set(re.findall(r"\{(\w+)\}", TEXTS["ja"]["jobs"]["problems"][code])) <= set(body["detail"])


def test_a_named_column_that_is_not_there_is_refused_with_the_columns_of_the_file(client: TestClient) -> None:
    content = "年齢,感想\n30,とても不安です\n".encode()
    response = client.post(
        "/v1/jobs/classify", files={"file": ("s.csv", content, "text/csv")}, data={"text_column": "コメント"}
    )
    detail = response.json()["detail"]
    assert response.status_code == 422 and detail == {
        "code": "unknown_column",
        "name": "コメント",
        "columns": ["年齢", "感想"],
    }


def test_every_file_problem_is_worded_in_both_languages_on_the_upload_page(client: TestClient) -> None:
    for lang in ("ja", "en"):
        problems = TEXTS[lang]["jobs"]["problems"]
        assert set(FileProblem) <= set(problems), set(FileProblem) - set(problems)
        page = client.get("/jobs", params={"lang": lang}).text
        carried = re.search(r'data-problems="([^"]*)"', page)
        assert carried is not None and json.loads(html.unescape(carried.group(1))) == problems
    assert all(re.search(r"[ぁ-んァ-ン一-龥]", text) for text in TEXTS["ja"]["jobs"]["problems"].values())


def test_a_request_without_a_file_is_a_422(client: TestClient) -> None:
    response = client.post("/v1/jobs/classify", data={"text_column": "x"})
    assert response.status_code == 422 and "field `file`" in response.json()["error"]
    assert response.json()["detail"] == {"code": "no_file"}


def test_an_unknown_job_is_a_404(client: TestClient) -> None:
    assert client.get("/v1/jobs/nope").status_code == 404
    assert client.get("/v1/jobs/nope/result").status_code == 404
    assert client.get("/v1/jobs/nope/events").status_code == 404  # before any stream starts


def test_the_upload_page_has_a_form_for_reviewers(client: TestClient) -> None:
    page = client.get("/jobs")
    assert page.status_code == 200 and 'type="file"' in page.text and "/v1/jobs/classify" in page.text


def test_a_job_survives_a_server_restart_and_completes(
    indexed_settings: Settings, mock_llm: str, tmp_path: Path
) -> None:
    settings = make_settings(
        indexed_settings.data_dir,
        database_url=f"sqlite:///{tmp_path / 'api.db'}",
        openai_base_url=mock_llm,
        llm_model="mock-llm",
        classifier="llm",
    )
    set_mock_fault(mock_llm, "latency:300")
    total = 400
    path = write_csv(tmp_path / "survey.csv", [[str(i + 1), "営業", t] for i, t in enumerate(distinct_comments(total))])
    with TestClient(reviewer_app(settings)) as first:
        wait_ready(first)
        job_id = str(upload(first, path)["id"])
        wait_for(first, job_id, done_rows=1)
    # The first server stopped after the chunk it was on; the job is unfinished.
    set_mock_fault(mock_llm, None)
    with TestClient(reviewer_app(settings)) as second:
        stopped = second.get(f"/v1/jobs/{job_id}").json()
        assert stopped["status"] == "running" and 0 < stopped["done_rows"] < total
        wait_ready(second)
        job = wait_for(second, job_id)
        assert job["status"] == "done" and job["done_rows"] == total
        lines = second.get(f"/v1/jobs/{job_id}/result").content.decode("utf-8-sig").splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == [str(i + 1) for i in range(total)]


def test_a_job_that_breaks_unexpectedly_is_reported_failed_not_left_running(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("service.jobs.runner.run_job", broken)
    created = upload(client, write_csv(tmp_path / "survey.csv", survey_rows(3)))
    job = wait_for(client, str(created["id"]), seconds=60)
    assert job["status"] == "failed" and "RuntimeError" in str(job["message"])
