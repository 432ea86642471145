"""Which column holds the comments and which the department: named by the user, or detected."""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

from service.errors import BadInput, problem
from service.jobs.problems import FileProblem
from service.jobs.readers import Source, read_text
from service.web.i18n import TEXTS

if TYPE_CHECKING:
    from service.jobs.models import JobRow

SAMPLE_ROWS = 200
TEXT_HINTS = (
    "comment",
    "comments",
    "text",
    "feedback",
    "freetext",
    "opinion",
    "opinions",
    "remarks",
    "message",
    "question",
    "questions",
    "concern",
    "concerns",
    "response",
    "answer",
    "コメント",
    "自由記述",
    "自由回答",
    "ご意見",
    "意見",
    "感想",
    "質問",
    "要望",
    "本文",
    "内容",
    "回答",
)
DEPARTMENT_HINTS = (
    "department",
    "dept",
    "division",
    "team",
    "部署",
    "部門",
    "所属",
    "部署名",
    "所属部署",
    "事業部",
    "課",
)
MIN_TEXT_CHARS = 6.0  # average length under which a column holds codes or numbers, not comments


@dataclass(frozen=True)
class RowResult:
    """What a job adds to every row: the result columns, in output order (suggested_answer only when it was asked
    for), and what job_rows stores for the row under the same names."""

    root_cause: str | None = None
    secondary_cause: str | None = None
    confidence: float | None = None
    is_objection: bool | None = None
    needs_review: bool | None = None
    matched_doc_id: str | None = None
    matched_title: str | None = None
    suggested_answer: str | None = None
    classifier: str | None = None
    model: str | None = None
    prompt_id: str | None = None
    flags: tuple[str, ...] = ()
    error: str | None = None

    @classmethod
    def from_row(cls, row: JobRow) -> RowResult:
        """The result as stored."""
        values = {name: getattr(row, name) for name in RESULT_COLUMNS}
        return cls(**{**values, "flags": tuple(row.flags or ())})

    def values(self) -> dict[str, Any]:
        """The job_rows columns."""
        return {**asdict(self), "flags": list(self.flags)}

    def cells(self, columns: Sequence[str]) -> list[Any]:
        """The output cells under these columns; flags comma-separated."""
        values = {**asdict(self), "flags": ",".join(self.flags)}
        return [values[c] for c in columns]


RESULT_COLUMNS = tuple(f.name for f in fields(RowResult))


@dataclass(frozen=True)
class Layout:
    """Where the comment and the department are in each row."""

    text_index: int
    text_column: str
    department_index: int | None = None
    department_column: str | None = None


def _key(name: str) -> str:
    return re.sub(r"[\s_\-・/()（）]+", "", unicodedata.normalize("NFKC", name).casefold())


def resolve_layout(source: Source, *, text_column: str | None = None, department_column: str | None = None) -> Layout:
    """The text and department columns; BadInput listing the columns when the choice is unclear."""
    _refuse_result_columns(source)
    lengths = _average_lengths(source)
    text_index = _named(source, text_column, "--text-column") if text_column else _detect_text(source, lengths)
    department_index = (
        _named(source, department_column, "--department-column") if department_column else _detect_department(source)
    )
    if department_index == text_index:
        department_index = None
    return Layout(
        text_index=text_index,
        text_column=source.columns[text_index],
        department_index=department_index,
        department_column=None if department_index is None else source.columns[department_index],
    )


def _refuse_result_columns(source: Source) -> None:
    # A result XLSX names its columns in its reader's language: its root-cause id column gives it away.
    worded = {str(texts["jobrep"]["columns"]["root_cause"]) for texts in TEXTS.values()}
    clash = [name for name in source.columns if name in RESULT_COLUMNS or name in worded]
    if clash:
        raise BadInput(
            f"{source.path.name} already has the column(s) {', '.join(clash)}: is it the output of an earlier run? "
            "Classify the original file, or rename those columns",
            detail=problem(FileProblem.result_columns, columns=clash),
        )


def _named(source: Source, name: str, option: str) -> int:
    matches = [i for i, column in enumerate(source.columns) if column == name]
    matches = matches or [i for i, column in enumerate(source.columns) if _key(column) == _key(name)]
    if len(matches) == 1:
        return matches[0]
    if name.isdigit() and 1 <= int(name) <= len(source.columns):
        return int(name) - 1
    listing = ", ".join(source.columns)
    if matches:
        raise BadInput(
            f"{option} {name!r} matches {len(matches)} columns; pass its number (1-based). Columns: {listing}",
            detail=problem(FileProblem.ambiguous_column, name=name, count=len(matches), columns=source.columns),
        )
    raise BadInput(
        f"{option} {name!r} is not a column of {source.path.name}. Its columns are: {listing}",
        detail=problem(FileProblem.unknown_column, name=name, columns=source.columns),
    )


def _average_lengths(source: Source) -> list[float]:
    totals = [0] * len(source.columns)
    counted = 0
    for row in itertools.islice(source.rows(), SAMPLE_ROWS):
        if row.error:
            continue
        counted += 1
        for i, cell in enumerate(row.cells):
            text = read_text(cell)
            # Numbers and dates are not comments, however long they print.
            totals[i] += 0 if isinstance(cell, int | float) or _numeric(text) else len(text)
    return [total / max(counted, 1) for total in totals]


def _numeric(text: str) -> bool:
    return bool(re.fullmatch(r"[\d\s.,:/+\-]*", text))


def _detect_text(source: Source, lengths: list[float]) -> int:
    if len(source.columns) == 1 and lengths[0] > 0:
        return 0
    # A column named like comments is taken even when its comments are short (「毒」, "No").
    written = [i for i, length in enumerate(lengths) if length > 0]
    named = [i for i in written if _key(source.columns[i]) in TEXT_HINTS]
    named = named or [i for i in written if any(hint in _key(source.columns[i]) for hint in TEXT_HINTS)]
    candidates = named or [i for i, length in enumerate(lengths) if length >= MIN_TEXT_CHARS]
    if not candidates:
        raise BadInput(
            f"{source.path.name} has no column that looks like free text (columns: {_describe(source, lengths)}). "
            "Pass --text-column NAME",
            detail=problem(FileProblem.no_text_column, columns=source.columns),
        )
    ranked = sorted(candidates, key=lambda i: -lengths[i])
    if len(ranked) == 1 or lengths[ranked[0]] >= 1.5 * lengths[ranked[1]]:
        return ranked[0]
    tied = [source.columns[i] for i in ranked if lengths[i] * 1.5 > lengths[ranked[0]]]
    raise BadInput(
        f"cannot tell which column of {source.path.name} holds the comments: {', '.join(map(repr, tied))} all could. "
        f"Pass --text-column NAME. Columns: {_describe(source, lengths)}",
        detail=problem(FileProblem.ambiguous_text_column, candidates=tied, columns=source.columns),
    )


def _describe(source: Source, lengths: list[float]) -> str:
    return ", ".join(f"{name!r} (avg {length:.0f} chars)" for name, length in zip(source.columns, lengths, strict=True))


def _detect_department(source: Source) -> int | None:
    exact = [i for i, column in enumerate(source.columns) if _key(column) in DEPARTMENT_HINTS]
    if exact:
        return exact[0]
    partial = [i for i, c in enumerate(source.columns) if any(h in _key(c) for h in DEPARTMENT_HINTS if len(h) > 1)]
    return partial[0] if partial else None
