"""Done when (issue 14): a project office's folder as it is — Word, PowerPoint, an Excel risk register, a PDF and a
plain Markdown note — indexes with no skips, and each is found by search with a citation naming its place."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from service.bootstrap import Clients, open_clients
from service.db import session_scope
from service.retrieval.ingest import ingest_knowledge
from service.retrieval.schemas import Hit
from service.retrieval.service import get_kb_document, search_passages
from tests.conftest import make_settings
from tests.fakes import HashedNgramEmbedder
from tests.retrieval.office_files import make_docx, make_pdf, make_pptx, make_xlsx


@pytest.fixture
def office_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "knowledge"
    make_docx(
        folder / "plan" / "委託先管理規程.docx",
        title="委託先管理規程",
        sections=[
            ("目的", "この規程は、営業業務の委託先を管理するための手順を定めます。"),
            ("アクセス権限", "委託先の担当者は、仮想デスクトップ（VDI）経由でのみ顧客管理システムに接続します。"),
        ],
    )
    make_pptx(
        folder / "plan" / "BRIDGE企画書.pptx",
        [
            ("BRIDGE企画書", ["中小企業向けの新規営業をインサイドセールスに委託します。"], "冒頭で目的を説明します。"),
            ("スケジュール", ["2027年4月に西日本支店でパイロットを開始します。"], "延期の可能性は低いと伝えます。"),
        ],
    )
    make_xlsx(
        folder / "risks" / "リスク登録簿.xlsx",
        {
            "リスク登録簿": [
                ["No", "リスク", "担当", "対策"],
                [1, "中核人材の離職", "人事部", "全員と上司の1on1を実施し、再配置の希望を聞き取ります。"],
                [2, "顧客情報の漏えい", "情報システム部", "委託先の操作ログを毎週監査します。"],
            ]
        },
    )
    make_pdf(
        folder / "plan" / "security-policy.pdf",
        [["Information security policy"], ["顧客データは国内のデータセンターにのみ保管します。"]],
    )
    (folder / "faq").mkdir(parents=True, exist_ok=True)
    (folder / "faq" / "研修について.md").write_text(
        "# 研修はありますか？\n\nソリューション営業のリスキリング研修を60時間、就業時間内に行います。\n",
        encoding="utf-8",
    )
    return folder


@pytest.fixture
def clients(tmp_path: Path, fake_embedder: HashedNgramEmbedder) -> Iterator[Clients]:
    opened = open_clients(make_settings(tmp_path / "data"), embedder=fake_embedder)
    yield opened
    opened.close()


def _top(clients: Clients, query: str) -> Hit:
    return search_passages(clients.knowledge, query=query, k=1, method="lexical")[0]


def test_a_folder_of_office_files_pdf_and_plain_markdown_indexes_and_each_is_found_cited_to_its_place(
    clients: Clients, office_folder: Path
) -> None:
    with session_scope(clients.sessionmaker) as session:
        report = ingest_knowledge(session, clients.knowledge.store, knowledge_dir=office_folder, max_tokens=400)
    assert report.skipped == []
    assert report.documents == 6  # docx, pptx, pdf, md, and two risk rows
    clients.knowledge.refresh()

    slide = _top(clients, "パイロットはいつから始まりますか")
    assert (slide.title, slide.section) == ("BRIDGE企画書", "スライド 2: スケジュール")
    assert slide.text.startswith("## スライド 2: スケジュール")  # the citation snippet names the slide

    page = _top(clients, "顧客データはどこに保管されますか")
    assert (page.title, page.section, page.lang) == ("security-policy", "p. 2", "ja")
    assert page.text.startswith("## p. 2")

    risk = _top(clients, "操作ログの監査")
    assert (risk.type, risk.title) == ("risk", "顧客情報の漏えい")
    assert risk.section == "シート「リスク登録簿」3行目: 顧客情報の漏えい"
    assert risk.doc_id.endswith("-s1-r3")

    rule = _top(clients, "VDI経由で接続")
    assert rule.title == "委託先管理規程" and "## アクセス権限\n委託先の担当者は" in rule.text

    note = _top(clients, "リスキリング研修は何時間")
    assert (note.title, note.type, note.lang) == ("研修はありますか？", "faq", "ja")

    with session_scope(clients.sessionmaker) as session:
        row = get_kb_document(session, doc_id=risk.doc_id)
        assert row.path == "risks/リスク登録簿.xlsx" and "### 対策" in row.body
