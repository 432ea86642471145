"""The real app served by uvicorn in this process on a free port, for what only a real socket or browser shows."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import uvicorn
from fastapi import FastAPI

from service.config import Settings
from service.main import create_app
from service.retrieval.embeddings import Embedder
from tests.conftest import free_port
from tests.fakes import HashedNgramEmbedder


@dataclass(frozen=True)
class ServedApp:
    url: str
    app: FastAPI  # its state holds the sessionmaker, for seeding users and items


@contextmanager
def served_app(settings: Settings, *, embedder: Embedder | None = None) -> Iterator[ServedApp]:
    """The app on the fake embedder (no e5 model) unless given another; yields once /readyz says ready (on first
    start that includes indexing the settings' knowledge folder)."""
    app = create_app(settings, embedder=embedder or HashedNgramEmbedder())
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, name="nemawashi-under-test", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.config.port}"
    try:
        deadline = time.monotonic() + 300
        while not _ready(url):
            assert thread.is_alive() and time.monotonic() < deadline, "the service did not become ready"
            time.sleep(0.2)
        yield ServedApp(url, app)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False
