"""GET /v1/reports/objections and /dashboard through the real app, fed by /v1/ask and /v1/feedback."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from service.auth.deps import signed_in_reviewer
from service.config import Settings
from service.main import create_app
from service.reports.records import iso_week
from tests.conftest import make_settings
from tests.test_api import wait_ready

EMAIL = "hanako.suzuki@minato-seiki.example"


@pytest.fixture
def client(indexed_settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    """The app on a database of its own, with no questions yet."""
    app = create_app(make_settings(indexed_settings.data_dir, database_url=f"sqlite:///{tmp_path / 'reports.db'}"))
    app.dependency_overrides[signed_in_reviewer] = lambda: None  # who may read reports is tested in tests/review
    with TestClient(app) as test_client:
        wait_ready(test_client)
        yield test_client


@pytest.fixture
def seeded(client: TestClient) -> TestClient:
    """Five questions asked through /v1/ask, one answer rated not helpful with an email in the comment."""
    seed(client)
    return client


def ask(client: TestClient, question: str, department: str | None = None) -> str:
    body = client.post("/v1/ask", json={"question": question, "department": department, "source": "widget"}).json()
    return str(body["id"])


def seed(client: TestClient) -> None:
    ask(client, "外注が始まったら営業はクビになるの？", "営業部")
    ask(client, "外注が始まったら、営業はクビになるの？", "営業部")
    ask(client, "顧客データが漏れたらどうするの？", "情報システム部")
    ask(client, "Who won the baseball game last night?")
    answer = ask(client, "ボーナスは減りますか？", "営業部")
    client.post("/v1/feedback", json={"id": answer, "helpful": False, "comment": f"違う。{EMAIL} に返事を"})


def test_the_objections_api_counts_what_was_asked_by_cause_department_and_week(seeded: TestClient) -> None:
    report = seeded.get("/v1/reports/objections").json()
    assert report["rates"]["questions"] == 5 and report["grouping"] == "embedding"
    assert sum(c["questions"] for c in report["counts"]) == 5
    assert report["weeks"] == [iso_week(datetime.now(ZoneInfo("Asia/Tokyo")).date())]  # asked just now, in Japan time
    layoffs = [c for c in report["counts"] if c["department"] == "営業部" and c["root_cause"] == "job_fear"]
    assert layoffs and layoffs[0]["questions"] >= 2
    assert report["rates"]["abstained"] == 1 and report["rates"]["abstention_rate"] == 0.2
    assert report["rates"]["approval_rate"] is None  # nothing reviewed yet: no rate, not 0%
    unanswered = {g["representative"]: g for g in report["unanswered"]}
    assert set(unanswered) == {"Who won the baseball game last night?", "ボーナスは減りますか？"}
    assert unanswered["ボーナスは減りますか？"]["comments"] == ["違う。[email] に返事を"]
    top = report["recurring"][0]
    assert (top["count"], top["representative"]) == (2, "外注が始まったら営業はクビになるの？")


def test_the_api_filters_by_department_and_source(seeded: TestClient) -> None:
    def report(**params: str) -> dict[str, Any]:
        return seeded.get("/v1/reports/objections", params=params).json()  # type: ignore[no-any-return]

    assert report(department="情報システム部")["rates"]["questions"] == 1
    assert report(source="widget")["rates"]["questions"] == 5 and report(source="survey")["empty"] is True
    assert report(since="2000-01-01", until="2000-01-31")["empty"] is True


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"since": "2026-13-01"}, "since: Input should be a valid date"),
        ({"since": "2026-12-01", "until": "2026-11-01"}, "since (2026-12-01) is after until (2026-11-01)"),
        ({"source": "fax"}, "source: Input should be"),
    ],
)
def test_bad_filters_are_a_422_that_says_what_to_fix(client: TestClient, params: dict[str, str], message: str) -> None:
    response = client.get("/v1/reports/objections", params=params)
    assert response.status_code == 422 and message in response.json()["error"]


def test_the_dashboard_shows_charts_tables_and_redacted_quotes(seeded: TestClient) -> None:
    page = seeded.get("/dashboard")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    charts = re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', html)
    assert len(charts) == 2 and all(b"<svg" in base64.b64decode(c) for c in charts)
    assert "反対意見ダッシュボード" in html and "繰り返し出る反対意見" in html
    assert "ナレッジベースで答えられなかった質問" in html and "Most recurring objections" not in html
    assert "ボーナスは減りますか？" in html and "[email]" in html and EMAIL not in html
    assert '<option value="情報システム部"' in html
    # Offline, nobody has reviewed them yet: the objection count says it is the classifier's guess.
    assert re.search(r"うち \d+ 件は未確認です", html)
    english = seeded.get("/dashboard", params={"lang": "en"}).text
    assert "Most recurring objections" in english and "反対意見ダッシュボード" not in english
    assert re.search(r"\d+ of them are not yet checked", english)


def test_the_dashboard_keeps_the_chosen_filters_and_an_empty_form_means_no_filter(seeded: TestClient) -> None:
    html = seeded.get("/dashboard", params={"since": "", "until": "", "source": "", "department": "営業部"}).text
    assert '<option value="営業部" selected>' in html and "顧客データ" not in html


def test_the_plan_feedback_report_is_a_page_linked_from_the_dashboard(seeded: TestClient) -> None:
    dashboard = seeded.get("/dashboard", params={"department": "営業部"}).text
    assert 'href="/dashboard/plan-feedback?department=' in dashboard
    page = seeded.get("/dashboard/plan-feedback")
    assert page.status_code == 200 and 'id="site-header"' in page.text
    assert "計画へのフィードバック報告" in page.text and "社員の声" in page.text and "What staff said" not in page.text
    assert "ボーナスは減りますか？" in page.text and EMAIL not in page.text
    english = seeded.get("/dashboard/plan-feedback", params={"lang": "en"}).text
    assert "What staff said" in english and "社員の声" not in english


@pytest.mark.parametrize(
    ("params", "named"),
    [({"since": "2026-12-05", "until": "2026-12-01"}, "開始日"), ({"source": "fax"}, "経路")],
)
def test_filters_the_dashboard_cannot_use_are_named_in_japanese_and_dropped(
    seeded: TestClient, params: dict[str, str], named: str
) -> None:
    page = seeded.get("/dashboard", params=params)
    assert page.status_code == 422 and page.headers["content-type"].startswith("text/html")
    problem = re.search(r'<p class="notice warn" id="filter-problem" role="alert">(.*?)</p>', page.text, re.S)
    assert problem and f"絞り込み条件（{named}）が正しくないため" in problem.group(1)
    assert "Input should" not in page.text and "is after until" not in page.text
    assert "ボーナスは減りますか？" in page.text  # shown without the filters, rather than nothing


def test_an_empty_database_gives_a_dashboard_that_says_so(client: TestClient) -> None:
    html = client.get("/dashboard").text
    assert "この条件のデータはまだありません" in html and "data:image" not in html
    assert client.get("/v1/reports/objections").json()["empty"] is True
