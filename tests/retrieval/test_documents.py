import os
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from service.errors import BadInput
from service.retrieval.documents import detect_lang, load_documents
from tests.retrieval.helpers import write_doc


def test_broken_front_matter_is_reported_by_path_and_the_rest_still_loads(tmp_path: Path) -> None:
    write_doc(tmp_path, "faq-ok-ja", "## Q: 質問？\n答えです。")
    (tmp_path / "broken.md").write_text("---\nid: [unclosed\ntitle: x\n---\n本文。", encoding="utf-8")
    (tmp_path / "bad-type.md").write_text("---\nid: bad-type\ntype: memo\n---\n本文。", encoding="utf-8")
    result = load_documents(tmp_path)
    assert [d.doc_id for d in result.documents] == ["faq-ok-ja"]
    reasons = {s.path: s.reason for s in result.skipped}
    assert "not valid YAML" in reasons["broken.md"]
    assert "type" in reasons["bad-type.md"] and "faq" in reasons["bad-type.md"]


def test_a_shift_jis_file_is_skipped_with_a_reason_saying_to_save_as_utf8(tmp_path: Path) -> None:
    (tmp_path / "excel.txt").write_bytes("営業の引き継ぎについて".encode("cp932"))
    result = load_documents(tmp_path)
    assert result.documents == []
    assert "UTF-8" in result.skipped[0].reason


def test_plain_text_without_front_matter_is_indexed_with_an_id_from_its_path(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "town hall.txt").write_text("全社説明会のメモ\n12月10日に開催します。", encoding="utf-8")
    [doc] = load_documents(tmp_path).documents
    assert (doc.doc_id, doc.meta.title, doc.meta.lang, doc.meta.type) == (
        "notes-town-hall",
        "全社説明会のメモ",
        "ja",
        "plan",
    )


def test_two_files_with_the_same_id_keep_the_first_and_report_the_second(tmp_path: Path) -> None:
    write_doc(tmp_path / "a", "same-id", "一つ目。")
    write_doc(tmp_path / "b", "same-id", "二つ目。")
    result = load_documents(tmp_path)
    assert len(result.documents) == 1
    assert "duplicate id 'same-id'" in result.skipped[0].reason


def test_unknown_root_cause_is_rejected_naming_the_allowed_ones(tmp_path: Path) -> None:
    write_doc(tmp_path, "x", "本文。", root_causes="[fear]")
    [skipped] = load_documents(tmp_path).skipped
    assert "fear" in skipped.reason and "job_fear" in skipped.reason


def test_a_missing_knowledge_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"knowledge folder not found: .*nowhere"):
        load_documents(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("text", "lang"),
    [("外注が始まったら営業はクビになるの？", "ja"), ("Will I be fired?", "en"), ("CRMのaccess logは誰が見る？", "ja")],
)
def test_language_is_detected_for_japanese_english_and_mixed_text(text: str, lang: str) -> None:
    assert detect_lang(text) == lang


def test_plain_markdown_without_front_matter_is_indexed_with_defaults_a_user_can_see(tmp_path: Path) -> None:
    (tmp_path / "faq").mkdir()
    article = tmp_path / "faq" / "onboarding-notes.md"
    article.write_text("# 委託先の受け入れについて\n\n## 研修\n2月に研修を行います。\n", encoding="utf-8")
    os.utime(article, (datetime(2027, 1, 5, 12, tzinfo=UTC).timestamp(),) * 2)
    result = load_documents(tmp_path)
    assert result.skipped == []
    [doc] = result.documents
    assert doc.meta.model_dump(exclude={"root_causes", "questions"}) == {
        "id": "faq-onboarding-notes",
        "type": "faq",
        "title": "委託先の受け入れについて",
        "lang": "ja",
        "updated": date(2027, 1, 5),
    }
    assert doc.path == "faq/onboarding-notes.md"


