"""Word, PowerPoint, Excel and PDF files become documents whose sections name the slide, page or row."""

from pathlib import Path

from service.retrieval.chunking import chunk_document
from service.retrieval.documents import load_documents
from tests.retrieval.office_files import make_docx, make_pdf, make_pptx, make_xlsx


def test_word_headings_become_sections_and_its_title_the_document_title(tmp_path: Path) -> None:
    make_docx(
        tmp_path / "plan" / "rules.docx",
        title="委託先管理規程",
        sections=[
            ("目的", "この規程は委託先の管理を定めます。"),
            ("アクセス権限", "委託先はVDIからのみアクセスします。"),
        ],
        table=[["項目", "内容"], ["契約期間", "2年"]],
    )
    result = load_documents(tmp_path)
    assert result.skipped == []
    [doc] = result.documents
    assert (doc.doc_id, doc.meta.title, doc.meta.type, doc.meta.lang) == ("plan-rules", "委託先管理規程", "plan", "ja")
    assert "## アクセス権限\n\n委託先はVDIからのみアクセスします。" in doc.body
    assert "| 契約期間 | 2年 |" in doc.body
    sections = {c.section for c in chunk_document(doc, max_tokens=20)}
    assert "委託先管理規程 > アクセス権限" in sections


def test_each_slide_is_one_section_with_its_title_body_and_notes(tmp_path: Path) -> None:
    make_pptx(
        tmp_path / "企画書.pptx",
        [
            ("BRIDGE企画書", ["営業の外注化で重点顧客に集中します。"], "質問はこの後に受け付けます。"),
            ("スケジュール", ["2027年4月にパイロットを始めます。", "10月に全面展開します。"], ""),
        ],
    )
    [doc] = load_documents(tmp_path).documents
    assert doc.meta.title == "BRIDGE企画書"
    chunks = chunk_document(doc, max_tokens=400)
    assert [c.section for c in chunks] == ["スライド 1: BRIDGE企画書", "スライド 2: スケジュール"]
    assert chunks[0].text.endswith("ノート: 質問はこの後に受け付けます。")
    assert chunks[1].text == "## スライド 2: スケジュール\n2027年4月にパイロットを始めます。\n10月に全面展開します。"


def test_pdf_pages_are_sections_named_by_page_number(tmp_path: Path) -> None:
    make_pdf(tmp_path / "policy.pdf", [["情報セキュリティ方針"], ["顧客データは国内で保管します。"]])
    [doc] = load_documents(tmp_path).documents
    chunks = chunk_document(doc, max_tokens=400)
    assert [(c.section, c.text) for c in chunks] == [
        ("p. 1", "## p. 1\n情報セキュリティ方針"),
        ("p. 2", "## p. 2\n顧客データは国内で保管します。"),
    ]
    assert (doc.meta.lang, doc.meta.title) == ("ja", "policy")


def test_a_risk_register_gives_one_risk_per_row_citing_sheet_and_row(tmp_path: Path) -> None:
    make_xlsx(
        tmp_path / "registers.xlsx",
        {
            "リスク登録簿": [
                ["No", "リスク", "担当", "対策"],
                [1, "顧客情報の漏えい", "情報システム部", "委託先のアクセスをVDI経由に限定する。"],
                [None, None, None, None],
                [2, "引き継ぎ漏れによる失注", "営業部", "引き継ぎチェックリストを使う。"],
            ],
            "FAQ": [["質問", "回答"], ["給料は下がりますか？", "基本給は2年間維持されます。"], ["", "質問のない行"]],
            "日程": [["日付", "内容"], ["12月10日", "全社説明会"]],
        },
    )
    result = load_documents(tmp_path)
    assert result.skipped == []
    docs = {d.doc_id: d for d in result.documents}
    assert sorted(docs) == ["registers-s1-r2", "registers-s1-r4", "registers-s2-r2", "registers-s3"]
    risk = docs["registers-s1-r4"]
    assert (risk.meta.type, risk.meta.title) == ("risk", "引き継ぎ漏れによる失注")
    [chunk] = chunk_document(risk, max_tokens=400)
    assert chunk.section == "シート「リスク登録簿」4行目: 引き継ぎ漏れによる失注"
    assert "- 担当: 営業部" in chunk.text and "### 対策\n引き継ぎチェックリストを使う。" in chunk.text
    faq = docs["registers-s2-r2"]
    assert (faq.meta.type, faq.meta.title) == ("faq", "給料は下がりますか？")
    assert faq.body.startswith("## Q: 給料は下がりますか？\n基本給は2年間維持されます。")
    assert faq.body.endswith("出典: registers.xlsx シート「FAQ」2行目")
    table = docs["registers-s3"]
    assert (table.meta.type, table.meta.title) == ("plan", "registers: 日程")
    assert "| 2 | 12月10日 | 全社説明会 |" in table.body


def test_english_headers_are_recognised_too(tmp_path: Path) -> None:
    make_xlsx(
        tmp_path / "faq" / "qa.xlsx",
        {"Sheet1": [["Q", "A"], ["Will my salary go down?", "Base pay is kept for two years."]]},
    )
    make_xlsx(
        tmp_path / "risks.xlsx",
        {"Register": [["Risk", "Owner", "Mitigation"], ["Vendor quality drops", "Sales", "Weekly reviews."]]},
    )
    docs = {d.doc_id: d for d in load_documents(tmp_path).documents}
    assert docs["faq-qa-s1-r2"].meta.type == "faq"
    assert docs["faq-qa-s1-r2"].body.endswith("Source: qa.xlsx sheet 'Sheet1' row 2")
    assert docs["risks-s1-r2"].body.startswith("## sheet 'Register' row 2: Vendor quality drops\n- Owner: Sales")
    assert docs["risks-s1-r2"].meta.lang == "en"
