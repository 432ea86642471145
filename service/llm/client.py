"""The one LLM seam: an OpenAI-compatible chat client with timeouts, retries, usage and structured output.

Built on the `openai` SDK rather than langchain's ChatOpenAI: it exposes token usage on every call
(streaming too) and lets us pick the structured-output method per server without another abstraction
layer in between. Retries (429, 5xx, timeouts; backoff honouring Retry-After) are done here rather than
by the SDK, so that every attempt of every call of one request fits in that request's deadline.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from service.config import Settings
from service.errors import LLMUnavailable
from service.logging import get_logger
from service.tokens import count_tokens

if TYPE_CHECKING:
    import openai

T = TypeVar("T", bound=BaseModel)
StructuredMethod = Literal["json_schema", "function_calling", "json_mode"]
log = get_logger("llm")


def _sdk() -> Any:
    """The openai module, imported on first use: a run without an LLM never pays for importing the SDK."""
    import openai

    return openai


class LLMOutputError(LLMUnavailable):
    """The model answered, but not in the shape we asked for; usage is what that answer cost."""

    def __init__(self, message: str, *, usage: Usage | None = None) -> None:
        super().__init__(message)
        self.usage = usage


@dataclass
class Usage:
    """Tokens, time and estimated cost of LLM calls (summed over a request), and the request's deadline: the
    time.monotonic() by which every LLM call of the request, retries included, must be done (None: none)."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: int = 0
    cost_usd: float = 0.0
    deadline: float | None = field(default=None, compare=False)

    @classmethod
    def within(cls, seconds: float | None) -> Usage:
        """A request's usage with a deadline seconds from now."""
        return cls(deadline=time.monotonic() + seconds if seconds else None)

    def add(self, other: Usage) -> None:
        self.calls += other.calls
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.latency_ms += other.latency_ms
        self.cost_usd = round(self.cost_usd + other.cost_usd, 6)


class ChatModel(Protocol):
    """What the triage pipeline needs from an LLM."""

    @property
    def model(self) -> str: ...

    def structured(
        self, messages: list[dict[str, str]], schema: type[T], *, name: str, deadline: float | None = None
    ) -> tuple[T, Usage]: ...

    def stream_text(self, messages: list[dict[str, str]], usage: Usage) -> Iterator[str]: ...

    def complete_text(self, messages: list[dict[str, str]], usage: Usage) -> str: ...


