"""The ChatModel over LangChain: a real ChatOpenAI against the mock LLM over HTTP, and LangChain's fake chat
models for structured output and the failure paths. Same guarantees as the OpenAI SDK path."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import BaseModel

from service.config import Settings
from service.errors import LLMUnavailable
from service.llm.client import LLMOutputError, OpenAIChat, Usage, make_chat_model
from service.llm.langchain_chat import LangChainChat, ProviderMissing, langchain_provider
from service.triage.classifier import LLMClassification
from tests.conftest import make_settings

CLASSIFY = [
    {"role": "system", "content": "Classify the comment. Reply with the labels."},
    {"role": "user", "content": "<comment>AIに仕事を奪われてクビになるのが不安です。</comment>"},
]
DRAFT = [
    {"role": "system", "content": "Answer from the passages; cite them as [n]."},
    {
        "role": "user",
        "content": "<question>研修はいつ始まりますか？</question>\n"
        '<passage n="1" doc_id="plan-ja">リスキリング研修は2027年4月に始まります。'
        "研修は営業部の全員が受けます。</passage>",
    },
]


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    from service.llm.mock_server import running_mock

    with running_mock() as url:
        yield url


@pytest.fixture
def mock(mock_url: str) -> Iterator[str]:
    fault(mock_url, None)
    yield mock_url
    fault(mock_url, None)


def fault(url: str, mode: str | None, times: int | None = None) -> None:
    httpx.post(f"{url.removesuffix('/v1')}/mock/fault", json={"mode": mode, "times": times}).raise_for_status()


def over_mock(url: str, **overrides: Any) -> LangChainChat:
    settings = make_settings(
        Settings().data_dir,
        llm_provider="langchain:openai",
        openai_base_url=url,
        llm_model="mock-llm",
        **{"llm_timeout_s": 5.0, "llm_max_retries": 2, **overrides},
    )
    chat = make_chat_model(settings)
    assert isinstance(chat, LangChainChat)
    return chat


def test_the_provider_setting_picks_the_sdk_or_langchain(tmp_path: Any) -> None:
    assert langchain_provider("openai") is None and langchain_provider("langchain:openai") == "openai"
    assert langchain_provider("anthropic") == "anthropic"
    assert isinstance(make_chat_model(make_settings(tmp_path, openai_base_url="http://127.0.0.1:9/v1")), OpenAIChat)
    assert make_chat_model(make_settings(tmp_path)) is None  # offline default: no LLM, no LangChain
    with pytest.raises(ProviderMissing, match=r"pip install 'nemawashi\[anthropic\]'"):
        make_chat_model(make_settings(tmp_path, llm_provider="anthropic", llm_model="claude-sonnet-4-5"))


def test_structured_output_through_chatopenai_on_the_mock(mock: str) -> None:
    for method in ("json_schema", "function_calling", "json_mode"):
        chat = over_mock(mock, llm_structured_output=method)
        answer, usage = chat.structured(CLASSIFY, LLMClassification, name="classification")
        assert answer.primary == "job_fear" and answer.is_objection, method
        # The mock reports about two characters per token; a count of our own would differ.
        assert usage.calls == 1 and usage.prompt_tokens > 10 and usage.completion_tokens > 10 and usage.cost_usd > 0
    assert chat.model == "openai:mock-llm"


def test_streamed_and_whole_text_with_usage_on_the_mock(mock: str) -> None:
    chat = over_mock(mock)
    usage = Usage.within(10)
    deltas = list(chat.stream_text(DRAFT, usage))
    assert len(deltas) > 1 and "[1]" in "".join(deltas) and "2027年4月" in "".join(deltas)
    assert usage.calls == 1 and usage.completion_tokens > 0
    whole = chat.complete_text(DRAFT, usage)
    assert whole == "".join(deltas) and usage.calls == 2


def test_a_rate_limit_is_retried_after_the_servers_retry_after(mock: str) -> None:
    fault(mock, "429", times=1)
    started = time.monotonic()
    answer, _ = over_mock(mock).structured(CLASSIFY, LLMClassification, name="classification")
    assert answer.primary == "job_fear" and time.monotonic() - started >= 0.9  # Retry-After: 1


def test_a_server_down_is_unavailable_after_the_retries(mock: str) -> None:
    fault(mock, "500")
    with pytest.raises(LLMUnavailable, match="answered 500 after 1 retries"):
        over_mock(mock, llm_max_retries=1).complete_text(DRAFT, Usage())
    with pytest.raises(LLMUnavailable):
        list(over_mock(mock, llm_max_retries=0).stream_text(DRAFT, Usage()))


def test_a_hanging_llm_gives_up_at_the_requests_deadline(mock: str) -> None:
    fault(mock, "hang")
    chat = over_mock(mock, llm_timeout_s=30.0)
    started = time.monotonic()
    with pytest.raises(LLMUnavailable):
        chat.structured(CLASSIFY, LLMClassification, name="classification", deadline=time.monotonic() + 1.0)
    with pytest.raises(LLMUnavailable):
        list(chat.stream_text(DRAFT, Usage.within(1.0)))
    assert time.monotonic() - started < 4


def test_a_malformed_answer_is_an_output_error_that_still_counts_its_tokens(mock: str) -> None:
    fault(mock, "malformed")
    with pytest.raises(LLMOutputError, match="did not match classification") as caught:
        over_mock(mock, llm_structured_output="function_calling").structured(
            CLASSIFY, LLMClassification, name="classification"
        )
    assert caught.value.usage is not None and caught.value.usage.completion_tokens > 0


# --- LangChain's fake chat models ------------------------------------------------------------------------------


class ScriptedChat(GenericFakeChatModel):
    """GenericFakeChatModel whose script may also raise, and that 'binds' tools by answering with tool calls."""

    calls: int = 0

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
        self.calls += 1
        step = next(self.messages)
        if isinstance(step, BaseException):
            raise step
        return _result(step)

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self


def _result(step: Any) -> ChatResult:
    message = AIMessage(content=step) if isinstance(step, str) else step
    return ChatResult(generations=[ChatGeneration(message=message)])


class StatusError(Exception):
    """What provider SDKs raise for an HTTP error: the status on the exception."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


