"""The knowledge admin page in Chromium: an admin uploads a Japanese Markdown file, watches it index, then finds it
with the hit-testing box. The real app on the fake embedder, served by uvicorn."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from service.auth import service as auth
from service.db import session_scope
from tests.conftest import make_settings
from tests.retrieval.kb_admin_helpers import MEMO, small_knowledge
from tests.servers import served_app


@pytest.fixture
def kb_server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(base URL, an admin's token) of the service on SQLite with a small knowledge folder."""
    settings = make_settings(
        tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
        knowledge_dir=small_knowledge(tmp_path / "knowledge"),
    )
    with served_app(settings) as served:
        with session_scope(served.app.state.sessionmaker) as session:
            token = auth.add_user(session, name="admin", role="admin")[1]
        yield served.url, token


def test_an_admin_uploads_a_japanese_file_sees_it_indexed_and_finds_it_by_hit_testing(
    browser: Browser, kb_server: tuple[str, str], tmp_path: Path
) -> None:
    url, token = kb_server
    memo = tmp_path / "在宅勤務.md"
    memo.write_text(MEMO, encoding="utf-8")
    context = browser.new_context(locale="ja-JP")
    try:
        page = context.new_page()
        page.goto(f"{url}/admin/kb?lang=ja")
        page.fill("input[name=token]", token)  # the sign-in form comes back to this page
        page.click("#login button[type=submit]")
        page.wait_for_selector("#kb-upload")
        page.set_input_files("#kb-upload input[type=file]", str(memo))
        page.click("#kb-upload button[type=submit]")
        # The page polls the upload's status, then reloads with the new document listed.
        row = page.locator("#kb-docs tr", has_text="在宅勤務の申請手順")
        row.wait_for(timeout=30_000)
        assert "uploads/在宅勤務.md" in row.inner_text()
        page.fill("#kb-search input[name=q]", "在宅勤務は前日までに申請")
        page.click("#kb-search button[type=submit]")
        first = page.locator("#kb-hits tbody tr").first
        first.wait_for()
        assert "在宅勤務の申請手順" in first.inner_text()
        doc_id = row.get_attribute("data-doc-id")
        assert first.get_attribute("data-doc-id") == doc_id
        first.locator("a").first.click()  # the chunks as the embedder sees them
        page.wait_for_selector(".chunk pre")
        assert page.locator(".chunk pre").first.inner_text().startswith("在宅勤務の申請手順\n")
    finally:
        context.close()


@pytest.mark.parametrize(
    ("lang", "shown", "not_shown"),
    [
        ("ja", ".ppt は古い Office 形式です。.pptx で保存し直してから取り込んでください。", "old Office format"),
        ("en", ".ppt is the old Office format; save it as .pptx and ingest again", "古い Office 形式"),
    ],
)
def test_an_upload_refused_through_the_page_is_explained_in_the_pages_language(
    browser: Browser, kb_server: tuple[str, str], tmp_path: Path, lang: str, shown: str, not_shown: str
) -> None:
    url, token = kb_server
    old = tmp_path / "議事録.ppt"
    old.write_bytes(b"\xd0\xcf\x11\xe0")
    context = browser.new_context(locale="ja-JP")
    try:
        page = context.new_page()
        page.goto(f"{url}/admin/kb?lang={lang}")
        page.fill("input[name=token]", token)
        page.click("#login button[type=submit]")
        page.wait_for_selector("#kb-upload")
        page.set_input_files("#kb-upload input[type=file]", str(old))
        page.click("#kb-upload button[type=submit]")
        page.wait_for_selector("#kb-status[data-state=refused]", timeout=30_000)
        text = page.locator("#kb-status").inner_text()
        assert text == shown and not_shown not in text
    finally:
        context.close()
