"""The eval datasets in evals/datasets/ (schemas documented in evals/README.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel

from service.config import PROJECT_ROOT

DATASETS = PROJECT_ROOT / "evals" / "datasets"
Split = Literal["dev", "test"]
T = TypeVar("T", bound=BaseModel)


class Objection(BaseModel):
    id: str
    lang: str
    text: str
    root_cause: str
    secondary: str | None = None
    is_objection: bool
    split: Split
    tags: list[str] = []


class QuestionCase(BaseModel):
    id: str
    lang: str
    question: str
    doc_ids: list[str]
    answerable: bool = True
    split: Split
    faq_id: str | None = None  # the FAQ entry (without -ja/-en) that answers it as written, when one does
    search_lang: str | None = None  # cross-lingual: searched in this language's documents only (retrieval alone)


class ArticleCase(BaseModel):
    """A question on the long article in evals/corpora/, and the sections (their headings) that answer it."""

    id: str
    lang: str
    question: str
    sections: list[str]
    split: Split


class FollowUpCase(BaseModel):
    """A follow-up that leans on the previous question, and the same question asked standalone."""

    id: str
    lang: str
    split: Split
    previous: str
    followup: str
    standalone: str
    doc_ids: list[str]


class Probe(BaseModel):
    text: str
    should_hit: bool


class ApprovedCase(BaseModel):
    id: str
    lang: str
    approved_question: str
    alternates: list[str] = []  # other phrasings a reviewer answered with the same decision
    approved_answer: str
    probes: list[Probe]
    split: Split


def load_jsonl(path: Path, model: type[T]) -> list[T]:
    """Every line of a JSONL file as model; a broken line names its file and line number."""
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                items.append(model.model_validate(json.loads(line)))
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: {exc}") from exc
    return items


def load_questions(folder: Path = DATASETS) -> list[QuestionCase]:
    """The answer-pipeline questions: questions.jsonl plus the retrieval set (all answerable), less the cross-lingual
    items, which only measure retrieval (load_crosslingual)."""
    retrieval = [
        QuestionCase.model_validate({**case.model_dump(), "answerable": True})
        for case in load_jsonl(folder / "retrieval.jsonl", QuestionCase)
        if not case.search_lang
    ]
    return [*retrieval, *load_jsonl(folder / "questions.jsonl", QuestionCase)]


def load_crosslingual(folder: Path = DATASETS) -> list[QuestionCase]:
    """The retrieval items searched in one language's documents only (English questions on Japanese text)."""
    return [case for case in load_jsonl(folder / "retrieval.jsonl", QuestionCase) if case.search_lang]
