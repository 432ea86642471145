"""Drafts: numbered passages in, cited answer out; citations checked, leaks and empty answers caught."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from service.retrieval.lexical import tokenize
from service.retrieval.schemas import Hit
from service.triage.schemas import Citation, Flag

NO_ANSWER = "[[NO_ANSWER]]"
_MARKER = re.compile(r"\[(\d{1,3})\]")
_DANGLING = re.compile(r"\[\d{0,3}$")  # a marker the model never closed
_SENTENCES = re.compile(r"[^。！？!?\n]+[。！？!?]?")
_LEAK_WINDOW = 30  # characters of the system prompt that may not appear in an answer

ABSTAIN_TEXT = {
    "ja": "ご質問ありがとうございます。この内容は、現在のナレッジベースの資料だけでは確かなお答えができません。"
    "担当チーム（PMO）に引き継ぎましたので、担当者から改めて回答します。",
    "en": "Thank you for your question. The knowledge base does not cover it well enough for a reliable answer, "
    "so it has gone to the project team (PMO), who will reply to you.",
}
REVIEW_FIRST_TEXT = {
    "ja": "ご質問を受け付けました。プロジェクトチームが回答案を確認したうえで、改めてお答えします。",
    "en": "We have received your question. The project team will check the draft answer and reply to you.",
}


@dataclass
class Passage:
    n: int
    hit: Hit

    def citation(self) -> Citation:
        snippet = self.hit.text if len(self.hit.text) <= 200 else self.hit.text[:199] + "…"
        return Citation(
            n=self.n,
            doc_id=self.hit.doc_id,
            chunk_id=self.hit.chunk_id,
            title=self.hit.title,
            url=self.hit.url,
            snippet=snippet,
            score=self.hit.dense_score if self.hit.dense_score is not None else self.hit.score,
        )


def number_passages(hits: list[Hit], *, lang: str) -> list[Passage]:
    """Passages numbered from 1, the asker's language first (the KB holds both languages)."""
    ordered = sorted(hits, key=lambda h: h.lang != lang)
    return [Passage(n, hit) for n, hit in enumerate(ordered, 1)]


def cited_numbers(text: str) -> list[int]:
    return [int(m) for m in _MARKER.findall(text)]


def citations_for(text: str, passages: list[Passage]) -> list[Citation]:
    """The citations text uses, in order of first use."""
    by_n = {p.n: p for p in passages}
    seen: list[int] = []
    for n in cited_numbers(text):
        if n in by_n and n not in seen:
            seen.append(n)
    return [by_n[n].citation() for n in seen]


@dataclass
class StreamGuard:
    """Filters a streamed answer: drops citations to passages not given, stops on a leaked system prompt.

    Text is released a little behind the model so a marker or a leak is judged before anyone sees it.
    """

    valid: set[int]
    system_prompt: str
    text: str = ""
    released: int = 0
    flags: list[Flag] = field(default_factory=list)
    leaked: bool = False
    _shingles: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        prompt = " ".join(self.system_prompt.split())
        self._shingles = {prompt[i : i + _LEAK_WINDOW] for i in range(max(len(prompt) - _LEAK_WINDOW + 1, 0))}

    def feed(self, delta: str) -> str:
        """Take a delta from the model; return what may be shown now."""
        self.text += delta
        self._check_leak()
        return "" if self.leaked else self._release(final=False)

    def finish(self) -> str:
        """Whatever is still held back, once the model is done."""
        return "" if self.leaked else self._release(final=True)

    def clean_text(self) -> str:
        """The whole answer with invalid citation markers (and a marker cut off at the end) removed."""
        return self._drop_invalid(self.text, final=True).strip()

    def _check_leak(self) -> None:
        flat = " ".join(self.text.split())
        if any(flat[i : i + _LEAK_WINDOW] in self._shingles for i in range(max(len(flat) - _LEAK_WINDOW + 1, 0))):
            self.leaked = True
            self._flag(Flag.system_prompt_leak)

    def _release(self, *, final: bool) -> str:
        cleaned = self._drop_invalid(self.text, final=final)
        hold = 0 if final else _LEAK_WINDOW + 5
        # Never release half of a marker like "[1" or the start of [[NO_ANSWER]].
        upto = max(len(cleaned) - hold, 0)
        if not final:
            bracket = cleaned.rfind("[", 0, upto + 1)
            if bracket != -1 and "]" not in cleaned[bracket:upto]:
                upto = bracket
            if cleaned.startswith("[["):
                upto = 0
        out = cleaned[self.released : upto] if upto > self.released else ""
        self.released = max(self.released, upto)
        return out

    def _drop_invalid(self, text: str, *, final: bool = False) -> str:
        def keep(match: re.Match[str]) -> str:
            if int(match.group(1)) in self.valid:
                return match.group()
            self._flag(Flag.invalid_citation)
            return ""

        cleaned = _MARKER.sub(keep, text)
        if final and _DANGLING.search(cleaned):
            self._flag(Flag.invalid_citation)
            cleaned = _DANGLING.sub("", cleaned)
        return cleaned

    def _flag(self, flag: Flag) -> None:
        if flag not in self.flags:
            self.flags.append(flag)


def _best_sentence(text: str, question_tokens: set[str]) -> str:
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith(("#", "|")))
    sentences = [s.strip(" -*") for s in _SENTENCES.findall(body) if len(s.strip(" -*")) > 6]
    if not sentences:
        return text.strip()[:160]
    best: str = max(sentences, key=lambda s: (len(set(tokenize(s)) & question_tokens), -sentences.index(s)))
    return best


def extractive_answer(question: str, passages: list[Passage], *, lang: str, limit: int = 3) -> str:
    """Offline draft: the most relevant sentence of each of the best passages, quoted with its citation."""
    tokens = set(tokenize(question))
    chosen: list[Passage] = []
    for passage in passages:
        if passage.hit.doc_id not in {p.hit.doc_id for p in chosen} and len(chosen) < limit:
            chosen.append(passage)
    lines = [f"「{_best_sentence(p.hit.text, tokens)}」[{p.n}]" for p in chosen]
    lead = "ナレッジベースの関連箇所です。" if lang == "ja" else "Here is what the knowledge base says."
    return "\n".join([lead, *lines])


def stream_chunks(text: str, size: int = 24) -> Iterator[str]:
    """A finished text cut into deltas, so every answer streams the same way."""
    for start in range(0, len(text), size):
        yield text[start : start + size]
