"""BM25 over a tokenisation that works for Japanese: character bigrams for CJK runs, words for the rest."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import bm25s
import numpy as np
import numpy.typing as npt
import yaml

from service.errors import BadInput

_RUNS = re.compile(r"[\u3041-\u3096\u30a1-\u30fa\u30fc\u3400-\u4dbf\u4e00-\u9fff]+|[a-z0-9]+(?:['.][a-z0-9]+)*")
_CJK = re.compile(r"[\u3041-\u30ff\u3400-\u9fff]")
_ASCII_RUN = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    (  # English function words; Japanese needs none because bigrams of particles carry little weight in BM25
        "a an and are as at be by can do does for from has have how i if in is it its me my of on or our s so that "
        "the their there they this to was we what when where which who why will with would you your"
    ).split()
)


def tokenize(text: str) -> list[str]:
    """NFKC + lower case; CJK runs → overlapping bigrams (a lone character stays), Latin → words."""
    tokens: list[str] = []
    for run in _RUNS.findall(unicodedata.normalize("NFKC", text).lower()):
        if _CJK.match(run):
            tokens.extend([run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)])
        elif run not in _STOPWORDS:
            tokens.append(run)
    return tokens


class LexicalIndex:
    """An in-memory BM25 index over chunk texts, rebuilt from the vector store after each ingest."""

    def __init__(self, chunk_ids: list[str], texts: list[str]) -> None:
        self.chunk_ids = chunk_ids
        self._bm25 = bm25s.BM25()
        if chunk_ids:
            self._bm25.index([tokenize(t) or [""] for t in texts], show_progress=False)

    def scores(self, query: str) -> npt.NDArray[np.float32]:
        """BM25 score of every chunk, in chunk_ids order."""
        tokens = tokenize(query)
        if not tokens or not self.chunk_ids:
            return np.zeros(len(self.chunk_ids), dtype=np.float32)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)


class Synonyms:
    """Groups of words that mean the same thing to staff; a query gains the other words of each group it uses.

    translations: groups of Japanese terms and their English words, used only when across_languages is asked
    for (keyword search), so that an English question finds a Japanese-only document."""

    def __init__(self, groups: list[list[str]], translations: list[list[str]] | None = None) -> None:
        self._groups = [[_normalize(t) for t in group if str(t).strip()] for group in groups]
        self._translations = [[_normalize(t) for t in group if str(t).strip()] for group in translations or []]
        # Compiled once: there are more English terms than re's own cache holds. A term that is one run of [a-z0-9]
        # needs no pattern: it stands as a whole word exactly when it is one of the text's runs.
        terms = list(dict.fromkeys(t for g in self._groups + self._translations for t in g))
        self._runs = frozenset(t for t in terms if _ASCII_RUN.fullmatch(t))
        self._words = {t: _whole_word(t) for t in terms if not _CJK.search(t) and t not in self._runs}
        self._substrings = [t for t in terms if _CJK.search(t)]  # Japanese terms: found anywhere
        # Which groups each term belongs to (groups first, then translations, numbered in that order).
        self._member_of: dict[str, list[int]] = {}
        for number, group in enumerate(self._groups + self._translations):
            for term in group:
                self._member_of.setdefault(term, []).append(number)

    def expand(self, query: str, *, across_languages: bool = False) -> str:
        """The query followed by the synonyms (and, across_languages, the translations) of the words it contains."""
        text = _normalize(query)
        present = set(self._runs.intersection(_ASCII_RUN.findall(text)))
        present.update(t for t in self._substrings if t in text)
        present.update(t for t, word in self._words.items() if word.search(text))
        groups = self._groups + self._translations if across_languages else self._groups
        used = sorted({n for t in present for n in self._member_of[t] if n < len(groups)})
        extra = list(dict.fromkeys(term for n in used for term in groups[n] if term not in present))
        return f"{query} {' '.join(extra)}" if extra else query


def _normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", str(text)).lower()


def _whole_word(term: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![a-z0-9]){re.escape(term)}(?![a-z0-9])")


def load_synonyms(path: Path) -> Synonyms:
    """Synonym groups from a YAML file ({groups: [[...], ...]}); none when the file is absent."""
    if not path.is_file():
        return Synonyms([])
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: not a valid synonyms file ({exc})") from exc
    data = data if isinstance(data, dict) else {}
    groups, translations = data.get("groups") or [], data.get("translations") or []
    for key, value in (("groups", groups), ("translations", translations)):
        if not isinstance(value, list) or not all(isinstance(g, list) for g in value):
            raise BadInput(f"{path}: expected `{key}:` followed by lists of words")
    return Synonyms(groups, translations)
