"""Who may do what: bearer tokens for reviewers and admins, the CLI that makes them, askers named by a proxy."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request
from typer.testing import CliRunner

from service.auth.deps import asker_identity
from service.auth.models import ReviewerAccount
from service.auth.service import hash_token
from service.cli import app as cli
from service.config import get_settings
from service.db import session_scope
from service.main import create_app
from tests.conftest import make_settings
from tests.review.helpers import ReviewApp, add_item, review_app

# The first test of a session also pays for indexing the knowledge base (a session fixture).
pytestmark = pytest.mark.timeout(900)


def _review_api_routes(review: ReviewApp) -> list[tuple[str, str]]:
    """Every documented /v1/review endpoint, from the OpenAPI schema."""
    paths = review.client.get("/openapi.json").json()["paths"]
    return [(method.upper(), path) for path, ops in paths.items() if path.startswith("/v1/review") for method in ops]


def _call(review: ReviewApp, method: str, path: str, headers: dict[str, str]) -> Any:
    url = path.replace("{item_id}", "1").replace("{name}", "someone")
    return review.client.request(
        method, url, headers=headers, json={"action": "approve", "version": 1, "confirm_extract": True}
    )


def test_every_review_endpoint_answers_401_without_a_token_or_with_a_bad_one(review: ReviewApp) -> None:
    with session_scope(review.sessions) as session:
        add_item(session, "ボーナスは減りますか？")
    routes = _review_api_routes(review)
    assert len(routes) >= 8
    for method, path in routes:
        for headers in ({}, {"Authorization": "Bearer nmw_not-a-real-token"}, {"Authorization": "Basic YWxpY2U6"}):
            response = _call(review, method, path, headers)
            assert response.status_code == 401, (method, path, headers, response.text)
            assert "token" in response.json()["error"]


def test_a_reviewer_gets_403_from_admin_endpoints_and_cannot_create_users(review: ReviewApp) -> None:
    reviewer = review.user("sato")
    response = review.client.post("/v1/review/users", headers=reviewer, json={"name": "mallory", "role": "admin"})
    assert response.status_code == 403 and "admin" in response.json()["error"]
    assert review.client.get("/v1/review/users", headers=reviewer).status_code == 403
    assert review.client.delete("/v1/review/users/sato", headers=reviewer).status_code == 403
    with session_scope(review.sessions) as session:
        assert session.scalars(select(ReviewerAccount.name).where(ReviewerAccount.name == "mallory")).all() == []


def test_an_admin_creates_a_reviewer_whose_token_works_until_it_is_revoked(review: ReviewApp) -> None:
    admin = review.user("tanaka", "admin")
    created = review.client.post("/v1/review/users", headers=admin, json={"name": "suzuki", "role": "reviewer"})
    assert created.status_code == 201
    token = created.json()["token"]
    suzuki = {"Authorization": f"Bearer {token}"}
    assert review.client.get("/v1/review/me", headers=suzuki).json() == {"name": "suzuki", "role": "reviewer"}
    assert review.client.delete("/v1/review/users/suzuki", headers=admin).json()["active"] is False
    assert review.client.get("/v1/review/me", headers=suzuki).status_code == 401
    names = {u["name"]: u["active"] for u in review.client.get("/v1/review/users", headers=admin).json()}
    assert names == {"tanaka": True, "suzuki": False}


def test_nothing_under_review_pages_is_readable_without_a_token(review: ReviewApp) -> None:
    with session_scope(review.sessions) as session:
        item = add_item(session, "秘密の質問：ボーナスは減りますか？")
    for path in ("/review", f"/review/items/{item.id}", f"/review/items/{item.id}/state", "/review/static/review.js"):
        response = review.client.get(path)
        assert response.status_code == 401, path
        assert "秘密の質問" not in response.text
    assert 'name="token"' in review.client.get("/review").text
    forged = review.client.get("/review", cookies={"nemawashi_review": "nmw_forged"})
    assert forged.status_code == 401


@pytest.fixture
def cli_database(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Any:
    monkeypatch.setenv("NEMAWASHI_DATABASE_URL", database_url)
    monkeypatch.setenv("NEMAWASHI_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield database_url
    get_settings.cache_clear()


def test_users_add_prints_a_token_once_and_stores_only_its_hash(
    cli_database: str, sessions: sessionmaker[Session]
) -> None:
    runner = CliRunner()
    added = runner.invoke(cli, ["users", "add", "yamada", "--role", "admin"])
    assert added.exit_code == 0, added.output
    token = added.stdout.strip().splitlines()[-1]
    assert token.startswith("nmw_") and len(token) > 40
    with session_scope(sessions) as session:
        account = session.scalars(select(ReviewerAccount).where(ReviewerAccount.name == "yamada")).one()
        assert account.role == "admin" and account.token_hash == hash_token(token) and token not in account.token_hash
    listed = runner.invoke(cli, ["users", "list", "--json"])
    assert token not in listed.stdout and '"yamada"' in listed.stdout
    again = runner.invoke(cli, ["users", "add", "yamada"])
    assert again.exit_code == 2 and "exists already" in again.output
    assert runner.invoke(cli, ["users", "add", "kato", "--role", "owner"]).exit_code == 2
    assert runner.invoke(cli, ["users", "revoke", "yamada"]).exit_code == 0
    assert '"active": false' in runner.invoke(cli, ["users", "list", "--json"]).stdout


def _request(peer: str, headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "POST", "path": "/v1/ask", "headers": raw, "client": (peer, 40000)})


def test_an_asker_is_named_by_the_sso_header_only_when_it_comes_from_a_trusted_proxy(tmp_path: Any) -> None:
    settings = make_settings(tmp_path, sso_header="X-Forwarded-User", trusted_proxies=["10.0.0.5", "192.168.10.0/24"])
    header = {"X-Forwarded-User": "sato.taro@minato.example"}
    assert asker_identity(_request("10.0.0.5", header), settings) == "sato.taro@minato.example"
    assert asker_identity(_request("192.168.10.77", header), settings) == "sato.taro@minato.example"
    assert asker_identity(_request("10.0.0.6", header), settings) is None  # anyone can send the header
    assert asker_identity(_request("10.0.0.5", {}), settings) is None  # anonymous through the proxy
    unconfigured = make_settings(tmp_path)
    assert asker_identity(_request("10.0.0.5", header), unconfigured) is None


def test_reports_bulk_jobs_and_their_pages_need_a_reviewer_token(review: ReviewApp) -> None:
    with session_scope(review.sessions) as session:
        add_item(session, "秘密の質問：ボーナスは減りますか？")
    pages = ("/v1/reports/objections", "/dashboard", "/dashboard/plan-feedback", "/jobs", "/jobs/some-job")
    pages += ("/v1/jobs/some-job",)
    for path in (*pages, "/v1/jobs/some-job/result"):
        refused = review.client.get(path)
        assert refused.status_code == 401 and "秘密の質問" not in refused.text, path
    survey = {"file": ("survey.csv", "id,comment\n1,秘密の質問\n".encode(), "text/csv")}
    assert review.client.post("/v1/jobs/classify", files=survey).status_code == 401
    assert 'name="token"' in review.client.get("/jobs").text  # a browser gets the sign-in form
    assert 'name="token"' in review.client.get("/jobs/some-job").text  # the job report page too
    reviewer = review.user("sato")
    report = review.client.get("/v1/reports/objections", headers=reviewer)
    assert report.status_code == 200 and report.json()["empty"] is False
    assert review.client.get("/dashboard", headers=reviewer).status_code == 200


def test_the_dashboard_in_a_browser_asks_for_the_sign_in_and_comes_back(review: ReviewApp) -> None:
    form = review.client.get("/dashboard")
    assert form.status_code == 401 and 'name="token"' in form.text and 'value="/dashboard"' in form.text
    token = review.user("sato")["Authorization"].removeprefix("Bearer ")
    signed = review.client.post("/review/login", data={"token": token, "next": "/dashboard"}, follow_redirects=False)
    assert signed.status_code == 303 and signed.headers["location"] == "/dashboard"
    page = review.client.get("/dashboard")  # the login cookie now goes with it
    assert page.status_code == 200 and "ダッシュボード" in page.text


def test_a_question_asked_through_the_trusted_proxy_shows_its_asker_to_reviewers(
    indexed_settings: Any, database_url: str
) -> None:
    proxy = {"sso_header": "X-Forwarded-User", "trusted_proxies": ["10.0.0.5"]}
    with review_app(indexed_settings, database_url, **proxy) as review:
        through_proxy = TestClient(review.app, client=("10.0.0.5", 40000))
        named = through_proxy.post("/v1/ask", json={"question": "ボーナスは減りますか？"}, headers=_SSO)
        spoofed = review.client.post("/v1/ask", json={"question": "ボーナスは減りますか？"}, headers=_SSO)
        assert named.status_code == spoofed.status_code == 200
        sato = review.user("sato")
        shown = review.detail(review.item_of(named.json()["id"]), sato)["question"]["asker"]
        assert shown == "sato.taro@minato.example"
        assert review.detail(review.item_of(spoofed.json()["id"]), sato)["question"]["asker"] is None


_SSO = {"X-Forwarded-User": "sato.taro@minato.example"}


def test_the_api_docs_show_the_bearer_scheme_on_reviewer_endpoints_and_not_on_asking(tmp_path: Any) -> None:
    schema = create_app(make_settings(tmp_path)).openapi()
    assert schema["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A reviewer's token: `nemawashi users add NAME` prints one.",
    }
    paths = schema["paths"]
    for path, method in (
        ("/v1/review/items", "get"),
        ("/v1/review/users", "post"),
        ("/v1/reports/objections", "get"),
        ("/v1/jobs/classify", "post"),
    ):
        assert paths[path][method]["security"] == [{"HTTPBearer": []}], path
    assert "security" not in paths["/v1/ask"]["post"]
