"""A job's results: the input rows in order with their classification, and the counts the report shows."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.jobs.columns import RESULT_COLUMNS, RowResult
from service.jobs.models import Job, JobRow
from service.jobs.service import job_options, open_input
from service.jobs.writers import open_writer, output_format

TOP_DEPARTMENTS = 12
TOP_MATCHES = 10
NOT_REACHED = "not classified: the job stopped before this row"
NO_DEPARTMENT, OTHER_DEPARTMENTS = "(none)", "(other departments)"  # stand-ins the report names in its language
WIDTHS = {"matched_title": 40, "suggested_answer": 60, "error": 30, "flags": 20, "model": 16, "matched_doc_id": 18}
TEXT_WIDTH, LABEL_WIDTH, OTHER_WIDTH = 60, 26, 12


@dataclass(frozen=True)
class Labels:
    """How an XLSX file words its results in the file's language: root-cause names in a column of their own beside
    each id column (the ids stay), the result columns' headers, values in words (yes/no, the classifier, flags),
    why a row has no result, and the sheet's name."""

    names: Mapping[str, str]  # label id → its name
    name_headers: Mapping[str, str]  # id column (root_cause, secondary_cause) → the header of its name column
    headers: Mapping[str, str] = field(default_factory=dict)  # result column → its header (default: its name)
    values: Mapping[str, Mapping[Any, str]] = field(default_factory=dict)  # result column → value → its words
    separator: str = ","  # between the flags of a row
    sheet: str = "classified"
    errors: Callable[[Any], Any] | None = None  # a row's stored (English) error → its words (row_errors.py)

    def word(self, column: str, value: Any) -> Any:
        """A result cell as the file shows it: in words where the column has them, else as stored."""
        if column == "error" and self.errors is not None:
            return self.errors(value)
        words = self.values.get(column)
        if not words or value is None or value == "":
            return value
        if column == "flags":  # comma-separated flag ids (RowResult.cells)
            return self.separator.join(words.get(flag, flag) for flag in value.split(","))
        return words.get(value, value)


def result_columns(job: Job) -> list[str]:
    """The columns added to every row, suggested_answer only when it was asked for."""
    suggest = job_options(job).suggest
    return [c for c in RESULT_COLUMNS if suggest or c != "suggested_answer"]


def _cells(row: JobRow | None, columns: list[str]) -> list[Any]:
    if row is None:
        return [NOT_REACHED if c == "error" else None for c in columns]
    return RowResult.from_row(row).cells(columns)


def _stored(session: Session, job: Job) -> Iterator[JobRow]:
    query = select(JobRow).where(JobRow.job_id == job.id).order_by(JobRow.row_index)
    yield from session.scalars(query.execution_options(yield_per=1000))


def write_result(
    sessions: sessionmaker[Session],
    job: Job,
    path: Path,
    *,
    encoding: str = "utf-8-sig",
    input_file: Path | None = None,
    labels: Labels | None = None,
) -> int:
    """Write every input row once, in file order, with its results (streamed from the file and the database).

    input_file: where the job's input is on this machine (service.local_input), when not at job.input_path.
    labels: how an XLSX file words its results (a CSV keeps the machine names and values the README lists)."""
    options = job_options(job)
    source, _ = open_input(input_file or Path(job.input_path), options, limits=None)  # accepted at creation
    columns = result_columns(job)
    named = labels if labels is not None and output_format(path) == "xlsx" else Labels({}, {})
    header = [*source.columns, *(h for c in columns for h in [named.headers.get(c, c), named.name_headers.get(c)] if h)]
    widths = [TEXT_WIDTH if i == options.text_index else OTHER_WIDTH for i in range(len(source.columns))]
    widths += [
        w for c in columns for w in [WIDTHS.get(c, OTHER_WIDTH), LABEL_WIDTH][: 2 if c in named.name_headers else 1]
    ]
    written = 0
    with open_writer(path, encoding=encoding, widths=widths, sheet=named.sheet) as writer, sessions() as session:
        writer.write(header)
        stored = _stored(session, job)
        pending = next(stored, None)
        for row in source.rows():
            while pending is not None and pending.row_index < row.index:
                pending = next(stored, None)
            match = pending if pending is not None and pending.row_index == row.index else None
            writer.write([*row.cells, *_named_cells(_cells(match, columns), columns, named)])
            written += 1
    return written


