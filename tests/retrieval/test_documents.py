from pathlib import Path

import pytest

from service.errors import BadInput
from service.retrieval.documents import detect_lang, load_documents
from tests.retrieval.helpers import write_doc


def test_broken_front_matter_is_reported_by_path_and_the_rest_still_loads(tmp_path: Path) -> None:
    write_doc(tmp_path, "faq-ok-ja", "## Q: 質問？\n答えです。")
    (tmp_path / "broken.md").write_text("---\nid: [unclosed\ntitle: x\n---\n本文。", encoding="utf-8")
    (tmp_path / "no-type.md").write_text("---\nid: no-type\ntitle: x\nlang: ja\n---\n本文。", encoding="utf-8")
    result = load_documents(tmp_path)
    assert [d.doc_id for d in result.documents] == ["faq-ok-ja"]
    reasons = {s.path: s.reason for s in result.skipped}
    assert "not valid YAML" in reasons["broken.md"]
    assert "type" in reasons["no-type.md"]


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
        "doc",
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
