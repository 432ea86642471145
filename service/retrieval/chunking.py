"""Heading-aware chunking bounded in tokens, keeping Japanese sentence ends (。！？) in the text."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from service.retrieval.documents import Document
from service.tokens import count_tokens, encoding

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
# Split after a sentence end, keeping the mark with its sentence.
_SENTENCE_END = re.compile(r"(?<=[。！？!?])\s*|(?<=[.])\s+")


@dataclass(frozen=True)
class Section:
    path: tuple[str, ...]  # heading texts from the top down
    heading_line: str  # the Markdown heading as written, "" for text before the first heading
    body: str


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    doc_id: str
    index: int
    section: str
    text: str
    tokens: int
    context: str = ""  # the headings above the chunk that its text does not start with (" > "), for the embedder


def _context(section: Section) -> str:
    """The section's path less its own heading, which the chunk's text already starts with."""
    return " > ".join(section.path[:-1] if section.heading_line else section.path)


class Chunker(Protocol):
    """Cuts one document into chunks of at most max_tokens (chunk_document; benchmarks/chunking.py compares others)."""

    def __call__(self, doc: Document, *, max_tokens: int) -> list[Chunk]: ...


def split_sections(body: str) -> list[Section]:
    """Cut Markdown at headings; each section remembers the headings above it."""
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    heading_line, lines = "", []  # type: tuple[str, list[str]]

    def close() -> None:
        text = "\n".join(lines).strip()
        if text or heading_line:
            sections.append(Section(tuple(h for _, h in path), heading_line, text))

    in_code = False
    for line in body.splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
        match = None if in_code else _HEADING.match(line)
        if not match:
            lines.append(line)
            continue
        close()
        level, title = len(match.group(1)), match.group(2)
        path = [(lvl, h) for lvl, h in path if lvl < level] + [(level, title)]
        heading_line, lines = line.strip(), []
    close()
    return sections


def split_sentences(text: str) -> list[str]:
    """Lines, then sentences; each piece keeps its closing punctuation."""
    pieces: list[str] = []
    for line in text.splitlines():
        if line.lstrip().startswith("|"):  # a table row is one unit
            pieces.append(line)
            continue
        pieces.extend(p for p in _SENTENCE_END.split(line) if p.strip())
    return pieces


def _hard_split(text: str, max_tokens: int) -> list[str]:
    """A single sentence longer than the budget: cut it by tokens."""
    ids = encoding().encode_ordinary(text)
    return [encoding().decode(ids[i : i + max_tokens]) for i in range(0, len(ids), max_tokens)]


def _pack(header: str, body: str, max_tokens: int) -> list[str]:
    """Fill chunks sentence by sentence; every chunk of a section starts with its heading, and a table cut in two
    repeats its header rows, so that its rows still say what they are."""
    budget = max_tokens - count_tokens(header) - 1
    units: list[str] = []
    for sentence in split_sentences(body):
        units.extend(_hard_split(sentence, budget) if count_tokens(sentence) > budget else [sentence])
    units, heads = _with_table_heads(units)
    return [_join(header, piece) for piece in _fill(units, heads, budget=budget)] or [_join(header, [])]


def _is_row(unit: str) -> bool:
    return unit.lstrip().startswith("|")


def _is_rule(unit: str) -> bool:
    """A table's |---|---| line."""
    return _is_row(unit) and set(unit.replace("|", "").strip()) <= set("-: ")


def _with_table_heads(units: list[str]) -> tuple[list[str], list[list[str]]]:
    """The units with each table's header row and rule joined into one, and for each unit the header of the table
    it is a body row of (empty for anything else)."""
    joined: list[str] = []
    for unit in units:
        if _is_rule(unit) and joined and _is_row(joined[-1]) and "\n" not in joined[-1]:
            joined[-1] = f"{joined[-1]}\n{unit}"
        else:
            joined.append(unit)
    heads: list[list[str]] = []
    head: list[str] = []
    for i, unit in enumerate(joined):
        first = _is_row(unit) and (i == 0 or not _is_row(joined[i - 1]))
        if first or not _is_row(unit):
            head = [unit] if first and "\n" in unit else []  # a table's first unit is its header, when it has one
        heads.append([] if first else head)
    return joined, heads


def _fill(units: list[str], heads: list[list[str]], *, budget: int) -> list[list[str]]:
    """Units packed in order: a piece closes before a unit that would pass the budget."""
    pieces: list[list[str]] = []
    current: list[str] = []
    used = 0
    for unit, head in zip(units, heads, strict=True):
        cost = count_tokens(unit) + 1
        if current and used + cost > budget:
            # A table's header just before the cut moves on with its rows instead of being repeated.
            moved = bool(head) and current[-1] == head[0] and len(current) > 1
            carry = [current.pop()] if moved else list(head)
            carried = sum(count_tokens(h) + 1 for h in carry)
            if carried + cost > budget:  # a row too long to go with its header
                current, carry, carried = current + carry if moved else current, [], 0
            pieces.append(current)
            current, used = carry, carried
        current.append(unit)
        used += cost
    if current:
        pieces.append(current)
    return pieces


def _join(header: str, units: list[str]) -> str:
    # Japanese sentences join without spaces; table rows and other lines keep their breaks.
    body = ""
    for unit in units:
        glue = "" if body.endswith(("。", "！", "？")) and not unit.startswith(("|", "-", "*")) else "\n"
        body = f"{body}{glue}{unit}" if body else unit
    return f"{header}\n{body}".strip() if header else body.strip()


def _section_text(section: Section) -> str:
    return f"{section.heading_line}\n{section.body}".strip()


FAQ_MAX_TOKENS = 480  # e5 reads 512 of its own tokens; Japanese takes fewer of them than of tiktoken's


def chunk_document(doc: Document, *, max_tokens: int) -> list[Chunk]:
    """Chunks of one document. FAQ entries are never merged with each other nor split from their question;
    slides and pages (doc.keep_sections) are never merged either, so a citation names one of them."""
    texts: list[tuple[Section, str]] = []  # (the chunk's first section, text)
    pending: list[Section] = []
    # An FAQ answer is cited and served whole: it may go past the budget up to what the embedder reads.
    limit = max(max_tokens, FAQ_MAX_TOKENS) if doc.meta.type == "faq" else max_tokens

    def flush() -> None:
        if pending:
            text = "\n\n".join(_section_text(s) for s in pending)
            texts.append((pending[0], text))
            pending.clear()

    for section in split_sections(doc.body):
        text = _section_text(section)
        if not text:
            continue
        if count_tokens(text) > limit:
            flush()
            for piece in _pack(section.heading_line, section.body, max_tokens):
                texts.append((section, piece))
            continue
        merged = "\n\n".join([*(_section_text(s) for s in pending), text])
        if pending and (doc.meta.type == "faq" or doc.keep_sections or count_tokens(merged) > max_tokens):
            flush()
        pending.append(section)
    flush()
    return [
        Chunk(f"{doc.doc_id}#{i}", doc.doc_id, i, " > ".join(first.path), text, count_tokens(text), _context(first))
        for i, (first, text) in enumerate(texts)
    ]
