"""The whole pipeline on NEMAWASHI_LLM_PROVIDER=langchain:openai (ChatOpenAI over HTTP to the mock LLM): drafts,
usage, and the fallback with its flag when the LLM fails, as on the SDK path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.integrations.langchain import LocalNemawashi, open_local
from service.llm.langchain_chat import LangChainChat
from tests.fakes import HashedNgramEmbedder
from tests.integrations.conftest import copy_settings

COST = "BRIDGEの費用は全部でいくらかかりますか？"


@pytest.fixture(scope="module")
def local(kb_dir: Path, llm_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNemawashi]:
    target = tmp_path_factory.mktemp("lc-provider") / "data"
    settings = copy_settings(
        kb_dir, target, openai_base_url=llm_url, llm_provider="langchain:openai", llm_model="mock-llm"
    )
    with open_local(settings, embedder=HashedNgramEmbedder()) as opened:
        yield opened


def set_fault(llm_url: str, mode: str | None) -> None:
    httpx.post(f"{llm_url.removesuffix('/v1')}/mock/fault", json={"mode": mode, "times": None}).raise_for_status()


def test_the_pipeline_drafts_through_a_langchain_provider(local: LocalNemawashi) -> None:
    assert isinstance(local.triage.llm, LangChainChat)
    answer = local.runnable().invoke(COST)
    assert answer.mode == "llm" and answer.citations and not answer.flags
    assert answer.usage.llm_calls >= 1 and answer.usage.prompt_tokens > 0 and answer.usage.cost_usd > 0


def test_a_failing_provider_falls_back_to_a_flagged_cited_extract(local: LocalNemawashi, llm_url: str) -> None:
    set_fault(llm_url, "500")
    try:
        answer = local.runnable().invoke(COST)
    finally:
        set_fault(llm_url, None)
    assert answer.mode == "extractive" and answer.citations and "llm_unavailable" in answer.flags