def scripted(*steps: Any, retries: int = 2, timeout_s: float = 5.0) -> tuple[LangChainChat, ScriptedChat]:
    fake = ScriptedChat(messages=iter(steps))
    chat = LangChainChat(
        chat=fake,
        provider="fake",
        model_name="scripted",
        timeout_s=timeout_s,
        max_retries=retries,
        method=None,
        price_in_per_1m=1.0,
        price_out_per_1m=2.0,
    )
    return chat, fake


class Verdict(BaseModel):
    label: str
    confidence: float


def tool_answer(args: dict[str, Any], *, tokens: tuple[int, int] = (120, 30)) -> AIMessage:
    return AIMessage(
        content="",
        tool_calls=[{"name": "Verdict", "args": args, "id": "call_1"}],
        usage_metadata={"input_tokens": tokens[0], "output_tokens": tokens[1], "total_tokens": sum(tokens)},
    )


def test_structured_output_from_a_fake_model_with_its_reported_usage_and_cost() -> None:
    chat, _ = scripted(tool_answer({"label": "cost", "confidence": 0.8}))
    answer, usage = chat.structured(CLASSIFY, Verdict, name="verdict")
    assert answer == Verdict(label="cost", confidence=0.8)
    assert (usage.calls, usage.prompt_tokens, usage.completion_tokens) == (1, 120, 30)
    assert usage.cost_usd == pytest.approx((120 * 1.0 + 30 * 2.0) / 1_000_000)


def test_an_answer_of_the_wrong_shape_is_an_output_error_with_its_usage() -> None:
    chat, _ = scripted(tool_answer({"label": "cost", "confidence": "very"}, tokens=(50, 7)))
    with pytest.raises(LLMOutputError, match="did not match verdict") as caught:
        chat.structured(CLASSIFY, Verdict, name="verdict")
    assert caught.value.usage is not None and caught.value.usage.completion_tokens == 7
    chat, _ = scripted(AIMessage(content="I would rather not."))
    with pytest.raises(LLMOutputError):
        chat.structured(CLASSIFY, Verdict, name="verdict")


def test_rate_limits_and_server_errors_are_retried_and_a_bad_key_is_not() -> None:
    chat, fake = scripted(StatusError(429), StatusError(503), tool_answer({"label": "cost", "confidence": 0.5}))
    assert chat.structured(CLASSIFY, Verdict, name="verdict")[0].label == "cost" and fake.calls == 3
    chat, fake = scripted(StatusError(401), tool_answer({"label": "cost", "confidence": 0.5}))
    with pytest.raises(LLMUnavailable, match="answered 401"):
        chat.structured(CLASSIFY, Verdict, name="verdict")
    assert fake.calls == 1
    chat, fake = scripted(ConnectionError("reset"), "それは研修です。")
    assert chat.complete_text(DRAFT, Usage()) == "それは研修です。" and fake.calls == 2


def test_no_retry_is_started_that_would_end_past_the_deadline() -> None:
    chat, fake = scripted(StatusError(503), "late", retries=5)
    with pytest.raises(LLMUnavailable):
        chat.complete_text(DRAFT, Usage.within(0.3))  # the first backoff (0.5 s or more) would pass the deadline
    assert fake.calls == 1


class SlowChat(ScriptedChat):
    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
        time.sleep(3)
        return _result("too late")


def test_a_model_without_timeouts_of_its_own_is_cut_at_the_deadline() -> None:
    chat = LangChainChat(SlowChat(messages=iter([])), "fake", "slow", 30.0, 0, None, 0.0, 0.0)
    started = time.monotonic()
    with pytest.raises(LLMUnavailable, match="did not answer"):
        chat.complete_text(DRAFT, Usage.within(0.5))
    with pytest.raises(LLMUnavailable):
        list(chat.stream_text(DRAFT, Usage.within(0.5)))
    assert time.monotonic() - started < 2


def test_a_fake_models_stream_arrives_in_pieces_with_counted_usage() -> None:
    chat, _ = scripted("研修は 2027年4月に 始まります。 [1]")
    usage = Usage()
    deltas = list(chat.stream_text(DRAFT, usage))
    assert len(deltas) > 1 and "".join(deltas) == "研修は 2027年4月に 始まります。 [1]"
    assert usage.calls == 1 and usage.completion_tokens > 0 and usage.prompt_tokens > 0  # counted: none reported
