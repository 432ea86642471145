"""Server-Sent Events for a route that answers JSON or a stream: FastAPI's event model and wire format, kept alive.

A generator path operation with `response_class=EventSourceResponse` gets all of this from FastAPI (the jobs
progress stream does). POST /v1/ask decides between JSON and a stream per request, so it returns this response
instead; it encodes with FastAPI's `format_sse_event` and pings with FastAPI's keep-alive comment the same way.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, Iterator

import anyio
from fastapi.encoders import jsonable_encoder
from fastapi.sse import KEEPALIVE_COMMENT, EventSourceResponse, ServerSentEvent, format_sse_event
from starlette.types import Send

PING_S = 15.0  # FastAPI's own keep-alive interval: well inside the idle timeouts of common proxies


def encode_event(event: ServerSentEvent) -> bytes:
    """One event in the SSE wire format, as FastAPI writes it for a generator route."""
    if event.raw_data is not None:
        data: str | None = event.raw_data
    elif event.data is not None:
        data = json.dumps(jsonable_encoder(event.data))
    else:
        data = None
    return format_sse_event(data_str=data, event=event.event, id=event.id, retry=event.retry, comment=event.comment)


def _encoded(events: Iterator[ServerSentEvent]) -> Iterator[bytes]:
    for event in events:
        yield encode_event(event)


class KeepAliveEventSource(EventSourceResponse):
    """Streams the events (a sync iterator runs in a worker thread) and sends `: ping` whenever it is silent."""

    def __init__(self, events: Iterator[ServerSentEvent], *, ping_s: float = PING_S) -> None:
        super().__init__(_encoded(events), headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
        self.ping_s = ping_s

    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        # The source is read by its own task, so a ping never cancels (and so ends) the iterator mid-event.
        chunks_in, chunks = anyio.create_memory_object_stream[bytes | str | memoryview](max_buffer_size=1)

        async def produce(source: AsyncIterable[bytes | str | memoryview]) -> None:
            async with chunks_in:
                async for chunk in source:
                    await chunks_in.send(chunk)

        async with anyio.create_task_group() as tasks, chunks:
            tasks.start_soon(produce, self.body_iterator)
            while True:
                try:
                    with anyio.fail_after(self.ping_s):
                        chunk = await chunks.receive()
                except TimeoutError:
                    chunk = KEEPALIVE_COMMENT
                except anyio.EndOfStream:
                    break
                body = chunk.encode(self.charset) if isinstance(chunk, str) else bytes(chunk)
                await send({"type": "http.response.body", "body": body, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
