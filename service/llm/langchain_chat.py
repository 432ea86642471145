"""The ChatModel over LangChain chat models: Anthropic, Bedrock, Vertex AI, Azure OpenAI, ... (NEMAWASHI_LLM_PROVIDER).

The OpenAI SDK path (client.py) stays the default. This one gives the pipeline the same guarantees for any
provider `init_chat_model` knows: every attempt cut to the request's deadline (the call runs in a worker
thread, so a provider without per-call timeouts cannot hold the asker), retries on rate limits, server errors
and dropped connections with backoff (Retry-After when the provider passes the response on), usage and cost
per call from `usage_metadata` (counted with tiktoken when a provider reports none), and failures mapped to
LLMUnavailable / LLMOutputError. LangChain is imported only when this provider is configured, and its objects
stay in this module: the pipeline gets strings, pydantic models and Usage.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from service.config import Settings
from service.errors import LLMUnavailable
from service.llm.client import LLMOutputError, StructuredMethod, Usage
from service.logging import get_logger
from service.tokens import count_tokens

T = TypeVar("T", bound=BaseModel)
R = TypeVar("R")
log = get_logger("llm")
# Providers speaking the OpenAI API through LangChain: they take our base URL, key and structured-output method.
OPENAI_FAMILY = frozenset({"openai", "azure_openai"})
# The pyproject extra that installs each provider's package (with langchain, for init_chat_model).
EXTRAS = {
    "openai": "langchain",
    "azure_openai": "langchain",
    "anthropic": "anthropic",
    "bedrock": "bedrock",
    "bedrock_converse": "bedrock",
    "google_vertexai": "vertexai",
    "google_genai": "genai",
    "mistralai": "mistralai",
    "ollama": "ollama",
}
RETRIED_STATUS = frozenset({408, 409, 429})
# Error codes some SDKs (botocore) give instead of an HTTP status.
RETRIED_CODES = frozenset({"ThrottlingException", "ServiceUnavailableException", "ModelNotReadyException"})
_END = object()
# Calls wait here for a worker, and that wait counts against their timeout: room for bulk jobs and the API at once.
_pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="llm-call")


class ProviderMissing(LLMUnavailable):
    """The provider's LangChain package is not installed: says which extra to install."""


def langchain_provider(setting: str) -> str | None:
    """The LangChain provider a NEMAWASHI_LLM_PROVIDER value asks for, or None for the OpenAI SDK path.

    `openai` is the SDK path; `langchain:openai` is OpenAI through LangChain; any other name is a LangChain one."""
    name = setting.strip()
    if name in ("", "openai"):
        return None
    return name.removeprefix("langchain:")