@pytest.mark.parametrize(("folder", "doc_type"), [("plan", "plan"), ("risks", "risk"), ("misc", "plan"), ("", "plan")])
def test_the_folder_names_the_type_and_anything_else_is_plan(tmp_path: Path, folder: str, doc_type: str) -> None:
    (tmp_path / folder).mkdir(exist_ok=True)
    (tmp_path / folder / "note.md").write_text("メモです。", encoding="utf-8")
    [doc] = load_documents(tmp_path).documents
    assert doc.meta.type == doc_type
    assert doc.meta.title == "note"  # no heading: the file name


def test_partial_front_matter_keeps_what_it_declares_and_fills_the_rest(tmp_path: Path) -> None:
    (tmp_path / "risks").mkdir()
    (tmp_path / "risks" / "vendor.md").write_text(
        "---\ntitle: 委託先の品質リスク\nroot_causes: [process]\n---\n# 見出しは題名になりません\n品質が下がるおそれ。",
        encoding="utf-8",
    )
    [doc] = load_documents(tmp_path).documents
    assert (doc.doc_id, doc.meta.type, doc.meta.title, doc.meta.lang, doc.meta.root_causes) == (
        "risks-vendor",
        "risk",
        "委託先の品質リスク",
        "ja",
        ["process"],
    )
    assert doc.meta.updated is not None


def test_japanese_file_names_get_distinct_ascii_ids(tmp_path: Path) -> None:
    (tmp_path / "企画書.md").write_text("# 企画書\n目的です。", encoding="utf-8")
    (tmp_path / "議事録.md").write_text("# 議事録\n決定事項です。", encoding="utf-8")
    result = load_documents(tmp_path)
    ids = [d.doc_id for d in result.documents]
    assert len(set(ids)) == 2 and all(re.fullmatch(r"doc-[0-9a-f]{8}", i) for i in ids)
    assert sorted(d.meta.title for d in result.documents) == ["企画書", "議事録"]


def test_markdown_extension_and_html_pages_are_read(tmp_path: Path) -> None:
    (tmp_path / "schedule.markdown").write_text("# Schedule\nThe pilot starts in April.", encoding="utf-8")
    (tmp_path / "intranet.html").write_text(
        "<html><head><title>説明会のご案内</title><style>p{color:red}</style></head><body>"
        "<h2>日程</h2><p>12月10日に<b>全社説明会</b>を開きます。</p><script>alert(1)</script>"
        "<ul><li>会場：本社</li><li>オンライン参加可</li></ul>"
        "<table><tr><th>部門</th><th>時間</th></tr><tr><td>営業</td><td>10時</td></tr></table></body></html>",
        encoding="utf-8",
    )
    docs = {d.doc_id: d for d in load_documents(tmp_path).documents}
    assert docs["schedule"].meta.lang == "en"
    page = docs["intranet"]
    assert page.meta.title == "説明会のご案内"
    assert page.body.splitlines() == [
        "## 日程",
        "",
        "12月10日に全社説明会を開きます。",
        "",
        "- 会場：本社",
        "- オンライン参加可",
        "",
        "| 部門 | 時間 |",
        "| --- | --- |",
        "| 営業 | 10時 |",
    ]
    assert "alert" not in page.body and "color" not in page.body


def test_unknown_and_old_office_extensions_are_skipped_with_a_reason_config_and_lock_files_are_not(
    tmp_path: Path,
) -> None:
    (tmp_path / "ok.md").write_text("本文です。", encoding="utf-8")
    (tmp_path / "archive.zip").write_bytes(b"PK")
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf")
    (tmp_path / "synonyms.yaml").write_text("[]", encoding="utf-8")
    (tmp_path / "~$企画書.docx").write_bytes(b"lock")
    (tmp_path / ".DS_Store").write_bytes(b"x")
    result = load_documents(tmp_path)
    assert [d.doc_id for d in result.documents] == ["ok"]
    reasons = {s.path: s.reason for s in result.skipped}
    assert set(reasons) == {"archive.zip", "old.xls"}
    assert "unsupported file type '.zip'" in reasons["archive.zip"] and ".docx" in reasons["archive.zip"]
    assert "save it as .xlsx" in reasons["old.xls"]
