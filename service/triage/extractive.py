"""The offline answer when no FAQ entry fits and no LLM runs: the best passage's most relevant paragraph.

It has to read as an answer: whole sentences only, never a table row or a heading, no fragment the chunker cut
off (a line starting with 「ー」 or mid-sentence), in the asker's language when the knowledge base has it."""

from __future__ import annotations

import re

from service.retrieval.lexical import tokenize
from service.triage.drafting import Passage

_SENTENCE_END = re.compile(r"[。！？!?]|[.](?=\s|$)")
_FRAGMENT_START = re.compile(r"^[ー・、。，,.)）」』\]a-z]")
_LIST_MARK = re.compile(r"^\s*(?:[-*+・]|\d+[.)．])\s+")
_MAX_CHARS = {"ja": 260, "en": 520}

LEAD = {
    "ja": "ナレッジベースの「{title}」に、次のように書かれています。",
    "en": "Here is what the knowledge base says in “{title}”:",
}
JA_SOURCE_FOR_EN = "Only a Japanese document covers this; here is what it says (in Japanese), from “{title}”:"


def paragraphs(text: str) -> list[str]:
    """Prose paragraphs of a passage: tables, headings and cut-off fragments dropped, list items as sentences."""
    out: list[str] = []
    for block in re.split(r"\n\s*\n", text):
        lines = [_LIST_MARK.sub("", line).strip() for line in block.splitlines()]
        lines = [line for line in lines if line and not line.startswith(("|", "#", "---", ">"))]
        paragraph = _whole_sentences(" ".join(lines) if _is_english(lines) else "".join(lines))
        if paragraph:
            out.append(paragraph)
    return out


def _is_english(lines: list[str]) -> bool:
    text = "".join(lines)
    return sum(c.isascii() for c in text) > 0.7 * max(len(text), 1)


def _whole_sentences(text: str) -> str:
    """text without a fragment before its first sentence (a chunk cut mid-sentence) or after its last one."""
    text = text.strip()
    if _FRAGMENT_START.match(text):
        first_end = _SENTENCE_END.search(text)
        text = text[first_end.end() :].strip() if first_end else ""
    ends = list(_SENTENCE_END.finditer(text))
    return text[: ends[-1].end()].strip() if ends else ""


def _shorten(paragraph: str, limit: int) -> str:
    """The paragraph's leading whole sentences within limit characters (at least one sentence)."""
    if len(paragraph) <= limit:
        return paragraph
    cut = [m.end() for m in _SENTENCE_END.finditer(paragraph) if m.end() <= limit]
    return paragraph[: cut[-1]].strip() if cut else paragraph


def best_paragraph(question: str, passage: Passage, lang: str) -> str:
    """The paragraph of the passage that shares the most words with the question; the first on a tie."""
    found = paragraphs(passage.hit.text)
    if not found:
        return ""
    wanted = set(tokenize(question))
    best = max(found, key=lambda p: (len(set(tokenize(p)) & wanted), -found.index(p)))
    return _shorten(best, _MAX_CHARS.get(passage.hit.lang, _MAX_CHARS[lang]))


def extractive_answer(question: str, passages: list[Passage], *, lang: str) -> str:
    """One clean paragraph of the best passage, with its citation; the asker's language preferred."""
    ordered = sorted(passages, key=lambda p: p.hit.lang != lang)  # stable: best-ranked first within a language
    for passage in ordered:
        paragraph = best_paragraph(question, passage, lang)
        if not paragraph:
            continue
        title = passage.hit.title
        lead = JA_SOURCE_FOR_EN if lang == "en" and passage.hit.lang == "ja" else LEAD[lang]
        separator = "" if passage.hit.lang == "ja" else " "
        return f"{lead.format(title=title)}\n{paragraph}{separator}[{passage.n}]"
    return ""
