"""Limits at the edge: hostile characters, sizes and rates are refused with a 4xx that says what to fix (issue 15)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.review.helpers import ReviewApp
from tests.security.helpers import database, fast_app

NUL = "\\u0000"  # as JSON escapes write them
SURROGATE = "\\ud800"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def pg_app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReviewApp]:
    """The whole service on SQLite and on PostgreSQL, where a NUL in a text column is an error of the database."""
    with database(request.param) as url, fast_app(tmp_path_factory.mktemp("limits"), url) as running:
        yield running


def post_raw(app: ReviewApp, path: str, body: str, headers: dict[str, str] | None = None) -> Any:
    """A JSON body written by hand, so that escapes like \\ud800 reach the server as sent."""
    return app.client.post(path, content=body.encode(), headers={"Content-Type": "application/json", **(headers or {})})


@pytest.mark.parametrize("bad", [NUL, SURROGATE])
@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/v1/ask", '{"question": "ボーナスは減りますか%s"}'),
        ("/v1/ask", '{"question": "ボーナスは減りますか%s", "stream": true}'),
        ("/v1/ask", '{"question": "ボーナスは減りますか？", "department": "営業%s"}'),
        ("/v1/search", '{"query": "ボーナス%s"}'),
        ("/v1/feedback", '{"id": "abc%s", "helpful": true}'),
        ("/v1/feedback", '{"id": "abc", "helpful": false, "comment": "x%s"}'),
    ],
)
def test_nul_and_lone_surrogates_in_json_text_are_a_422_naming_the_field(
    pg_app: ReviewApp, path: str, template: str, bad: str
) -> None:
    response = post_raw(pg_app, path, template % bad)
    assert response.status_code == 422, response.text
    message = response.json()["error"]
    assert "NUL" in message or "surrogate" in message


@pytest.mark.parametrize("bad", ["%00", "%ED%A0%80"])
def test_nul_in_filters_and_ids_is_never_a_500(pg_app: ReviewApp, bad: str) -> None:
    reviewer = pg_app.user(f"r{len(bad)}", role="admin")
    for url in (
        f"/v1/review/items?department=a{bad}",
        f"/v1/review/items?root_cause=a{bad}",
        f"/v1/review/items?assignee=a{bad}",
        f"/v1/reports/objections?department=a{bad}",
        f"/v1/jobs/a{bad}",
        f"/kb/a{bad}",
    ):
        response = pg_app.client.get(url, headers=reviewer)
        assert response.status_code < 500, (url, response.status_code, response.text)
        if bad == "%00":
            assert response.status_code in (404, 422), (url, response.status_code, response.text)


def test_nul_in_a_review_decision_is_a_422(pg_app: ReviewApp) -> None:
    reviewer = pg_app.user("decider")
    answer = pg_app.ask("リスキリング研修はいつ始まりますか？")
    item = pg_app.item_of(answer["id"])
    version = pg_app.detail(item, reviewer)["item"]["version"]
    for field, bad in (("reason", NUL), ("answer", SURROGATE), ("assignee", NUL), ("root_cause", NUL)):
        action = {"reason": "reject", "answer": "edit", "assignee": "assign", "root_cause": "relabel"}[field]
        body = f'{{"action": "{action}", "version": {version}, "{field}": "cost{bad}"}}'
        response = post_raw(pg_app, f"/v1/review/items/{item}/decisions", body, reviewer)
        assert response.status_code == 422, (body, response.text)
