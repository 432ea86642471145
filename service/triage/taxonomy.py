"""The root-cause taxonomy, read from knowledge/taxonomy.yaml (labels, descriptions, examples)."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from service.errors import BadInput


class LocalizedText(BaseModel):
    ja: str
    en: str


class Examples(BaseModel):
    ja: list[str]
    en: list[str]


class Label(BaseModel):
    id: str
    name: LocalizedText
    description: LocalizedText
    examples: Examples


class Taxonomy(BaseModel):
    version: int = 1
    labels: list[Label]

    @property
    def ids(self) -> list[str]:
        return [label.id for label in self.labels]

    def examples(self) -> list[tuple[str, str]]:
        """(text, label id) for every example in both languages."""
        return [(text, label.id) for label in self.labels for text in (*label.examples.ja, *label.examples.en)]


def load_taxonomy(path: Path) -> Taxonomy:
    """The taxonomy file, or BadInput naming what is wrong with it."""
    try:
        return Taxonomy.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except FileNotFoundError as exc:
        raise BadInput(f"root-cause taxonomy not found: {path}") from exc
    except (yaml.YAMLError, ValidationError) as exc:
        raise BadInput(f"{path}: not a valid taxonomy ({str(exc).splitlines()[0]})") from exc