@dataclass
class LangChainChat:
    """A ChatModel over a LangChain BaseChatModel (built by init_chat_model, or handed in by tests)."""

    chat: Any  # langchain_core BaseChatModel; typed loosely so that importing this module imports no LangChain
    provider: str
    model_name: str
    timeout_s: float
    max_retries: int
    method: StructuredMethod | None  # None: the provider's own default
    price_in_per_1m: float
    price_out_per_1m: float
    _structured: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    @property
    def model(self) -> str:
        return f"{self.provider}:{self.model_name}"

    @classmethod
    def from_settings(cls, settings: Settings) -> LangChainChat:
        provider = langchain_provider(settings.llm_provider) or "openai"
        try:
            from langchain.chat_models import init_chat_model
        except ImportError as exc:
            raise ProviderMissing(_install_hint(provider, "langchain")) from exc
        kwargs: dict[str, Any] = {"temperature": settings.llm_temperature, "max_retries": 0}  # retried here
        if provider in OPENAI_FAMILY:
            key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
            kwargs |= {"timeout": settings.llm_timeout_s, "stream_usage": True}
            if provider == "openai":
                kwargs |= {"base_url": settings.openai_base_url, "api_key": key or "not-needed"}
        elif provider in ("anthropic", "mistralai", "google_genai", "groq"):
            kwargs["timeout"] = settings.llm_timeout_s
        try:
            chat = init_chat_model(settings.llm_model, model_provider=provider, **kwargs)
        except ImportError as exc:
            raise ProviderMissing(_install_hint(provider, str(exc.name or exc))) from exc
        except ValueError as exc:
            raise LLMUnavailable(f"NEMAWASHI_LLM_PROVIDER={settings.llm_provider!r}: {exc}") from exc
        return cls(
            chat=chat,
            provider=provider,
            model_name=settings.llm_model,
            timeout_s=settings.llm_timeout_s,
            max_retries=settings.llm_max_retries,
            method=settings.llm_structured_output if provider in OPENAI_FAMILY else None,
            price_in_per_1m=settings.llm_price_input_per_1m,
            price_out_per_1m=settings.llm_price_output_per_1m,
        )

    def structured(
        self, messages: list[dict[str, str]], schema: type[T], *, name: str, deadline: float | None = None
    ) -> tuple[T, Usage]:
        """One call whose answer is parsed into schema; LLMUnavailable or LLMOutputError (with usage) otherwise."""
        started = time.perf_counter()
        runnable = self._structured_runnable(schema)
        result = self._with_retries(deadline, lambda: runnable.invoke(messages))
        raw = result.get("raw")
        usage = self._usage(raw, messages, started, completion=_text(raw), name=name)
        parsed, error = result.get("parsed"), result.get("parsing_error")
        if error is not None or parsed is None:
            reason = error or "no structured answer"
            raise LLMOutputError(f"the LLM answer did not match {name}: {str(reason)[:200]}", usage=usage)
        try:
            return (parsed if isinstance(parsed, schema) else schema.model_validate(parsed)), usage
        except ValidationError as exc:
            raise LLMOutputError(f"the LLM answer did not match {name}: {exc.errors()[0]['msg']}", usage=usage) from exc

    def stream_text(self, messages: list[dict[str, str]], usage: Usage) -> Iterator[str]:
        """Text deltas as the model writes them, each awaited no longer than the request's deadline allows;
        usage is filled in when the stream ends."""
        started = time.perf_counter()
        chunks = self._open_stream(messages, usage.deadline)
        parts: list[str] = []
        total: Any = None
        for chunk in chunks:
            total = chunk if total is None else total + chunk
            if text := _text(chunk):
                parts.append(text)
                yield text
        usage.add(self._usage(total, messages, started, completion="".join(parts), name="stream"))

    def complete_text(self, messages: list[dict[str, str]], usage: Usage) -> str:
        """The whole answer in one response (when nobody is watching it being written)."""
        started = time.perf_counter()
        message = self._with_retries(usage.deadline, lambda: self.chat.invoke(messages))
        text = _text(message)
        usage.add(self._usage(message, messages, started, completion=text, name="text"))
        return text

    def _structured_runnable(self, schema: type[BaseModel]) -> Any:
        key = f"{schema.__module__}.{schema.__qualname__}"
        if key not in self._structured:
            extra = {"method": self.method} if self.method else {}
            self._structured[key] = self.chat.with_structured_output(schema, include_raw=True, **extra)
        return self._structured[key]

    def _with_retries(self, deadline: float | None, call: Callable[[], R]) -> R:
        """call() in a worker thread, awaited at most the attempt's time; retried on transient errors."""
        attempt = 0
        while True:
            timeout = self._attempt_timeout(deadline)
            future = _pool.submit(call)
            try:
                return future.result(timeout=timeout)
            except FutureTimeout:
                future.cancel()
                exc: BaseException = TimeoutError(f"no answer within {timeout:g}s")
            except Exception as failure:
                exc = failure
            attempt += 1
            wait = retry_wait(exc, attempt)
            if wait is None or attempt > self.max_retries or (deadline and time.monotonic() + wait >= deadline):
                raise self._unavailable(exc, timeout) from exc
            log.info("llm.retry", attempt=attempt, wait_s=round(wait, 2), reason=type(exc).__name__)
            time.sleep(wait)

    def _open_stream(self, messages: list[dict[str, str]], deadline: float | None) -> Iterator[Any]:
        """The model's chunks pumped through a queue by a worker thread, so that waiting for each one is bounded;
        the stream is retried like a call while it has yielded nothing."""
        attempt = 0
        while True:
            chunks: queue.Queue[Any] = queue.Queue()
            stop = threading.Event()
            _pool.submit(_pump, lambda: self.chat.stream(messages), chunks, stop)
            try:
                first = self._next_chunk(chunks, deadline)
            except LLMUnavailable as exc:
                stop.set()
                cause = exc.__cause__ or exc
                attempt += 1
                wait = retry_wait(cause, attempt)
                if wait is None or attempt > self.max_retries or (deadline and time.monotonic() + wait >= deadline):
                    raise
                log.info("llm.retry", attempt=attempt, wait_s=round(wait, 2), reason=type(cause).__name__)
                time.sleep(wait)
                continue
            return self._rest(first, chunks, deadline, stop)

    def _rest(
        self, first: Any, chunks: queue.Queue[Any], deadline: float | None, stop: threading.Event
    ) -> Iterator[Any]:
        try:
            chunk = first
            while chunk is not _END:
                yield chunk
                chunk = self._next_chunk(chunks, deadline, started=True)
        finally:
            stop.set()

    def _next_chunk(self, chunks: queue.Queue[Any], deadline: float | None, *, started: bool = False) -> Any:
        timeout = self._attempt_timeout(deadline)
        try:
            item = chunks.get(timeout=timeout)
        except queue.Empty:
            if started and deadline is not None and time.monotonic() >= deadline - 0.05:
                raise LLMUnavailable("the LLM was still writing when the request's time was up") from None
            raise LLMUnavailable(f"the LLM did not answer within {timeout:g}s") from TimeoutError()
        if isinstance(item, BaseException):
            if started:
                raise LLMUnavailable(f"the LLM stream broke off: {type(item).__name__}") from item
            raise self._unavailable(item, timeout) from item
        return item

    def _attempt_timeout(self, deadline: float | None) -> float:
        timeout = self.timeout_s if deadline is None else min(self.timeout_s, deadline - time.monotonic())
        if timeout <= 0.05:
            raise LLMUnavailable("the LLM did not answer within the request's time budget")
        return timeout

    def _unavailable(self, exc: BaseException, timeout: float) -> LLMUnavailable:
        if isinstance(exc, LLMUnavailable):
            return exc
        if isinstance(exc, TimeoutError) or "Timeout" in type(exc).__name__:
            return LLMUnavailable(f"the LLM did not answer within {timeout:g}s")
        if (status := status_of(exc)) is not None:
            return LLMUnavailable(f"the LLM ({self.provider}) answered {status} after {self.max_retries} retries")
        return LLMUnavailable(f"the LLM ({self.provider}) failed: {type(exc).__name__}")

    def _usage(
        self, message: Any, messages: list[dict[str, str]], started: float, *, completion: str, name: str
    ) -> Usage:
        """Usage as the provider reported it (usage_metadata), or counted with tiktoken when it did not."""
        reported = getattr(message, "usage_metadata", None) or {}
        prompt = reported.get("input_tokens") or sum(count_tokens(m["content"]) for m in messages)
        done = reported.get("output_tokens") or count_tokens(completion)
        usage = Usage(
            calls=1,
            prompt_tokens=int(prompt),
            completion_tokens=int(done),
            latency_ms=round((time.perf_counter() - started) * 1000),
            cost_usd=round((prompt * self.price_in_per_1m + done * self.price_out_per_1m) / 1_000_000, 6),
        )
        log.info("llm.call", model=self.model, call=name, tokens=prompt + done, latency_ms=usage.latency_ms)
        return usage


