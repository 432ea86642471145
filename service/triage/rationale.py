"""The LLM's rationale is shown to the asker and to reviewers, so it is checked like a draft before anyone sees it.

A comment can carry instructions the model obeys; its rationale is then the attacker's text (a fake system prompt,
a phishing link) with the service's name on it. A rationale is kept only when it leaks nothing of the system prompt,
carries no link or role marker the comment did not contain, and quotes the comment (the prompt asks for a quote):
markup is stripped and it is cut to a length. Otherwise the caller shows the local quote and flags the item.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from service.triage.drafting import StreamGuard

MIN_SHARED_RUN = 8  # characters in a row the rationale must share with the comment when it quotes nothing

_URL_TAIL = r"[^\s<>\"'「」『』()\[\]]*"
_LINK = re.compile(
    rf"(?i)\b(?:(?:https?|ftp)://|(?:javascript|vbscript|mailto):){_URL_TAIL}"  # a URL
    rf"|\bwww\.{_URL_TAIL}"
    rf"|\b(?:[a-z0-9-]+\.)+[a-z]{{2,}}/{_URL_TAIL}"  # evil.example/login
    r"|\]\(\S*?\)"  # a Markdown link or image target
)
_ROLE = re.compile(
    r"(?i)<\|[a-z_]+\|>"  # chat-template tokens
    r"|(?:^|[\n\[<#(【。.!?！？]\s*)(?:system|assistant|developer)(?:\s*(?:prompt|message|instructions?))?\s*[:：\]】>]"
    r"|(?:^|[\n\[<#(【。.!?！？]\s*)システム(?:プロンプト|メッセージ|指示)?\s*[:：\]】>]"
    r"|\b(?:ignore|disregard)\s+(?:all\s+)?(?:previous|prior|above)\s+instructions"
    r"|(?:以前|これまで|上記)の指示"
)
_MARKDOWN_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_TAG = re.compile(r"<[^>]{0,300}>")
_MARKUP = re.compile(r"[*_`#>|~]{2,}|^[#>\-*\s]+", re.MULTILINE)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_QUOTED = re.compile(r"「([^」]+)」|『([^』]+)』|\"([^\"]+)\"|“([^”]+)”")


@dataclass(frozen=True)
class CheckedRationale:
    text: str  # what may be shown: cleaned and capped; empty when rejected
    rejected: str | None = None  # why it may not be shown: system_prompt_leak, link, instruction, unrelated, empty


def check_rationale(rationale: str, comment: str, *, system_prompt: str, max_chars: int) -> CheckedRationale:
    """The rationale as it may be shown, or why it may not: see the module docstring."""
    raw = unicodedata.normalize("NFKC", rationale)
    if system_prompt and leaks(raw, system_prompt):
        return CheckedRationale("", "system_prompt_leak")
    seen = _flat(comment)
    if any(m.group().casefold() not in seen for m in _LINK.finditer(_flat(raw))):
        return CheckedRationale("", "link")
    if any(m.group().casefold() not in seen for m in _ROLE.finditer(raw)):
        return CheckedRationale("", "instruction")
    cleaned = clean(raw)
    if not cleaned:
        return CheckedRationale("", "empty")
    if not quotes(cleaned, comment):
        return CheckedRationale("", "unrelated")
    return CheckedRationale(cleaned if len(cleaned) <= max_chars else cleaned[: max_chars - 1] + "…")


def leaks(text: str, system_prompt: str) -> bool:
    """Whether text repeats a stretch of the system prompt (the draft's leak guard, applied to a whole text)."""
    guard = StreamGuard(valid=set(), system_prompt=system_prompt)
    guard.feed(text)
    return guard.leaked


def clean(text: str) -> str:
    """Plain text: Markdown links and images become their text, tags and markup runs go, whitespace is one space."""
    text = _MARKDOWN_LINK.sub(r"\1", text)
    text = _TAG.sub("", text)
    text = _CONTROL.sub("", text)
    text = _MARKUP.sub("", text)
    return " ".join(text.split())


def quotes(rationale: str, comment: str) -> bool:
    """Whether the rationale quotes the comment: a quoted phrase found in it, or MIN_SHARED_RUN characters in a row
    (the whole comment, when it is shorter) that it shares with it."""
    flat_comment, flat_rationale = _compact(comment), _compact(rationale)
    if not flat_comment:
        return False
    for match in _QUOTED.finditer(rationale):
        phrase = _compact(next(g for g in match.groups() if g is not None)).rstrip("…")
        if len(phrase) >= 2 and phrase in flat_comment:
            return True
    run = min(MIN_SHARED_RUN, len(flat_comment))
    runs = {flat_comment[i : i + run] for i in range(len(flat_comment) - run + 1)}
    return any(flat_rationale[i : i + run] in runs for i in range(len(flat_rationale) - run + 1))


def _flat(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _compact(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())
