"""Redaction of personal data (emails, phone numbers, Japanese formats too) before text leaves the machine."""

from __future__ import annotations

import re
import unicodedata

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+[@＠][A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")
# A run that starts like a phone number (+81, 0, or a bracketed area code) and holds digits and separators.
_PHONE_CANDIDATE = re.compile(r"(?:[+＋][8８][1１]|[(（]?[0０])[0-9０-９()（）\-‐－―−ー\s]{7,16}[0-9０-９]")
_INTERNAL_EXTENSION = re.compile(r"内線\s*[0-9０-９]{3,5}")


def _phone(match: re.Match[str]) -> str:
    digits = sum(ch.isdigit() for ch in unicodedata.normalize("NFKC", match.group()))
    return "[phone]" if 10 <= digits <= 13 else match.group()


def redact(text: str) -> str:
    """Replace emails and phone numbers with [email] / [phone]; everything else is left as written."""
    text = _EMAIL.sub("[email]", text)
    text = _PHONE_CANDIDATE.sub(_phone, text)
    return _INTERNAL_EXTENSION.sub("内線[phone]", text)
