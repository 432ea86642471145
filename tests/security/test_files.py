"""Hostile survey files: bad characters are cleaned row by row, bombs are refused before reading (issue 15)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.bootstrap import build_triage, open_clients
from service.db import session_scope
from service.jobs.engine import TriageClassifier
from service.jobs.results import write_result
from service.jobs.service import JobContext, JobOptions, create_job, run_job
from service.retrieval.ingest import ingest_knowledge
from tests.conftest import KNOWLEDGE, make_settings
from tests.fakes import HashedNgramEmbedder
from tests.jobs.conftest import Bulk
from tests.jobs.helpers import read_output


@pytest.fixture
def fast_bulk(tmp_path: Path, database_url: str) -> Iterator[Bulk]:
    """The offline bulk pipeline with the hashed n-gram embedder, on SQLite and on PostgreSQL."""
    settings = make_settings(tmp_path / "data", database_url=database_url)
    clients = open_clients(settings, embedder=HashedNgramEmbedder())
    with session_scope(clients.sessionmaker) as session:
        ingest_knowledge(session, clients.knowledge.store, knowledge_dir=KNOWLEDGE, max_tokens=400)
    clients.knowledge.refresh()
    try:
        yield Bulk(settings, clients, build_triage(settings, clients))
    finally:
        clients.close()


def run(bulk: Bulk, path: Path) -> tuple[str, list[dict[str, str]]]:
    with session_scope(bulk.clients.sessionmaker) as session:
        job = create_job(session, source="cli", path=path, name=path.name, options=JobOptions())
    context = JobContext(
        bulk.settings, bulk.clients.sessionmaker, TriageClassifier(bulk.triage, bulk.clients.sessionmaker)
    )
    job = run_job(context, job_id=job.public_id)
    out = path.with_name("out.csv")
    write_result(bulk.clients.sessionmaker, job, out)
    header, *body = read_output(out)
    return job.status, [dict(zip(header, row, strict=True)) for row in body]


def test_nul_and_lone_surrogates_in_bulk_rows_are_removed_and_the_row_flagged(fast_bulk: Bulk, tmp_path: Path) -> None:
    lines = [
        '{"id": 1, "department": "営業", "comment": "外注で仕事がなくなるのでは？"}',
        '{"id": 2, "department": "営業\\u0000一課", "comment": "顧客情報が\\u0000漏れないか心配です。"}',
        '{"id": 3, "department": "経理", "comment": "委託料が高すぎて\\ud800元が取れない。"}',
        '{"id": 4, "department": "経理", "comment": "引き継ぎは誰がやるのですか？"}',
    ]
    path = tmp_path / "survey.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    status, rows = run(fast_bulk, path)
    assert status == "done"
    assert [r["error"] for r in rows] == ["", "", "", ""]
    assert all(r["root_cause"] for r in rows)
    assert ["unsafe_characters_removed" in r["flags"] for r in rows] == [False, True, True, False]


def write_inline_string_bomb(path: Path, *, megabytes: int) -> Path:
    """A tiny XLSX whose one inline-string cell unpacks to `megabytes` MB (deflate squeezes a repeated byte ~1000×)."""
    import zipfile

    parts = {
        "[Content_Types].xml": '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
        'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships'
        '+xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.'
        'spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>',
        "_rels/.rels": '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
        'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": '<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/'
        '2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>'
        '<sheet name="回答" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/'
        'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
        'officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(
                b'<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                b'<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>'
            )
            block = b"A" * (1024 * 1024)
            for _ in range(megabytes):
                sheet.write(block)
            sheet.write(b"</t></is></c></row></sheetData></worksheet>")
    return path


def write_dimension_bomb(path: Path) -> Path:
    """A normal two-row survey whose sheet declares the whole grid, A1:XFD1048576."""
    import zipfile

    from tests.jobs.helpers import write_xlsx

    plain = write_xlsx(path.with_name("plain.xlsx"), [["1", "営業", "外注で仕事がなくなるのでは？"]])
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                start = data.index(b"<dimension ref=")
                end = data.index(b"/>", start) + 2
                data = data[:start] + b'<dimension ref="A1:XFD1048576"/>' + data[end:]
            target.writestr(info, data)
    return path


def test_an_xlsx_that_unpacks_to_200_mb_is_refused_before_it_is_read(tmp_path: Path) -> None:
    from service.errors import NemawashiError
    from service.jobs.readers import open_source

    path = write_inline_string_bomb(tmp_path / "bomb.xlsx", megabytes=200)
    assert path.stat().st_size < 1_000_000
    started = time.monotonic()
    with pytest.raises(NemawashiError) as refused:
        open_source(path)
    assert refused.value.status_code == 413
    assert "unpacks to 200 MB; the limit is 100 MB" in refused.value.message
    assert time.monotonic() - started < 2


def test_an_xlsx_declaring_the_whole_grid_is_refused_at_once(tmp_path: Path) -> None:
    from service.errors import BadInput
    from service.jobs.readers import open_source

    path = write_dimension_bomb(tmp_path / "grid.xlsx")
    started = time.monotonic()
    with pytest.raises(BadInput, match="1,048,576 rows × 16,384 columns"):
        open_source(path)
    assert time.monotonic() - started < 2


def test_the_upload_api_refuses_a_spreadsheet_bomb_with_a_4xx(tmp_path: Path) -> None:
    from tests.security.helpers import fast_app

    bomb = write_dimension_bomb(tmp_path / "grid.xlsx")
    database = f"sqlite:///{tmp_path / 'db.sqlite'}"
    with fast_app(tmp_path / "data", database, xlsx_max_columns=50) as app, bomb.open("rb") as handle:
        response = app.client.post("/v1/jobs/classify", files={"file": ("grid.xlsx", handle)}, headers=app.user("up"))
    assert response.status_code == 422, response.text
    assert "NEMAWASHI_XLSX_MAX_COLUMNS" in response.json()["error"]
