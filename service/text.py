"""Text that is safe to store and embed: no NUL characters, no lone UTF-16 surrogates.

PostgreSQL refuses NUL in text columns and UTF-8 cannot encode a lone surrogate, so either one deep inside the
pipeline is a 500; at the edge it is a 422 that names the field (`SafeStr`), and in bulk rows it is removed and
the row flagged (`strip_unsafe`; the flag is `Flag.unsafe_characters_removed`, service/triage/schemas.py).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator
from pydantic.config import JsonDict

_UNSAFE = re.compile("[\x00\ud800-\udfff]")  # json pairs valid surrogates into one character: these are lone


def unsafe_reason(value: str) -> str | None:
    """Why the text cannot be accepted, or None when it can."""
    found = _UNSAFE.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character (\\u0000): remove it / NUL 文字 (\\u0000) を削除してください"
    return (
        "contains a lone UTF-16 surrogate (an unpaired \\ud800–\\udfff): send valid UTF-8 text / "
        "不正な文字 (対になっていないサロゲート) を削除してください"
    )


def _refuse_unsafe(value: str) -> str:
    if reason := unsafe_reason(value):
        raise ValueError(reason)
    return value


SafeStr = Annotated[str, AfterValidator(_refuse_unsafe)]
# What a question or query must hold: some text, not only spaces. The route says so in words ("query is empty");
# this tells /openapi.json.
NOT_BLANK: JsonDict = {"pattern": r"\S"}


def strip_unsafe(value: str) -> tuple[str, bool]:
    """The text without NUL characters and lone surrogates, and whether anything was removed."""
    cleaned = _UNSAFE.sub("", value)
    return cleaned, len(cleaned) != len(value)
