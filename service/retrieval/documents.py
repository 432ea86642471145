"""Knowledge files on disk → validated Documents with visible defaults; unreadable files become Skipped entries.

A file may declare its metadata (Markdown front matter) or not; whatever it leaves out gets a default: the id
from its path, the title from its first heading (or first line, or file name), the language detected, the type
from its folder (plan/, faq/, risks/; else plan) and `updated` from the file's modification date.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from service.errors import BadInput
from service.retrieval.sources import MB, Part, SourceLimits, convert, is_candidate

DocType = Literal["plan", "faq", "risk", "doc"]
ROOT_CAUSES = ("job_fear", "security", "cost", "process", "other")
_KANA = re.compile(r"[\u3040-\u30ff]")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")


class FrontMatter(BaseModel):
    """The keys every knowledge document declares."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    type: DocType
    title: str = Field(min_length=1)
    lang: Literal["ja", "en"]
    root_causes: list[str] = []
    questions: list[str] = []  # an FAQ entry's other phrasings (類似質問), matched like its title
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
    keep_sections: bool = False  # one chunk per section at least (slides, pages), so citations name one

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


_HEADING_LINE = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
# A file's folder names its type; anything else is part of the plan.
FOLDER_TYPES: dict[str, DocType] = {"plan": "plan", "faq": "faq", "risks": "risk", "risk": "risk"}


def path_id(rel: Path) -> str:
    """An id from the file's path: ASCII kept, the rest replaced; a hash keeps Japanese names apart."""
    text = str(rel.with_suffix("")).replace("\\", "/")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    if text.isascii() and slug:
        return slug[:100]
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{slug[:90]}-{digest}" if slug else f"doc-{digest}"


def type_from_folder(rel: Path) -> DocType:
    """plan/, faq/ and risks/ (at any depth, nearest wins) name the type; elsewhere it is plan."""
    for folder in reversed(rel.parent.parts):
        if folder.lower() in FOLDER_TYPES:
            return FOLDER_TYPES[folder.lower()]
    return "plan"


def default_title(body: str, path: Path) -> str:
    """The first heading; a .txt file's first line; else the file name."""
    heading = _HEADING_LINE.search(body)
    if heading:
        return heading.group(1).strip()[:120]
    if path.suffix.lower() == ".txt":
        first = next((line.strip() for line in body.splitlines() if line.strip()), "")
        if first:
            return first[:120]
    return path.stem[:120]


def default_meta(rel: Path, part: Part, modified: date) -> dict[str, object]:
    """What a file that declares nothing gets; shown on its /kb page, overridden by front matter."""
    return {
        "id": path_id(rel) + part.suffix,
        "type": type_from_folder(rel),
        "title": default_title(part.body, rel),
        "lang": detect_lang(part.body),
        "updated": modified,
    }


def _validated(meta: dict[str, object]) -> FrontMatter:
    try:
        return FrontMatter.model_validate(meta)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'front matter'}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"front matter: {problems}") from exc


def _content_hash(raw: bytes, part: Part, defaulted: dict[str, object]) -> str:
    """The file's bytes, plus what was derived from outside them (its folder, its path); never the mtime."""
    digest = hashlib.sha256(raw)
    derived = {k: v for k, v in defaulted.items() if k != "updated"}
    if part.suffix or derived:
        digest.update(json.dumps([part.suffix, part.body, derived], ensure_ascii=False, default=str).encode())
    return digest.hexdigest()


def too_large(size: int, limits: SourceLimits) -> str | None:
    """The reason a file of this size is skipped, or None."""
    if size <= limits.max_file_bytes:
        return None
    return (
        f"the file is {size / MB:.1f} MB; the limit is {limits.max_file_bytes / MB:.0f} MB "
        "(NEMAWASHI_KB_MAX_FILE_MB): split it or raise the limit"
    )


def parse_file(path: Path, root: Path, limits: SourceLimits | None = None) -> list[Document]:
    """The documents one file holds; ValueError with a reason a person can act on when there are none."""
    limits = limits or SourceLimits()
    reason = too_large(path.stat().st_size, limits)
    if reason:
        raise ValueError(reason)
    modified = datetime.fromtimestamp(path.stat().st_mtime, UTC).date()
    return parse_bytes(path.read_bytes(), path.relative_to(root), modified=modified, limits=limits)


def parse_bytes(raw: bytes, rel: Path, *, modified: date, limits: SourceLimits) -> list[Document]:
    """The documents a file's bytes hold (a file on disk, or an upload stored in the database at uploads/<name>)."""
    documents = []
    for part in convert(raw, rel.name, limits):
        defaults = default_meta(rel, part, modified)
        declared = {k: v for k, v in part.meta.items() if v is not None}
        meta = {**defaults, **declared}
        defaulted = {k: v for k, v in defaults.items() if k not in declared}
        documents.append(
            Document(
                meta=_validated(meta),
                body=part.body.strip(),
                path=rel.as_posix(),
                content_hash=_content_hash(raw, part, defaulted),
                keep_sections=part.keep_sections,
            )
        )
    return documents


def parse_document(path: Path, root: Path) -> Document:
    """A file that holds one document (Markdown, text, HTML, Word, PowerPoint, PDF)."""
    return parse_file(path, root)[0]


def load_documents(root: Path, limits: SourceLimits | None = None) -> LoadResult:
    """Every knowledge file under root; duplicates, broken and unsupported files are reported, not fatal."""
    if not root.is_dir():
        raise BadInput(f"knowledge folder not found: {root}", detail={"path": str(root)})
    result = LoadResult()
    seen: dict[str, str] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and is_candidate(p.name)):
        rel = path.relative_to(root).as_posix()
        if any(part.startswith(".") for part in path.relative_to(root).parts[:-1]):
            continue  # hidden folders (.git, .obsidian) hold no documents
        try:
            docs = parse_file(path, root, limits)
        except (OSError, ValueError) as exc:
            result.skipped.append(Skipped(rel, str(exc)))
            continue
        for doc in docs:
            if doc.doc_id in seen:
                result.skipped.append(Skipped(rel, f"duplicate id {doc.doc_id!r} (also in {seen[doc.doc_id]})"))
                continue
            seen[doc.doc_id] = rel
            result.documents.append(doc)
    return result
