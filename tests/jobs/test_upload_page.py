"""The upload page (/jobs) in a real headless Chromium: a refused file is explained in the page's language."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, Page

from service.auth import service as auth
from service.db import session_scope
from tests.conftest import make_settings
from tests.review.helpers import browser_session
from tests.servers import served_app

pytestmark = pytest.mark.timeout(900)


@dataclass(frozen=True)
class Site:
    url: str
    session_id: str  # a signed-in reviewer's cookie


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("upload-page")
    settings = make_settings(folder, database_url=f"sqlite:///{folder / 'db.sqlite'}", upload_max_mb=1)
    with served_app(settings) as served:
        with session_scope(served.app.state.sessionmaker) as session:
            token = auth.add_user(session, name="佐藤", role="reviewer")[1]
        yield Site(served.url, browser_session(served.app.state.sessionmaker, token))


def upload_page(browser: Browser, site: Site, lang: str) -> Iterator[Page]:
    context = browser.new_context(locale=f"{lang}-JP")
    host = site.url.removeprefix("http://").split(":")[0]
    context.add_cookies([{"name": "nemawashi_review", "value": site.session_id, "domain": host, "path": "/"}])
    page = context.new_page()
    page.goto(f"{site.url}/jobs?lang={lang}")
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def japanese_page(browser: Browser, site: Site) -> Iterator[Page]:
    yield from upload_page(browser, site, "ja")


@pytest.fixture
def english_page(browser: Browser, site: Site) -> Iterator[Page]:
    yield from upload_page(browser, site, "en")


def send(page: Page, name: str, content: bytes) -> str:
    """Upload a file from the page's form; the status line once the server has answered."""
    page.set_input_files('input[name="file"]', files=[{"name": name, "mimeType": "text/csv", "buffer": content}])
    page.click('button[type="submit"]')
    answered = (
        "() => { const s = document.getElementById('status'); "
        "return s.textContent && s.textContent !== s.dataset.uploading; }"
    )
    page.wait_for_function(answered, timeout=60_000)
    return page.locator("#status").inner_text()


@pytest.mark.parametrize(
    ("name", "content", "japanese"),
    [
        ("bad.csv", b"a,b\n1,2\n3,4\n", "コメントの列が見つかりません"),
        ("bad.doc.csv", b"hello\n", "データの行がありません"),
        ("empty.csv", b"", "ファイルが空です"),
        ("old.xls", b"\xd0\xcf\x11\xe0" + b"\x00" * 600, "古い Excel 形式"),
        ("binary.csv", b"\x00\x01\x02" * 100, "テキストのファイルではありません"),
        ("big.csv", b"id,comment\n" + b"1," + b"x" * (1024 * 1024 + 10) + b"\n", "上限（1 MB）"),
        # Refused by the body limit before the route reads it: the same words, with the limit.
        ("bigger.csv", b"id,comment\n" + b"1," + b"x" * (2 * 1024 * 1024) + b"\n", "上限（1 MB）"),
    ],
)
def test_a_refused_file_is_explained_in_japanese_on_the_japanese_page(
    japanese_page: Page, name: str, content: bytes, japanese: str
) -> None:
    shown = send(japanese_page, name, content)
    assert japanese in shown
    assert not any(word in shown for word in ("Pass", "nothing to classify", "has no", "is empty", "limit")), shown


def test_the_japanese_message_names_the_columns_of_the_file(japanese_page: Page) -> None:
    shown = send(japanese_page, "bad.csv", "年齢,性別\n30,男\n41,女\n".encode())
    assert "コメントの列名" in shown and "年齢、性別" in shown


def test_the_english_page_words_the_refusal_in_english(english_page: Page) -> None:
    shown = send(english_page, "bad.doc.csv", b"hello\n")
    assert "no rows below it" in shown and "(hello)" in shown
