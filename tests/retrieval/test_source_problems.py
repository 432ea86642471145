"""Why a knowledge file was skipped or refused, in the admin page's language: each reason has a code and values;
the API, the logs and the CLI keep the English sentence, and a stored English reason is worded at display time."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from service.db import session_scope
from service.retrieval import service as kb_service
from service.retrieval.source_problems import REASONS, SourceError, SourceProblem, reason_problem, reason_text
from service.retrieval.sources import SourceLimits, convert
from service.web.i18n import TEXTS
from tests.retrieval.kb_admin_helpers import MEMO, KbSite, kb_site
from tests.retrieval.office_files import make_blank_pdf, make_docx, make_pdf, make_picture_pptx, make_xlsx

PROBLEMS = TEXTS["ja"]["kb_admin"]["problems"]
# English reasons a Japanese page must never show (parts of the sentences sources.py and uploads.py make).
ENGLISH = ("old Office format", "unsupported file type", "save it as", "ingest again", "supported:", "limit is")


@pytest.fixture
def site(tmp_path: Path, database_url: str) -> Iterator[KbSite]:
    with kb_site(tmp_path, database_url) as running:
        yield running


def _bomb() -> bytes:
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (3 * 1024 * 1024))
    return bomb.getvalue()


def _bad_files(folder: Path) -> dict[str, tuple[bytes, SourceLimits]]:
    """One file per reason sources.py gives, with the limits that make it fail."""
    plain, small = SourceLimits(), SourceLimits(max_unpacked_bytes=1024 * 1024, max_cells=10)
    good = make_docx(folder / "good.docx", title="規程", sections=[("目的", "本文。")]).read_bytes()
    with zipfile.ZipFile(wrong := io.BytesIO(), "w") as archive:
        archive.writestr("hello.txt", "not a Word document")
    return {
        "sjis.md": ("見出し".encode("cp932"), plain),
        "yaml.md": (b"---\nid: [unclosed\n---\n\nbody\n", plain),
        "empty.md": (b"---\ntitle: x\n---\n", plain),
        "notazip.docx": ("Wordではありません".encode(), plain),
        "bomb.xlsx": (_bomb(), small),
        "wrongzip.docx": (wrong.getvalue(), plain),
        "cut.pdf": (b"%PDF-1.7\n1 0 obj << /Type /Catalog", plain),
        "secret.pdf": (make_pdf(folder / "secret.pdf", [["社外秘"]], password="himitsu").read_bytes(), plain),
        "handout.pptx": (make_picture_pptx(folder / "handout.pptx").read_bytes(), plain),
        "scan.pdf": (make_blank_pdf(folder / "scan.pdf").read_bytes(), plain),
        "cells.xlsx": (make_xlsx(folder / "c.xlsx", {"it's": [["a", "b"]] * 20}).read_bytes(), small),
        "old.ppt": (b"\xd0\xcf\x11\xe0", plain),
        "notes.exe": (b"MZ", plain),
        "README": (b"text", plain),
        "blank.txt": (b"   \n", plain),
        "truncated.docx": (good[:-200], plain),
    }


def test_every_reason_sources_gives_has_a_code_that_its_english_text_maps_back_to(tmp_path: Path) -> None:
    seen = set()
    for name, (raw, limits) in _bad_files(tmp_path).items():
        with pytest.raises(SourceError) as raised:
            convert(raw, name, limits)
        exc = raised.value
        code, values = reason_problem(str(exc))
        assert code == exc.code, (name, str(exc))
        assert values == {k: str(v) for k, v in exc.values.items()}, (name, str(exc))
        wording = reason_text(str(exc), "ja")
        assert wording == PROBLEMS[code].format(**values) and code != SourceProblem.unknown
        assert not re.search(r"\{\w+\}", wording), wording
        assert reason_text(str(exc), "en") == str(exc)  # English stays exactly as the API gives it
        seen.add(exc.code)
    assert seen >= set(SourceProblem) - {
        SourceProblem.bad_metadata, SourceProblem.too_large, SourceProblem.duplicate_id,
        SourceProblem.bad_file_name, SourceProblem.no_file, SourceProblem.unknown,
    }  # fmt: skip


def test_every_code_has_a_wording_in_both_languages_and_unknown_reasons_are_never_english() -> None:
    for lang in ("ja", "en"):
        assert set(TEXTS[lang]["kb_admin"]["problems"]) == {c.value for c in SourceProblem}
    assert {code for _, code in REASONS} == set(SourceProblem) - {SourceProblem.unknown}
    assert reason_text("[Errno 13] Permission denied: 'knowledge/x.md'", "ja") == PROBLEMS["unknown"]
    assert reason_text("embedding service unavailable", "ja") == PROBLEMS["unknown"]
    old_reasons = {  # sentences stored by documents.py, kb_files.py and older versions
        "the file is 2.0 MB; the limit is 1 MB (NEMAWASHI_KB_MAX_FILE_MB): split it or raise the limit": "too_large",
        "duplicate id 'faq-1' (also in faq/a.md)": "duplicate_id",
        "front matter: lang: Input should be 'ja' or 'en'": "bad_metadata",
    }
    for reason, code in old_reasons.items():
        assert reason_problem(reason)[0] == code
    assert reason_text("duplicate id 'faq-1' (also in faq/a.md)", "ja") == PROBLEMS["duplicate_id"].format(
        doc_id="faq-1", other="faq/a.md"
    )


def _skipped_cell(page: str, path: str) -> str:
    match = re.search(rf"<tr><td><code>{re.escape(path)}</code></td><td([^>]*)>(.*?)</td>", page, re.DOTALL)
    assert match, path
    assert 'lang="en"' not in match.group(1)
    return match.group(2)


def test_the_admin_page_words_skipped_files_in_its_language_and_the_api_stays_english(site: KbSite) -> None:
    (site.settings.knowledge_dir / "old.ppt").write_bytes(b"\xd0\xcf\x11\xe0")
    (site.settings.knowledge_dir / "notes.exe").write_bytes(b"MZ")
    report = site.client.post("/v1/kb/reindex", headers=site.as_admin()).json()
    english = {s["path"]: s["reason"] for s in report["skipped"]}
    assert english["old.ppt"] == ".ppt is the old Office format; save it as .pptx and ingest again"
    assert english["notes.exe"].startswith("unsupported file type '.exe'; supported: .docx, ")
    listed = site.client.get("/v1/kb/documents", headers=site.as_reviewer()).json()["skipped"]
    assert {s["path"]: s["reason"] for s in listed} == english and set(listed[0]) == {"path", "reason"}

    ja = site.client.get("/admin/kb", params={"lang": "ja"}, headers=site.as_reviewer()).text
    assert _skipped_cell(ja, "old.ppt") == "。".join(
        [".ppt は古い Office 形式です", ".pptx で保存し直してから取り込んでください", ""]
    )
    exe = _skipped_cell(ja, "notes.exe")
    assert exe.startswith("対応していない種類のファイルです（.exe）。対応形式：.docx, ")
    assert not [phrase for phrase in ENGLISH if phrase in ja], ja

    en = site.client.get("/admin/kb", params={"lang": "en"}, headers=site.as_reviewer()).text
    assert _skipped_cell(en, "old.ppt") == english["old.ppt"]
    assert _skipped_cell(en, "notes.exe") == english["notes.exe"].replace("'", "&#39;")
    assert "古い Office 形式" not in en


def test_a_refused_upload_carries_its_code_and_values_beside_the_english_error(site: KbSite) -> None:
    def refused(name: str, data: bytes) -> Any:
        return site.client.post("/v1/kb/files", headers=site.as_admin(), files={"file": (name, data)})

    old = refused("議事録.ppt", b"\xd0\xcf\x11\xe0")
    assert old.status_code == 422 and old.json() == {
        "error": ".ppt is the old Office format; save it as .pptx and ingest again",
        "detail": {"name": "議事録.ppt", "code": "old_office_format", "suffix": ".ppt", "modern": ".pptx"},
    }
    exe = refused("notes.exe", b"MZ").json()
    assert exe["error"].startswith("unsupported file type '.exe'; supported: ")
    assert exe["detail"]["code"] == "unsupported_type" and exe["detail"]["suffix"] == ".exe"
    big = refused("big.md", b"#" + b" " * (21 * 1024 * 1024))
    assert big.status_code == 413 and big.json()["detail"]["code"] == "too_large"
    assert big.json()["detail"]["limit_mb"] == "20"
    site.client.post("/v1/kb/files", headers=site.as_admin(), files={"file": ("memo.md", MEMO.encode())})
    clash = refused("clash.md", b"---\nid: uploads-memo\n---\n\n# x\n\nbody\n").json()
    assert clash["error"].startswith("duplicate id 'uploads-memo' (also in uploads/memo.md)")
    assert clash["detail"] == {"code": "duplicate_id", "doc_id": "uploads-memo", "other": "uploads/memo.md"}
    name = refused(".hidden.md", b"# x").json()
    assert name["error"] == "not a usable file name: '.hidden.md'"
    assert name["detail"] == {"code": "bad_file_name", "name": ".hidden.md"}
    page = site.client.get("/admin/kb", params={"lang": "ja"}, headers=site.as_admin()).text
    assert "data-problems=" in page and "old_office_format" in page and 'data-verbatim="false"' in page


def test_an_approved_answer_is_listed_as_coming_from_review(site: KbSite) -> None:
    page = kb_service.Page(
        doc_id="approved-1", origin="review", title="ボーナスについて", type="faq", lang="ja", root_causes=[],
        updated=date(2026, 1, 1), body="# ボーナスについて\n\n減りません。", path="review:items/1",
    )  # fmt: skip
    with session_scope(site.app.state.sessionmaker) as session:
        kb_service.put_page(session, page)
    ja = site.client.get("/admin/kb", params={"lang": "ja"}, headers=site.as_reviewer()).text
    assert '<a href="/review/items/1">レビューで承認（#1）</a>' in ja and "review:items/1" not in ja
    en = site.client.get("/admin/kb", params={"lang": "en"}, headers=site.as_reviewer()).text
    assert "Approved in review (#1)" in en