def _pump(open_stream: Callable[[], Iterator[Any]], chunks: queue.Queue[Any], stop: threading.Event) -> None:
    """Move the stream's chunks into the queue until it ends, fails or nobody reads any more."""
    try:
        for chunk in open_stream():
            if stop.is_set():
                return
            chunks.put(chunk)
        chunks.put(_END)
    except Exception as exc:
        chunks.put(exc)


def _text(message: Any) -> str:
    """The text of an AIMessage or chunk (content may be a string or a list of content blocks)."""
    if message is None:
        return ""
    text = getattr(message, "text", None)
    if text is not None and not callable(text):
        return str(text)
    content = getattr(message, "content", "")
    return content if isinstance(content, str) else ""


def status_of(exc: BaseException) -> int | None:
    """The HTTP status an SDK's exception carries (openai, anthropic, httpx, google, botocore), if any."""
    for candidate in (getattr(exc, "status_code", None), getattr(exc, "code", None)):
        if isinstance(candidate, int) and 100 <= candidate < 600:
            return candidate
    response = getattr(exc, "response", None)
    if isinstance(response, dict):  # botocore ClientError
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return int(status) if isinstance(status, int) else None
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def retry_wait(exc: BaseException, attempt: int) -> float | None:
    """Seconds before the next attempt, or None when the error is not worth retrying (a bad request, a bad key)."""
    response = getattr(exc, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    status = status_of(exc)
    if status is not None or code:
        if code not in RETRIED_CODES and status not in RETRIED_STATUS and (status or 0) < 500:
            return None
        headers = getattr(response, "headers", None) or {}
        for header, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
            try:
                return min(float(str(headers.get(header, ""))) * scale, 30.0)
            except ValueError:
                continue
    elif not _transient(exc):
        return None
    backoff: float = min(0.5 * 2 ** (attempt - 1), 8.0) * (1 + random.random() / 4)
    return backoff


def _transient(exc: BaseException) -> bool:
    """A timeout or a dropped connection, whichever SDK raised it."""
    if isinstance(exc, TimeoutError | ConnectionError):
        return True
    names = {cls.__name__ for cls in type(exc).__mro__}
    return any("Timeout" in n or "Connection" in n or n in ("TransportError", "NetworkError") for n in names)


def _install_hint(provider: str, missing: str) -> str:
    extra = EXTRAS.get(provider)
    fix = f"pip install 'nemawashi[{extra}]'" if extra else f"install the LangChain package for {provider}"
    return f"NEMAWASHI_LLM_PROVIDER={provider} needs {missing}, which is not installed: {fix}"
