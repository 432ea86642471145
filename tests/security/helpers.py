"""A recording stand-in for a remote OpenAI-compatible embeddings endpoint, served on loopback."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request

from tests.conftest import free_port
from tests.fakes import HashedNgramEmbedder


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