@dataclass
class OpenAIChat:
    """Any server speaking the OpenAI chat API: OpenAI, Azure OpenAI, vLLM, Ollama, llama.cpp, the mock."""

    model: str
    base_url: str | None
    api_key: str | None
    timeout_s: float
    max_retries: int
    temperature: float
    method: StructuredMethod
    price_in_per_1m: float
    price_out_per_1m: float
    _client: openai.OpenAI = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._client = _sdk().OpenAI(
            base_url=self.base_url,
            api_key=self.api_key or "not-needed",
            timeout=self.timeout_s,
            max_retries=0,  # retried in _create, within the request's deadline
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAIChat:
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        return cls(
            model=settings.llm_model,
            base_url=settings.openai_base_url,
            api_key=key,
            timeout_s=settings.llm_timeout_s,
            max_retries=settings.llm_max_retries,
            temperature=settings.llm_temperature,
            method=settings.llm_structured_output,
            price_in_per_1m=settings.llm_price_input_per_1m,
            price_out_per_1m=settings.llm_price_output_per_1m,
        )

    def structured(
        self, messages: list[dict[str, str]], schema: type[T], *, name: str, deadline: float | None = None
    ) -> tuple[T, Usage]:
        """One call whose answer is parsed into schema; LLMUnavailable or LLMOutputError otherwise."""
        started = time.perf_counter()
        if self.method == "json_mode":  # the server only promises JSON, so the prompt carries the schema
            shape = json.dumps(schema.model_json_schema(), ensure_ascii=False)
            messages = [*messages, {"role": "system", "content": f"Reply with one JSON object matching: {shape}"}]
        response = self._create(deadline, messages=messages, **self._structured_args(schema, name))
        usage = self._usage(response.usage, messages, started, name=name)
        message = response.choices[0].message
        raw = message.tool_calls[0].function.arguments if message.tool_calls else message.content
        try:
            return schema.model_validate_json(raw or ""), usage
        except ValidationError as exc:
            raise LLMOutputError(f"the LLM answer did not match {name}: {exc.errors()[0]['msg']}", usage=usage) from exc

    def stream_text(self, messages: list[dict[str, str]], usage: Usage) -> Iterator[str]:
        """Text deltas as the model writes them; usage is filled in when the stream ends."""
        openai = _sdk()

        started = time.perf_counter()
        stream = self._create(usage.deadline, messages=messages, stream=True, stream_options={"include_usage": True})
        parts: list[str] = []
        reported = None
        try:
            for chunk in stream:
                if usage.deadline is not None and time.monotonic() > usage.deadline:
                    stream.close()
                    raise LLMUnavailable("the LLM was still writing when the request's time was up")
                reported = chunk.usage or reported
                if chunk.choices and chunk.choices[0].delta.content:
                    parts.append(chunk.choices[0].delta.content)
                    yield chunk.choices[0].delta.content
        except openai.APIError as exc:
            raise LLMUnavailable(f"the LLM stream broke off: {type(exc).__name__}") from exc
        usage.add(self._usage(reported, messages, started, completion="".join(parts), name="stream"))

    def complete_text(self, messages: list[dict[str, str]], usage: Usage) -> str:
        """The whole answer in one response (when nobody is watching it being written)."""
        started = time.perf_counter()
        response = self._create(usage.deadline, messages=messages)
        text = response.choices[0].message.content or ""
        usage.add(self._usage(response.usage, messages, started, completion=text, name="text"))
        return str(text)

    def _structured_args(self, schema: type[BaseModel], name: str) -> dict[str, Any]:
        openai = _sdk()

        if self.method == "json_mode":
            return {"response_format": {"type": "json_object"}}
        # The SDK's own strict tool: every property required, no additional properties, `strict: true`.
        tool = openai.pydantic_function_tool(schema, name=name)
        if self.method == "function_calling":
            return {"tools": [tool], "tool_choice": {"type": "function", "function": {"name": name}}}
        strict_schema = tool["function"]["parameters"]
        return {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": strict_schema, "strict": True},
            }
        }

    def _create(self, deadline: float | None, **kwargs: Any) -> Any:
        """One chat completion, retried on 408/409/429/5xx and timeouts with backoff (Retry-After when the server
        sends one), every attempt cut to what is left before deadline."""
        openai = _sdk()

        attempt = 0
        while True:
            timeout = self.timeout_s if deadline is None else min(self.timeout_s, deadline - time.monotonic())
            if timeout <= 0.05:
                raise LLMUnavailable("the LLM did not answer within the request's time budget")
            try:
                return self._client.chat.completions.create(
                    model=self.model, temperature=self.temperature, timeout=timeout, **kwargs
                )
            except openai.APIError as exc:
                attempt += 1
                wait = _retry_wait(exc, attempt)
                if wait is None or attempt > self.max_retries or (deadline and time.monotonic() + wait >= deadline):
                    raise self._unavailable(exc, timeout) from exc
                log.info("llm.retry", attempt=attempt, wait_s=round(wait, 2), reason=type(exc).__name__)
                time.sleep(wait)

    def _unavailable(self, exc: openai.APIError, timeout: float) -> LLMUnavailable:
        openai = _sdk()

        if isinstance(exc, openai.APITimeoutError):
            return LLMUnavailable(f"the LLM did not answer within {timeout:g}s")
        if isinstance(exc, openai.APIStatusError):
            return LLMUnavailable(f"the LLM answered {exc.status_code} after {self.max_retries} retries")
        return LLMUnavailable(f"the LLM is unreachable: {type(exc).__name__}")

    def _usage(
        self, reported: Any, messages: list[dict[str, str]], started: float, *, completion: str = "", name: str
    ) -> Usage:
        """Usage as the server reported it, or counted with tiktoken when it did not."""
        prompt = reported.prompt_tokens if reported else sum(count_tokens(m["content"]) for m in messages)
        done = reported.completion_tokens if reported else count_tokens(completion)
        usage = Usage(
            calls=1,
            prompt_tokens=prompt,
            completion_tokens=done,
            latency_ms=round((time.perf_counter() - started) * 1000),
            cost_usd=round((prompt * self.price_in_per_1m + done * self.price_out_per_1m) / 1_000_000, 6),
        )
        log.info("llm.call", model=self.model, call=name, tokens=prompt + done, latency_ms=usage.latency_ms)
        return usage


_RETRIED_STATUS = {408, 409, 429}


def _retry_wait(exc: openai.APIError, attempt: int) -> float | None:
    """Seconds to wait before the next attempt, or None when this error is not worth retrying."""
    openai = _sdk()

    if isinstance(exc, openai.APIStatusError):
        if exc.status_code not in _RETRIED_STATUS and exc.status_code < 500:
            return None
        headers = exc.response.headers
        for header, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
            try:
                seconds = float(str(headers.get(header, ""))) * scale
            except ValueError:
                continue
            return min(seconds, 30.0)
    elif not isinstance(exc, openai.APIConnectionError):  # timeouts are connection errors too
        return None
    backoff: float = min(0.5 * 2 ** (attempt - 1), 8.0) * (1 + random.random() / 4)
    return backoff


def make_chat_model(settings: Settings) -> ChatModel | None:
    """The configured chat model, or None when no LLM is configured (offline mode). A provider other than `openai`
    goes through LangChain, imported only then (langchain_chat.py)."""
    if not settings.llm_configured:
        return None
    if settings.llm_provider.strip() not in ("", "openai"):
        from service.llm.langchain_chat import LangChainChat

        return LangChainChat.from_settings(settings)
    return OpenAIChat.from_settings(settings)
