"""CORS for the configured origins and the per-client rate limit on POST /v1/ask."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.main import create_app
from service.web.security import install_web_security
from tests.conftest import make_settings

INTRANET = "https://intranet.minato-seiki.example"


def make_client(tmp_path: Path, *, limit: int = 2, origins: list[str] | None = None) -> TestClient:
    """A small app with the service's /v1/ask path and the web security installed exactly as the service does."""
    settings = make_settings(tmp_path, ask_rate_limit_per_minute=limit, allowed_origins=origins or [])
    app = FastAPI()

    @app.post("/v1/ask")
    def ask() -> dict[str, str]:
        return {"answer": "ok"}

    @app.post("/v1/search")
    def search() -> dict[str, str]:
        return {"hits": "ok"}

    install_web_security(app, settings)
    return TestClient(app)


def test_asking_past_the_limit_is_a_429_with_retry_after_and_a_message_saying_how_long_to_wait(
    tmp_path: Path,
) -> None:
    client = make_client(tmp_path, limit=2)
    assert [client.post("/v1/ask").status_code for _ in range(2)] == [200, 200]
    refused = client.post("/v1/ask")
    assert refused.status_code == 429
    wait = int(refused.headers["retry-after"])
    assert 1 <= wait <= 60
    body = refused.json()
    assert f"wait {wait} seconds" in body["error"]
    assert body["detail"] == {"retry_after": wait, "limit_per_minute": 2}


def test_searching_has_its_own_limit_apart_from_asking(tmp_path: Path) -> None:
    client = make_client(tmp_path, limit=1)
    client.post("/v1/ask")
    assert [client.post("/v1/search").status_code for _ in range(5)] == [200] * 5


def test_an_allowed_origin_may_call_the_api_and_read_retry_after(tmp_path: Path) -> None:
    client = make_client(tmp_path, limit=1, origins=[INTRANET])
    preflight = client.options(
        "/v1/ask",
        headers={
            "origin": INTRANET,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == INTRANET
    client.post("/v1/ask", headers={"origin": INTRANET})
    refused = client.post("/v1/ask", headers={"origin": INTRANET})
    assert refused.status_code == 429
    assert refused.headers["access-control-allow-origin"] == INTRANET  # else the browser hides the 429 from the widget
    assert "retry-after" in refused.headers["access-control-expose-headers"].lower()


def test_an_origin_that_is_not_configured_gets_no_cors_permission(tmp_path: Path) -> None:
    client = make_client(tmp_path, origins=[INTRANET])
    preflight = client.options(
        "/v1/ask",
        headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
    )
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    answered = client.post("/v1/ask", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in answered.headers


def test_same_origin_pages_work_with_no_origins_configured(tmp_path: Path) -> None:
    client = make_client(tmp_path, origins=[])
    response = client.post("/v1/ask", headers={"origin": "http://testserver"})
    assert response.status_code == 200 and response.json() == {"answer": "ok"}


def test_the_service_app_has_the_limit_and_cors_installed(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, ask_rate_limit_per_minute=1, allowed_origins=[INTRANET])
    client = TestClient(create_app(settings))  # no lifespan: the limit answers before any route runs
    preflight = client.options("/v1/ask", headers={"origin": INTRANET, "access-control-request-method": "POST"})
    assert preflight.headers["access-control-allow-origin"] == INTRANET
    assert client.post("/v1/ask", json={"question": "予算は？"}).status_code != 429
    assert client.post("/v1/ask", json={"question": "予算は？"}).status_code == 429
