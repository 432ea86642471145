"""Whether a new question asks what an approved question asked: the checks e5 similarity cannot make.

A near miss ("what is the vendor's fee?" against "how is the vendor's quality assured?", editing against viewing
customer data, 3 million yen against 5 million) shares most words with the approved question and scores as high as
a paraphrase (0.95-0.98), so similarity decides nothing at the top. A paraphrase says the same thing in other words;
a near miss says one thing more or one thing else. So before an approved answer is reused, the new question must
agree with the approved phrasing it matched: the same numbers, the same kind of question (when, who, how much...),
and no content word that neither that phrasing nor the approved answer says (after the synonyms are expanded)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from service.retrieval.documents import detect_lang

_WORDS = re.compile(r"[\u30a1-\u30fa\u30fc]+|[\u3400-\u4dbf\u4e00-\u9fff\u3005]+|[a-z0-9]+(?:'[a-z]+)?")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# English function words, words that say how one asks rather than what is asked (able, possible), and people in
# general (staff, employees): 人 and 方 in Japanese.
_EN_STOP = frozenset(
    """a about above after also am an and any are as at be been before below but by can could did do does for from get
    got has have he her his i if in into is it its just know let me my of on once or our out over please she should so
    still tell than that the their them then there these they this those to under up us was we were what when where
    which who whom whose why will with would you your how much many long able possible allowed people person staff
    employee employees member members""".split()
)
_JA_STOP = frozenset("教 知 質問 心配 場合 方 私 自分 可能 人 行 何 今 際 客様".split())
# The kind of question: a question of another kind asks something else. (Japanese first: いつまで before いつ.)
_JA_KINDS = (
    ("until", ("いつまで",)),
    ("when", ("いつ", "何月", "何日", "時期", "日程", "スケジュール")),
    ("where", ("どこに", "どこで", "どこから", "どこへ", "どこが", "どこです", "どこか")),
    ("extent", ("どこまで", "範囲")),
    ("who", ("誰", "だれ", "どなた")),
    ("how_much", ("いくら", "何円", "金額")),
    ("how_many", ("何人", "何名", "何件", "何個", "何社", "何回")),
    ("how_long", ("何年", "何か月", "何ヶ月", "何日間")),
    ("why", ("なぜ", "どうして")),
)
_EN_KINDS = (
    ("how_much", "how much"),
    ("how_many", "how many"),
    ("how_long", "how long"),
    ("when", "when"),
    ("where", "where"),
    ("who", "who"),
    ("why", "why"),
)
_EN_CLAUSE_START = re.compile(r"(?:^|[,;:?.!]\s*)(how much|how many|how long|when|where|who|why)\b")


def normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def question_kinds(text: str) -> frozenset[str]:
    """What the question asks for (when, who, how much...); empty when it says no such word."""
    norm = normalize(text)
    if detect_lang(norm) == "ja":
        kinds = {kind for kind, words in _JA_KINDS if any(w in norm for w in words)}
        return frozenset(kinds - {"when"} if "until" in kinds else kinds)
    found = {m.group(1) for m in _EN_CLAUSE_START.finditer(norm)}  # "where ... when ..." asks where
    return frozenset(kind for kind, word in _EN_KINDS if word in found)


def numbers(text: str) -> frozenset[str]:
    """The numbers the text says, as digits without separators."""
    return frozenset(n.replace(",", "") for n in _NUMBER.findall(normalize(text)))


def content_words(text: str) -> list[str]:
    """Katakana and kanji runs and English words (crudely stemmed), without function words and question words."""
    norm = normalize(text)
    for _, words in _JA_KINDS:
        for word in words:
            norm = norm.replace(word, " ")
    found = []
    for word in _WORDS.findall(norm):
        if word.isascii():
            if word not in _EN_STOP and not word.isdigit():
                found.append(_stem(word))
        elif word not in _JA_STOP:
            found.append(word)
    return found


def _stem(word: str) -> str:
    word = word.removesuffix("'s")
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            word = word[: -len(suffix)]
            break
    return word.removesuffix("e") if len(word) > 3 else word


def _pieces(word: str) -> set[str]:
    """A Japanese run as its character bigrams (a compound is matched by its parts); an English word as itself."""
    if word.isascii() or len(word) == 1:
        return {word}
    return {word[i : i + 2] for i in range(len(word) - 1)}


@dataclass(frozen=True)
class Agreement:
    """Whether a question agrees with an approved phrasing; reason names what differs when it does not."""

    agrees: bool
    reason: str = ""


def agreement(question: str, phrasing: str, answer: str, *, expand: Callable[[str], str] = str) -> Agreement:
    """Whether question asks what phrasing (an approved question, or one of its alternates) asked, so its approved
    answer may be reused. expand adds the synonyms of the words a text uses (the knowledge base's synonyms)."""
    if not numbers(question) <= numbers(phrasing):
        return Agreement(False, "numbers")
    asked = question_kinds(question)
    if asked and not asked <= question_kinds(phrasing):
        return Agreement(False, "kind of question")
    said: set[str] = set()
    for text in (phrasing, answer):
        for word in content_words(expand(text)):
            said |= _pieces(word)
    new = [word for word in content_words(question) if len(_pieces(word) & said) * 2 <= len(_pieces(word))]
    return Agreement(not new, f"new words: {', '.join(new)}" if new else "")
