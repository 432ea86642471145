"""Small builders for knowledge files in temp folders."""

from __future__ import annotations

from pathlib import Path

from service.retrieval.documents import Document, FrontMatter


def write_doc(
    folder: Path,
    doc_id: str,
    body: str,
    *,
    doc_type: str = "faq",
    lang: str = "ja",
    title: str | None = None,
    root_causes: str = "[job_fear]",
) -> Path:
    """A Markdown knowledge file with front matter; returns its path."""
    path = folder / f"{doc_id}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"---\nid: {doc_id}\ntype: {doc_type}\ntitle: {title or doc_id}\nlang: {lang}\n"
        f"root_causes: {root_causes}\nupdated: 2026-11-20\n---\n{body}\n",
        encoding="utf-8",
    )
    return path


def make_document(body: str, *, doc_type: str = "plan", doc_id: str = "doc-1") -> Document:
    meta = FrontMatter(id=doc_id, type=doc_type, title="タイトル", lang="ja")  # type: ignore[arg-type]
    return Document(meta=meta, body=body, path=f"{doc_id}.md", content_hash="x")