def _named_cells(cells: list[Any], columns: list[str], labels: Labels) -> list[Any]:
    out: list[Any] = []
    for column, value in zip(columns, cells, strict=True):
        out.append(labels.word(column, value))
        if column in labels.name_headers:
            out.append(labels.names.get(value, value) if value else None)
    return out


@dataclass
class Summary:
    """Counts by root cause (and by department), for the stderr table, the report and the API."""

    rows: int
    classified: int
    errors: int
    needs_review: int
    objections: int
    unique: int
    by_cause: dict[str, int]
    department_column: str | None = None
    by_department: dict[str, dict[str, int]] = field(default_factory=dict)
    top_matches: list[tuple[str, str, int]] = field(default_factory=list)
    error_samples: list[tuple[int, str]] = field(default_factory=list)

    def share(self, count: int) -> float:
        return count / self.classified if self.classified else 0.0


def summarize(session: Session, job: Job, *, causes: list[str]) -> Summary:
    """Aggregate the job's stored rows in SQL (nothing is loaded row by row)."""
    mine = JobRow.job_id == job.id
    classified = JobRow.root_cause.is_not(None)
    by_cause = dict.fromkeys(causes, 0)
    for cause, count in session.execute(
        select(JobRow.root_cause, func.count()).where(mine, classified).group_by(JobRow.root_cause)
    ):
        by_cause[str(cause)] = int(count)
    objections = session.scalar(select(func.count()).where(mine, JobRow.is_objection.is_(True))) or 0
    summary = Summary(
        rows=job.total_rows,
        classified=sum(by_cause.values()),
        errors=job.error_rows,
        needs_review=job.review_rows,
        objections=int(objections),
        unique=job.unique_texts,
        by_cause=by_cause,
        department_column=job_options(job).department_column,
    )
    first_errors = select(JobRow.row_index, JobRow.error).where(mine, JobRow.error.is_not(None))
    summary.error_samples = [
        (int(i), str(e)) for i, e in session.execute(first_errors.order_by(JobRow.row_index).limit(10))
    ]
    if summary.department_column:
        summary.by_department = _by_department(session, job, causes)
    summary.top_matches = [
        (str(doc), str(title or doc), int(n))
        for doc, title, n in session.execute(
            select(JobRow.matched_doc_id, JobRow.matched_title, func.count().label("n"))
            .where(mine, JobRow.matched_doc_id.is_not(None))
            .group_by(JobRow.matched_doc_id, JobRow.matched_title)
            .order_by(func.count().desc(), JobRow.matched_doc_id)
            .limit(TOP_MATCHES)
        )
    ]
    return summary


def _by_department(session: Session, job: Job, causes: list[str]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    query = (
        select(JobRow.department, JobRow.root_cause, func.count())
        .where(JobRow.job_id == job.id, JobRow.root_cause.is_not(None))
        .group_by(JobRow.department, JobRow.root_cause)
    )
    for department, cause, count in session.execute(query):
        counts.setdefault(department or NO_DEPARTMENT, dict.fromkeys(causes, 0))[str(cause)] = int(count)
    ranked = sorted(counts, key=lambda d: -sum(counts[d].values()))
    top = {d: counts[d] for d in ranked[:TOP_DEPARTMENTS]}
    rest = ranked[TOP_DEPARTMENTS:]
    if rest:
        top[OTHER_DEPARTMENTS] = {c: sum(counts[d][c] for d in rest) for c in causes}
    return top
