"""Policy that lives in Settings properties."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import make_settings


@pytest.mark.parametrize(
    ("base_url", "redacted"),
    [
        ("http://127.0.0.1:8009/v1", False),
        ("http://localhost:11434/v1", False),
        ("http://[::1]:8000/v1", False),
        ("http://127.attacker.example/v1", True),
        ("https://api.example.com/v1", True),
    ],
)
def test_text_is_redacted_unless_the_llm_is_on_this_machine(tmp_path: Path, base_url: str, redacted: bool) -> None:
    settings = make_settings(tmp_path, openai_base_url=base_url)
    assert settings.redact_for_llm is redacted


def test_redaction_can_be_forced_either_way(tmp_path: Path) -> None:
    assert make_settings(tmp_path, openai_base_url="http://127.0.0.1/v1", redact_pii="always").redact_for_llm
    assert not make_settings(tmp_path, openai_base_url="https://api.example.com/v1", redact_pii="never").redact_for_llm


def test_approved_answers_live_beside_the_knowledge_collection_unless_named(tmp_path: Path) -> None:
    assert make_settings(tmp_path, collection="kb").approved_collection_name == "kb-approved"
    assert make_settings(tmp_path, approved_collection="mine").approved_collection_name == "mine"
