"""Bad knowledge files are skipped with a reason a person can act on; the rest of the folder still loads."""

import io
import json
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli import app as cli
from service.config import get_settings
from service.retrieval.documents import load_documents
from service.retrieval.sources import SourceLimits
from tests.fakes import HashedNgramEmbedder
from tests.retrieval.office_files import make_blank_pdf, make_docx, make_pdf, make_picture_pptx, make_xlsx


def _skipped(folder: Path, limits: SourceLimits | None = None) -> dict[str, str]:
    result = load_documents(folder, limits)
    assert [d.doc_id for d in result.documents] == ["ok"], "the good file next to the bad one still loads"
    return {s.path: s.reason for s in result.skipped}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "ok.md").write_text("# 大丈夫な文書\n本文です。", encoding="utf-8")
    return folder


def test_a_password_protected_pdf_says_to_save_a_copy_without_one(folder: Path) -> None:
    make_pdf(folder / "secret.pdf", [["社外秘の計画です。"]], password="himitsu")
    assert "password-protected" in _skipped(folder)["secret.pdf"]


def test_a_pdf_without_a_text_layer_says_it_may_be_a_scan(folder: Path) -> None:
    make_blank_pdf(folder / "scan.pdf", pages=3)
    reason = _skipped(folder)["scan.pdf"]
    assert "no text layer on any of its 3 pages" in reason and "OCR" in reason


def test_a_damaged_pdf_is_skipped(folder: Path) -> None:
    (folder / "cut.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog")
    reason = _skipped(folder)["cut.pdf"]
    assert "cannot read this .pdf file" in reason and "export it again" in reason


def test_a_corrupt_docx_is_skipped_naming_the_format(folder: Path) -> None:
    (folder / "notazip.docx").write_bytes("これはWordファイルではありません".encode())
    good = make_docx(folder / "tmp.docx", title="規程", sections=[("目的", "本文。")])
    (folder / "truncated.docx").write_bytes(good.read_bytes()[:-200])
    good.unlink()
    with zipfile.ZipFile(folder / "wrongzip.docx", "w") as archive:
        archive.writestr("hello.txt", "not a Word document")
    reasons = _skipped(folder)
    assert "not a readable .docx file" in reasons["notazip.docx"]
    assert "not a readable .docx file" in reasons["truncated.docx"]
    assert "cannot read this .docx" in reasons["wrongzip.docx"] and "save it again" in reasons["wrongzip.docx"]


def test_a_deck_of_pictures_only_says_there_is_no_text(folder: Path) -> None:
    make_picture_pptx(folder / "handout.pptx", slides=2)
    assert "no text on any of its 2 slides" in _skipped(folder)["handout.pptx"]


def test_a_file_over_the_size_limit_is_skipped_naming_the_setting(folder: Path) -> None:
    (folder / "big.txt").write_text("長い文書です。" * 100_000, encoding="utf-8")  # 2.1 MB
    reason = _skipped(folder, SourceLimits(max_file_bytes=1024 * 1024))["big.txt"]
    assert "the file is 2.0 MB; the limit is 1 MB" in reason and "NEMAWASHI_KB_MAX_FILE_MB" in reason


def test_a_decompression_bomb_is_refused_from_its_declared_sizes(folder: Path) -> None:
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (40 * 1024 * 1024))
    assert len(bomb.getvalue()) < 100_000  # 40 MB of zeros in a small file
    (folder / "bomb.xlsx").write_bytes(bomb.getvalue())
    reason = _skipped(folder, SourceLimits(max_unpacked_bytes=10 * 1024 * 1024))["bomb.xlsx"]
    assert "would unpack to 40 MB" in reason and "decompression bomb" in reason


def test_a_spreadsheet_with_too_many_cells_is_refused(folder: Path) -> None:
    make_xlsx(folder / "survey.xlsx", {"回答": [["質問", "回答"]] + [[f"質問{i}", f"回答{i}"] for i in range(3000)]})
    reason = _skipped(folder, SourceLimits(max_cells=5000))["survey.xlsx"]
    assert "more than 5,000 cells" in reason and "NEMAWASHI_KB_MAX_CELLS" in reason


def test_ingest_prints_each_skipped_file_with_its_reason_indexes_the_rest_and_exits_1(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_embedder: HashedNgramEmbedder
) -> None:
    make_blank_pdf(folder / "scan.pdf")
    (folder / "slides.key").write_bytes(b"keynote")
    monkeypatch.setenv("NEMAWASHI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr("service.bootstrap.make_embedder", lambda settings: fake_embedder)
    get_settings.cache_clear()
    try:
        text = CliRunner().invoke(cli, ["ingest", "--knowledge", str(folder)])
        again = CliRunner().invoke(cli, ["ingest", "--knowledge", str(folder), "--json"])
    finally:
        get_settings.cache_clear()
    assert text.exit_code == 1, text.output
    assert "skipped scan.pdf: the PDF has no text layer" in text.output
    assert "skipped slides.key: unsupported file type '.key'" in text.output
    assert again.exit_code == 1
    report = json.loads(again.stdout)
    assert report["documents"] == 1 and report["unchanged"] == 1
    assert sorted(s["path"] for s in report["skipped"]) == ["scan.pdf", "slides.key"]
