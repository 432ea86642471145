"""Knowledge files on disk → validated Documents; unreadable files become Skipped entries."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal

import frontmatter
import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

from service.errors import BadInput

DocType = Literal["plan", "faq", "risk", "doc"]
ROOT_CAUSES = ("job_fear", "security", "cost", "process", "other")
SUFFIXES = (".md", ".markdown", ".txt")
_KANA = re.compile(r"[\u3040-\u30ff]")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")


class FrontMatter(BaseModel):
    """The keys every knowledge document declares."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    type: DocType
    title: str = Field(min_length=1)
    lang: Literal["ja", "en"]
    root_causes: list[str] = []
    updated: date | None = None

    @field_validator("root_causes")
    @classmethod
    def _known_causes(cls, value: list[str]) -> list[str]:
        unknown = [v for v in value if v not in ROOT_CAUSES]
        if unknown:
            raise ValueError(f"unknown root cause(s) {unknown}; use {list(ROOT_CAUSES)}")
        return value


@dataclass(frozen=True)
class Document:
    meta: FrontMatter
    body: str
    path: str
    content_hash: str

    @property
    def doc_id(self) -> str:
        return self.meta.id


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass
class LoadResult:
    documents: list[Document] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def detect_lang(text: str) -> Literal["ja", "en"]:
    """Japanese when the text has kana, or is mostly CJK; English otherwise."""
    if _KANA.search(text):
        return "ja"
    letters = [c for c in text if c.isalpha()]
    cjk = sum(1 for c in letters if _CJK.match(c))
    return "ja" if letters and cjk / len(letters) > 0.3 else "en"


def _plain_text_meta(path: Path, root: Path, text: str) -> dict[str, object]:
    """Front matter for a plain-text file that has none: id from its path, title from line one."""
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), path.stem)
    doc_id = re.sub(r"[^A-Za-z0-9._-]+", "-", str(path.relative_to(root).with_suffix(""))).strip("-")
    return {"id": doc_id or path.stem, "type": "doc", "title": first_line[:120], "lang": detect_lang(text)}


def parse_document(path: Path, root: Path) -> Document:
    """Read one file; raise ValueError with a reason a person can act on."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from exc
    try:
        post = frontmatter.loads(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"front matter is not valid YAML: {str(exc).splitlines()[0]}") from exc
    meta: dict[str, object] = dict(post.metadata)
    if not meta and path.suffix == ".txt":
        meta = _plain_text_meta(path, root, post.content)
    try:
        front = FrontMatter.model_validate(meta)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'front matter'}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"front matter: {problems}") from exc
    if not post.content.strip():
        raise ValueError("the document has no text after its front matter")
    digest = hashlib.sha256(raw).hexdigest()
    return Document(meta=front, body=post.content.strip(), path=str(path.relative_to(root)), content_hash=digest)


def load_documents(root: Path) -> LoadResult:
    """Every knowledge file under root; duplicates and broken files are reported, not fatal."""
    if not root.is_dir():
        raise BadInput(f"knowledge folder not found: {root}", detail={"path": str(root)})
    result = LoadResult()
    seen: dict[str, str] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES):
        rel = str(path.relative_to(root))
        try:
            doc = parse_document(path, root)
        except (OSError, ValueError) as exc:
            result.skipped.append(Skipped(rel, str(exc)))
            continue
        if doc.doc_id in seen:
            result.skipped.append(Skipped(rel, f"duplicate id {doc.doc_id!r} (also in {seen[doc.doc_id]})"))
            continue
        seen[doc.doc_id] = rel
        result.documents.append(doc)
    return result
