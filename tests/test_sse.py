"""Server-Sent Events for /v1/ask: FastAPI's wire format, with a keep-alive ping while the answer is being made."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import anyio
from fastapi.sse import KEEPALIVE_COMMENT, ServerSentEvent

from service.sse import KeepAliveEventSource


def run(response: KeepAliveEventSource, *, on_body: Any = None) -> list[bytes]:
    """Drive the response as an ASGI server would; the bodies it sent, in order."""
    bodies: list[bytes] = []

    async def receive() -> dict[str, Any]:
        await anyio.sleep_forever()
        return {}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            bodies.append(message["body"])
            if on_body:
                on_body(message["body"])

    scope = {"type": "http", "asgi": {"spec_version": "2.4"}, "method": "POST", "path": "/v1/ask", "headers": []}
    anyio.run(response, scope, receive, send)
    return bodies


def test_events_keep_their_names_and_unescaped_json_payloads() -> None:
    events = iter([ServerSentEvent(event="delta", raw_data='{"text": "基本給は維持"}')])
    response = KeepAliveEventSource(events)
    assert run(response) == ['event: delta\ndata: {"text": "基本給は維持"}\n\n'.encode(), b""]
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-store"


def test_a_silent_source_gets_a_ping_comment_and_then_its_next_event() -> None:
    pinged = threading.Event()

    def slow_answer() -> Iterator[ServerSentEvent]:
        yield ServerSentEvent(event="meta", raw_data="{}")
        assert pinged.wait(timeout=30), "no keep-alive ping while the source was silent"
        yield ServerSentEvent(event="done", raw_data='{"id": "a1"}')

    def on_body(body: bytes) -> None:
        if body == KEEPALIVE_COMMENT:
            pinged.set()

    bodies = run(KeepAliveEventSource(slow_answer(), ping_s=0.01), on_body=on_body)
    assert KEEPALIVE_COMMENT in bodies
    events = [body for body in bodies if body != KEEPALIVE_COMMENT]
    assert events == [b"event: meta\ndata: {}\n\n", b'event: done\ndata: {"id": "a1"}\n\n', b""]


def test_a_payload_given_as_data_is_json_encoded_as_fastapi_does() -> None:
    events = iter([ServerSentEvent(event="done", data={"id": "a1", "citations": []})])
    assert run(KeepAliveEventSource(events))[0] == b'event: done\ndata: {"id": "a1", "citations": []}\n\n'
