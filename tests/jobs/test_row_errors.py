"""Why a row has no result, in Japanese on the Japanese report and XLSX file, and as stored in English elsewhere."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from service.db import session_scope
from service.jobs.delivery import result_labels
from service.jobs.engine import Outcome
from service.jobs.models import Job, JobRow
from service.jobs.report import render_report, report_labels
from service.jobs.results import NOT_REACHED, summarize, write_result
from service.jobs.row_errors import ROW_ERRORS, UNKNOWN, row_error_key, row_error_text
from service.jobs.service import JobContext, run_job
from service.llm.client import Usage
from service.triage.taxonomy import load_taxonomy
from service.web.i18n import TEXTS
from tests.jobs.conftest import Bulk
from tests.jobs.helpers import write_xlsx

pytestmark = pytest.mark.timeout(900)  # the first test pays for indexing the knowledge base

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
ENGLISH = re.compile(r"\b[A-Za-z]{2,}\s+[A-Za-z]{2,}\b")  # two English words in a row: a sentence, not a term
POISON = "毒入りのコメント"


def _is_japanese(text: str) -> bool:
    return bool(JAPANESE.search(text)) and not ENGLISH.search(text)


def _csv(tmp_path: Path) -> Path:
    path = tmp_path / "survey.csv"
    lines = [
        "id,部署,コメント".encode(),
        "1,営業,費用が高いと思います".encode(),
        "2,営業,費用が,高すぎる".encode(),  # more cells than the header
        '3,営業,"引き継ぎが心配'.encode(),  # a quote never closed
        b"4,\xe5\x96\xb6\xe6\xa5\xad,\xff\xfe\xfa\xfb",  # neither UTF-8 nor Shift_JIS
        "5,営業,".encode(),  # no comment
        f"6,営業,{'長' * 2100}".encode(),  # over the comment limit
        f"7,営業,{POISON}".encode(),  # the classifier fails on it
        "8,経理,外注には反対です".encode(),
    ]
    path.write_bytes(b"\r\n".join(lines) + b"\r\n")
    return path


def _jsonl(tmp_path: Path) -> Path:
    path = tmp_path / "survey.jsonl"
    lines = [
        '{"部署": "営業", "コメント": "費用が高いと思います"}'.encode(),
        '{"部署": "営業", "コメント": 壊れた'.encode(),  # not JSON
        b"[1, 2]",  # JSON, not an object
        b'{"\xe3\x82\xb3\xe3\x83\xa1\xe3\x83\xb3\xe3\x83\x88": "\xff\xfe\xe5\xa3\x8a"}',  # unreadable characters
        '{"部署": "経理", "コメント": "外注には反対です"}'.encode(),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _xlsx(tmp_path: Path) -> Path:
    rows: list[list[object]] = [
        [1, "営業", "費用が高いと思います"],
        [2, "営業", "費用が", "高すぎる"],
        [3, "経理", "反対です"],
    ]
    return write_xlsx(tmp_path / "survey.xlsx", rows)


def _run(bulk: Bulk, path: Path) -> Job:
    real = bulk.context().classifier

    class Poisoned:
        def classify_many(self, texts: list[str], *, departments: list[str | None], usage: Usage) -> list[Outcome]:
            if POISON in texts:
                raise RuntimeError("the embedder choked")
            return real.classify_many(texts, departments=departments, usage=usage)

    context = JobContext(bulk.settings, bulk.clients.sessionmaker, Poisoned())
    return run_job(context, job_id=bulk.create(path, text_column="コメント").public_id)


def _stored_errors(bulk: Bulk, job: Job) -> dict[int, str]:
    with session_scope(bulk.clients.sessionmaker) as session:
        rows = session.execute(
            select(JobRow.row_index, JobRow.error).where(JobRow.job_id == job.id, JobRow.error.is_not(None))
        )
        return {int(i): str(e) for i, e in rows}


def _report(bulk: Bulk, job: Job, lang: str) -> str:
    taxonomy = load_taxonomy(bulk.settings.taxonomy_file)
    with session_scope(bulk.clients.sessionmaker) as session:
        summary = summarize(session, job, causes=taxonomy.ids)
    return render_report(job, summary, report_labels(taxonomy, lang), mode="offline", lang=lang)


def _reasons(page: str) -> dict[int, str]:
    """The 「読めなかった行」 table: row number → reason as a reader sees it."""
    table = page.split('<th style="text-align:left">', 1)[1].split("</table>", 1)[0]
    found = re.findall(r'<tr><td>(\d+)</td><td style="text-align:left">(.*?)</td></tr>', table, flags=re.S)
    return {int(row): html.unescape(reason) for row, reason in found}


def _xlsx_errors(path: Path, header: str) -> list[str | None]:
    sheet = load_workbook(path, read_only=True).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    column = list(rows[0]).index(header)
    cells = [row[column] if column < len(row) else None for row in rows[1:]]  # read-only rows end at their last value
    return [None if cell is None else str(cell) for cell in cells]


@pytest.fixture
def sqlite_bulk(make_bulk: Callable[..., Bulk]) -> Bulk:
    return make_bulk()


def test_every_row_error_the_readers_and_the_job_make_reads_in_japanese_on_the_japanese_report_and_xlsx(
    sqlite_bulk: Bulk, tmp_path: Path
) -> None:
    covered: set[str] = set()
    for path in (_csv(tmp_path), _jsonl(tmp_path), _xlsx(tmp_path)):
        job = run_job_and_check(sqlite_bulk, path, tmp_path)
        covered |= {row_error_key(e)[0] for e in _stored_errors(sqlite_bulk, job).values()}
    # Every wording but the two no file row can make (a row never reached, a comment no classifier answered).
    assert covered == {key for _, key in ROW_ERRORS} - {"not_classified", "not_reached"}


def run_job_and_check(bulk: Bulk, path: Path, tmp_path: Path) -> Job:
    job = _run(bulk, path)
    stored = _stored_errors(bulk, job)
    assert stored and job.status == "done"
    assert all(row_error_key(message)[0] != UNKNOWN for message in stored.values()), stored

    page = _report(bulk, job, "ja")
    reasons = _reasons(page)
    assert set(reasons) == {i + 1 for i in stored}
    assert all(_is_japanese(reason) for reason in reasons.values()), reasons
    assert not any(message in html.unescape(page) for message in stored.values())

    out = tmp_path / f"{path.stem}.{path.suffix[1:]}.ja.xlsx"
    write_result(bulk.clients.sessionmaker, job, out, labels=result_labels(bulk.settings, "ja"))
    cells = _xlsx_errors(out, TEXTS["ja"]["jobrep"]["columns"]["error"])
    assert {i for i, cell in enumerate(cells) if cell} == set(stored)
    assert all(_is_japanese(cell) for cell in cells if cell), cells

    # The English report and file, and the CSV for scripts, keep the sentences as stored.
    assert set(_reasons(_report(bulk, job, "en")).values()) == {html.escape(m, quote=False) for m in stored.values()}
    english = tmp_path / f"{path.stem}.{path.suffix[1:]}.en.xlsx"
    write_result(bulk.clients.sessionmaker, job, english, labels=result_labels(bulk.settings, "en"))
    assert {i: cell for i, cell in enumerate(_xlsx_errors(english, "error")) if cell} == stored
    return job


def test_rows_a_job_never_reached_read_in_japanese_in_the_japanese_xlsx(sqlite_bulk: Bulk, tmp_path: Path) -> None:
    job = sqlite_bulk.create(_xlsx(tmp_path))  # created, never run
    out = tmp_path / "unrun.xlsx"
    write_result(sqlite_bulk.clients.sessionmaker, job, out, labels=result_labels(sqlite_bulk.settings, "ja"))
    cells = _xlsx_errors(out, TEXTS["ja"]["jobrep"]["columns"]["error"])
    assert cells == [TEXTS["ja"]["jobrep"]["row_errors"]["not_reached"]] * 3


@pytest.mark.parametrize(
    ("message", "key"),
    [
        (NOT_REACHED, "not_reached"),
        ("not classified", "not_classified"),
        ("classification failed: LLMError: the model answered 500\nretry later", "classification_failed"),
        ("no comment in column 'Q3 自由記述'", "no_comment"),
        ("something nobody wrote down yet", UNKNOWN),
    ],
)
def test_a_stored_error_reads_in_japanese_and_an_unknown_one_is_never_shown_in_english(message: str, key: str) -> None:
    assert row_error_key(message)[0] == key
    japanese = row_error_text(message, "ja")
    assert _is_japanese(japanese) and message not in japanese
    assert row_error_text(message, "en") == message
    if key == "no_comment":
        assert "「Q3 自由記述」" in japanese


def test_every_row_error_has_its_wording_in_both_languages_with_the_same_placeholders() -> None:
    ja, en = TEXTS["ja"]["jobrep"]["row_errors"], TEXTS["en"]["jobrep"]["row_errors"]
    assert set(ja) == set(en) == {key for _, key in ROW_ERRORS} | {UNKNOWN}
    for pattern, key in ROW_ERRORS:
        names = set(pattern.groupindex) - {"quoted"} | ({"column"} if "quoted" in pattern.groupindex else set())
        for wording in (ja[key], en[key]):
            assert set(re.findall(r"(?<!\{)\{(\w+)", wording)) == names, (key, wording)
