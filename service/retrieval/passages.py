"""A cited passage on its /kb page: the link that names the chunk, and the page's Markdown cut around it to mark it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.retrieval.service import KnowledgeIndex

_SPACE = re.compile(r"\s+")
_HEADING = re.compile(r"^#{1,6}\s")
_MAX_DIGITS = 6


def citation_url(doc_id: str, chunk_id: str = "") -> str:
    """The /kb page of doc_id; when chunk_id is one of its chunks (doc_id#n), a link that opens at that passage."""
    prefix, _, n = chunk_id.rpartition("#")
    if prefix == doc_id and n.isascii() and n.isdigit():
        return f"/kb/{doc_id}?passage={n}#passage"
    return f"/kb/{doc_id}"


def passage_text(index: KnowledgeIndex, *, doc_id: str, passage: str) -> str | None:
    """The text of chunk number `passage` of doc_id as indexed; None for an unknown or garbled number."""
    if not (passage.isascii() and passage.isdigit() and len(passage) <= _MAX_DIGITS):
        return None
    chunk = index.chunks.get(f"{doc_id}#{int(passage)}")
    return chunk.text if chunk else None


@dataclass(frozen=True)
class MarkedBody:
    """A document's Markdown in three parts: before the cited passage, the blocks that hold it, after."""

    before: str
    passage: str
    after: str


def mark_passage(body: str, passage: str) -> MarkedBody | None:
    """The body cut around the Markdown blocks the passage was chunked from; None when the body does not hold it
    (the document changed since it was cited)."""
    blocks = _blocks(body)
    span = _span(_squashed(body), passage)
    if span is None:
        return None
    inside, at = [], 0
    for block in blocks:
        size = len(_squashed(block))
        inside.append(at < span[1] and at + size > span[0])
        at += size
    start, end = inside.index(True), len(inside) - inside[::-1].index(True)
    return MarkedBody(*("\n\n".join(part) for part in (blocks[:start], blocks[start:end], blocks[end:])))


def _squashed(text: str) -> str:
    # Chunking joins Japanese sentences without a space and others with a line break: compare without white space.
    return _SPACE.sub("", text)


def _span(body: str, passage: str) -> tuple[int, int] | None:
    """Where the passage stands in the squashed body. A later piece of a long section repeats the section's heading
    as its first line, and a piece of a long table the table's header rows: then the rest of the piece stands
    further down, after that heading. The fewest leading lines are dropped."""
    lines = passage.strip().splitlines()
    heading = body.find(_squashed(lines[0])) if lines and _HEADING.match(lines[0]) else 0
    for skip in range(len(lines)):
        wanted = _squashed("\n".join(lines[skip:]))
        at = body.find(wanted, max(heading, 0) if skip else 0) if wanted else -1
        if at >= 0:
            return at, at + len(wanted)
    return None


def _blocks(body: str) -> list[str]:
    """The body's Markdown blocks: headings, and runs of lines between blank lines, with code fences and indented
    continuations kept in their block, so that the blocks rendered part by part render as the whole does."""
    blocks: list[list[str]] = [[]]
    in_code = False
    for line in body.splitlines():
        current = blocks[-1]
        if in_code or not line.strip():
            if current:
                current.append(line)  # a blank line: whether it ends the block depends on the next line
        elif _HEADING.match(line):
            blocks += [[line], []]
        elif current and not current[-1].strip() and not line[0].isspace():
            blocks.append([line])
        else:
            current.append(line)
        if line.lstrip().startswith("```"):
            in_code = not in_code
    return [text for text in ("\n".join(lines).rstrip() for lines in blocks) if text.strip()]
