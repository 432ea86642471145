"""Knowledge files in the formats a project office already has → Markdown parts for the heading-aware chunker.

Every format becomes the same thing: a Markdown body plus whatever metadata the file itself declares (front
matter, a document title, an FAQ or risk row's type). documents.py fills in the rest with visible defaults.
A file that cannot be read raises ValueError with a reason a person can act on; ingestion skips it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import frontmatter
import yaml

MB = 1024 * 1024


@dataclass(frozen=True)
class SourceLimits:
    """Bounds that keep one bad file from exhausting memory (Settings: NEMAWASHI_KB_MAX_*)."""

    max_file_bytes: int = 20 * MB
    max_unpacked_bytes: int = 200 * MB  # declared uncompressed size of an Office file's zip members
    max_cells: int = 50_000  # per workbook


@dataclass(frozen=True)
class Part:
    """One document a file yields: its Markdown body and the metadata the file itself declares."""

    body: str
    meta: dict[str, Any] = field(default_factory=dict)
    suffix: str = ""  # appended to the file's id when one file yields several documents (spreadsheet rows)
    keep_sections: bool = False  # slides and pages stay one chunk each, so a citation names exactly one


Converter = Callable[[bytes, str, SourceLimits], list[Part]]


def decode_text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from exc


def markdown_parts(raw: bytes, name: str, limits: SourceLimits) -> list[Part]:
    """Markdown or plain text, with or without a front matter block."""
    text = decode_text(raw)
    try:
        post = frontmatter.loads(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"front matter is not valid YAML: {str(exc).splitlines()[0]}") from exc
    meta: dict[str, Any] = dict(post.metadata)
    if text.lstrip().startswith("---") and not post.content.strip():
        raise ValueError("the document has no text after its front matter")
    return [Part(post.content.strip(), meta)]


_SKIP_TAGS = {"script", "style", "noscript", "template", "svg", "head"}
_BLOCK_TAGS = {
    "p", "div", "section", "article", "main", "header", "footer", "aside", "blockquote", "pre",
    "ul", "ol", "dl", "dt", "dd", "table", "thead", "tbody", "br", "hr", "figure", "figcaption",
}  # fmt: skip


class _HtmlToMarkdown(HTMLParser):
    """Headings, paragraphs, list items and table rows as Markdown lines; scripts and styles dropped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.title = ""
        self._line: list[str] = []
        self._prefix = ""
        self._skip = 0
        self._in_title = False
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._table_rows = 0

    def _flush(self) -> None:
        text = re.sub(r"\s+", " ", "".join(self._line)).strip()
        if text:
            self.lines.append(f"{self._prefix}{text}")
        elif self._prefix.startswith("#"):
            pass  # an empty heading says nothing
        self._line, self._prefix = [], ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        if tag in _SKIP_TAGS:
            self._skip += 1
            return
        if re.fullmatch(r"h[1-6]", tag):
            self._flush()
            self._prefix = "#" * int(tag[1]) + " "
        elif tag == "li":
            self._flush()
            self._prefix = "- "
        elif tag == "table":
            self._flush()
            self._table_rows = 0
        elif tag == "tr":
            self._flush()
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag in _BLOCK_TAGS:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
            return
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(re.sub(r"\s+", " ", "".join(self._cell)).strip().replace("|", "\\|"))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if any(self._row):
                self.lines.append("| " + " | ".join(self._row) + " |")
                self._table_rows += 1
                if self._table_rows == 1:
                    self.lines.append("|" + " --- |" * len(self._row))
            self._row = None
        elif re.fullmatch(r"h[1-6]", tag) or tag == "li" or tag in _BLOCK_TAGS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if self._skip:
            return
        if self._cell is not None:
            self._cell.append(data)
        else:
            self._line.append(data)

    def markdown(self) -> str:
        self._flush()
        out = ""
        for prev, line in zip(["", *self.lines], self.lines, strict=False):
            same_block = prev[:2] == line[:2] and line.startswith(("|", "- "))  # table rows, list items
            out += ("\n" if same_block else "\n\n") + line if out else line
        return out


def html_parts(raw: bytes, name: str, limits: SourceLimits) -> list[Part]:
    """An HTML page (e.g. saved from the intranet) as Markdown; its <title> is the document title."""
    parser = _HtmlToMarkdown()
    parser.feed(decode_text(raw))
    parser.close()
    title = re.sub(r"\s+", " ", parser.title).strip()
    return [Part(parser.markdown(), {"title": title} if title else {})]


CONVERTERS: dict[str, Converter] = {
    ".md": markdown_parts,
    ".markdown": markdown_parts,
    ".txt": markdown_parts,
    ".html": html_parts,
    ".htm": html_parts,
}
# Old binary Office formats get a reason that says how to fix them.
LEGACY = {".doc": ".docx", ".ppt": ".pptx", ".xls": ".xlsx"}
# Files that live in a knowledge folder without being documents: its configuration, editors' lock files.
NOT_DOCUMENTS = (".yaml", ".yml")


def is_candidate(name: str) -> bool:
    """Whether a file in the knowledge folder is meant as a document (hidden and lock files are not)."""
    return not name.startswith((".", "~$")) and not name.lower().endswith(NOT_DOCUMENTS)


def convert(raw: bytes, name: str, limits: SourceLimits) -> list[Part]:
    """The Markdown parts of one file, or ValueError saying why it cannot be indexed."""
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    converter = CONVERTERS.get(suffix)
    if converter is None:
        if suffix in LEGACY:
            raise ValueError(f"{suffix} is the old Office format; save it as {LEGACY[suffix]} and ingest again")
        supported = ", ".join(sorted(CONVERTERS))
        raise ValueError(f"unsupported file type {suffix or '(no extension)'!r}; supported: {supported}")
    parts = [p for p in converter(raw, name, limits) if p.body.strip()]
    if not parts:
        raise ValueError("the file has no text to index")
    return parts
