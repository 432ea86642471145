"""Why a row has no result, in the reader's language.

job_rows.error stores English sentences (the CSV result keeps them, for scripts), and jobs already stored keep the
wording they were stored with; so a Japanese report or XLSX file words them at display time, from this table: a
pattern over each stored sentence (readers.py, service.py, results.py make them) and the i18n key of its wording
under TEXTS[lang]["jobrep"]["row_errors"], filled with the pattern's named groups. A sentence no pattern knows is
shown as a generic one ("unknown"), never in English."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from service.web.i18n import TEXTS

UNKNOWN = "unknown"

ROW_ERRORS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.DOTALL), key)
    for pattern, key in (
        # readers.py: CSV and TSV
        (
            r"line (?P<line>\d+) has (?P<cells>\d+) cells but the header has (?P<width>\d+): "
            r"an unquoted comma or tab\? The extra cells were kept in the last column",
            "extra_cells",
        ),
        (r"line (?P<line>\d+) has a quote that is never closed: the row was not read", "unclosed_quote"),
        (
            r"line (?P<line>\d+) is neither UTF-8 nor Shift_JIS \(CP932\): unreadable characters shown as \ufffd",
            "bad_encoding",
        ),
        # readers.py: JSONL
        (r"unreadable characters", "unreadable_characters"),
        (r"line (?P<line>\d+) is not valid JSON: the row was not read", "not_json"),
        (r"line (?P<line>\d+) is not a JSON object: the row was not read", "not_json_object"),
        # readers.py: XLSX
        (
            r"row (?P<row>\d+) has values outside the header's (?P<width>\d+) columns: they were kept in the last one",
            "extra_values",
        ),
        # service.py: the comment itself
        (r"no comment in column (?P<quoted>'.*'|\".*\")", "no_comment"),
        (
            r"the comment is (?P<chars>[\d,]+) characters; the limit is (?P<limit>[\d,]+) "
            r"\(NEMAWASHI_MAX_QUERY_CHARS\): shorten or split it",
            "too_long",
        ),
        # service.py and results.py: classification
        (r"classification failed: .*", "classification_failed"),
        (r"not classified", "not_classified"),
        (r"not classified: the job stopped before this row", "not_reached"),
    )
)


def row_error_key(message: str) -> tuple[str, dict[str, str]]:
    """The i18n key of a stored row error and the values its wording takes ("unknown" when no pattern matches)."""
    for pattern, key in ROW_ERRORS:
        match = pattern.fullmatch(message.strip())
        if match:
            values = match.groupdict()
            if "quoted" in values:
                values["column"] = values.pop("quoted")[1:-1]
            return key, values
    return UNKNOWN, {}


def row_error_text(message: Any, lang: str) -> Any:
    """A stored row error as a reader of lang sees it; English (and an empty cell) stays as stored."""
    if lang == "en" or not isinstance(message, str) or not message:
        return message
    key, values = row_error_key(message)
    return _wording(TEXTS[lang]["jobrep"]["row_errors"], key).format(**values)


def _wording(texts: Mapping[str, str], key: str) -> str:
    return texts.get(key) or texts[UNKNOWN]


def row_error_words(lang: str) -> Callable[[Any], Any]:
    """row_error_text for one language, as a function of the message (results.Labels.errors)."""
    return lambda message: row_error_text(message, lang)
