"""Every page in both languages: the shared header, no message id without a translation, no English on a Japanese
page (product names aside), times in the configured zone. The real app on the fake embedder (no e5 model)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Browser

from service.auth import service as auth
from service.config import Settings
from service.db import session_scope
from service.reports.render import render_plan_feedback_html
from service.reports.schemas import ReportQuery
from service.reports.service import plan_feedback_report
from service.triage.schemas import Flag
from service.web.i18n import TEXTS
from service.web.pages import TEMPLATES_DIR
from tests.conftest import make_settings
from tests.review.helpers import REVIEW_FLOW, add_item, browser_session
from tests.servers import served_app

# Names a Japanese page may show in Latin letters: the product, file formats and a few loanwords staff use as is.
ALLOWED = {
    "nemawashi", "CSV", "TSV", "XLSX", "JSONL", "JSON", "LLM", "FAQ", "ID", "API", "AI", "MB", "PMO", "UTF",
    "Shift_JIS", "Project", "BRIDGE", "LangChain", "JST", "Esc", "Ctrl", "Enter",
    "j", "k", "a", "e", "r", "l", "English",
    "faq", "job", "ja",  # the test item's citation is titled with its id (tests/review/helpers.py add_item)
}  # fmt: skip
SKIPPED_TAGS = {"script", "style", "code", "svg"}
SURVEY = "部署,コメント\n営業部,ボーナスは減りますか？\n情報システム部,顧客データはどこに保存されますか？\n".encode()


class _Text(HTMLParser):
    """The words a reader sees on a page (and in titles and labels), minus data marked translate="no" or in
    another language."""

    def __init__(self, lang: str) -> None:
        super().__init__()
        self.lang, self.stack, self.words = lang, [], []  # type: list[tuple[str, bool]]
        self.words: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        skip = (self.stack[-1][1] if self.stack else False) or tag in SKIPPED_TAGS
        skip = skip or found.get("translate") == "no" or (found.get("lang") not in (None, self.lang))
        if not skip:
            self.words += [v for k, v in attrs if k in ("title", "aria-label", "alt", "placeholder") and v]
        if tag not in ("meta", "link", "input", "br", "img", "hr", "source"):
            self.stack.append((tag, skip))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        if data.strip() and not (self.stack and self.stack[-1][1]):
            self.words.append(data.strip())


def english_only(html: str) -> list[str]:
    """Text on a Japanese page written only in Latin letters (after the allowed names)."""
    reader = _Text("ja")
    reader.feed(html)
    found = []
    for text in reader.words:
        rest = " ".join(w for w in re.findall(r"[A-Za-z_]+", text) if w not in ALLOWED)
        if rest and not re.search(r"[^\x00-\x7f]", text):
            found.append(text)
    return found


@dataclass
class Site:
    client: httpx.Client
    token: str
    session_id: str  # the login cookie's value
    item: int
    job: str
    settings: Settings
    app: Any
    url: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The whole service on SQLite with the fake embedder: one reviewer, an excerpt draft, a finished survey job."""
    folder = tmp_path_factory.mktemp("pages")
    settings = make_settings(folder, database_url=f"sqlite:///{folder / 'db.sqlite'}", **REVIEW_FLOW)
    with served_app(settings) as served, httpx.Client(base_url=served.url, timeout=60) as client:
        yield _seed(client, served.app, settings, served.url)


def _seed(client: httpx.Client, app: Any, settings: Settings, url: str) -> Site:
    with session_scope(app.state.sessionmaker) as session:
        token = auth.add_user(session, name="田中", role="reviewer")[1]
        item = add_item(session, "ボーナスは減りますか？", mode="extractive").id
    headers = {"Authorization": f"Bearer {token}"}
    job = client.post("/v1/jobs/classify", headers=headers, files={"file": ("survey.csv", SURVEY)}).json()
    deadline = time.monotonic() + 120
    while client.get(f"/v1/jobs/{job['id']}", headers=headers).json()["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline, "the survey job did not finish"
        time.sleep(0.2)
    session_id = browser_session(app.state.sessionmaker, token)
    client.cookies.set("nemawashi_review", session_id)
    return Site(client, token, session_id, item, job["id"], settings, app, url)


def pages(site: Site) -> dict[str, str]:
    return {
        "list": "/review?status=",
        "item": f"/review/items/{site.item}",
        "sign-out": "/review/logout",
        "dashboard": "/dashboard",
        "plan-feedback": "/dashboard/plan-feedback",
        "jobs": "/jobs",
        "job-report": f"/v1/jobs/{site.job}/report",
        "kb": "/kb",
        "kb-document": "/kb/faq-job-01-ja",
        "kb-admin": "/admin/kb?q=ボーナス",
        "kb-chunks": "/admin/kb/docs/faq-job-01-ja",
    }


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_every_page_has_the_shared_header_and_speaks_one_language(site: Site, lang: str) -> None:
    other = "en" if lang == "ja" else "ja"
    for name, path in pages(site).items():
        response = site.client.get(path, params={"lang": lang})
        assert response.status_code == 200, (name, response.text[:300])
        html = response.text
        if name != "job-report":  # the report is a file: it follows the job, not the reader
            assert f'<html lang="{lang}">' in html, name
        assert 'id="site-header"' in html, name
        for key in ("review", "jobs", "dashboard", "kb", "kb_admin"):
            assert f'data-nav="{key}"' in html, (name, key)
        if lang == "ja" and name != "job-report":
            assert english_only(html) == [], name
        if name != "job-report":
            assert TEXTS[other]["nav"]["dashboard"] not in html, name  # no doubled "日本語 / English" labels
    site.client.get("/review", params={"lang": "ja"})  # leave the remembered language as it was


def test_the_sign_in_page_and_the_plan_feedback_report_are_japanese_too(site: Site) -> None:
    with httpx.Client(base_url=site.url, timeout=60) as signed_out:
        login = signed_out.get("/review", params={"lang": "ja"})
    assert login.status_code == 401 and 'id="site-header"' in login.text
    assert english_only(login.text) == []
    with session_scope(site.app.state.sessionmaker) as session:
        taxonomy = site.app.state.triage.classifier.taxonomy
        report = plan_feedback_report(
            session, query=ReportQuery(), taxonomy=taxonomy, embedder=None, zone=ZoneInfo("Asia/Tokyo")
        )
    html = render_plan_feedback_html(report, base_url="")
    assert 'id="site-header"' in html and "社員の声" in html and "職員の声" not in html
    assert english_only(html) == []


def test_times_are_shown_in_the_configured_zone_with_its_name(site: Site) -> None:
    html = site.client.get(f"/review/items/{site.item}", params={"lang": "ja"}).text
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d JST", html) and " UTC" not in html


def test_an_unedited_excerpt_draft_is_approved_only_when_confirmed(site: Site) -> None:
    headers = {"Authorization": f"Bearer {site.token}"}
    page = site.client.get(f"/review/items/{site.item}", params={"lang": "ja"}).text
    assert 'id="draft-kind"' in page and ">抜粋<" in page and 'id="confirm-extract"' in page
    refused = site.client.post(
        f"/v1/review/items/{site.item}/decisions", headers=headers, json={"action": "approve", "version": 1}
    )
    assert refused.status_code == 422 and "confirm_extract" in refused.json()["error"]
    assert site.client.get(f"/review/items/{site.item}/state").json()["status"] == "pending"


def test_every_message_id_a_template_reads_has_both_translations() -> None:
    def keys(texts: dict[str, Any], prefix: str = "") -> set[str]:
        found = set()
        for key, value in texts.items():
            found.add(prefix + key)
            if isinstance(value, dict):
                found |= keys(value, f"{prefix}{key}.")
        return found

    ja, en = keys(TEXTS["ja"]), keys(TEXTS["en"])
    assert ja == en, ja ^ en
    used = set()
    for template in Path(TEMPLATES_DIR).glob("*.html"):
        for match in re.finditer(r"\bt\.([a-z_]+(?:\.[a-z_]+)?)", template.read_text(encoding="utf-8")):
            path = match.group(1)
            head = path.split(".")[0]
            if head in ("get",):
                continue
            used.add(path if isinstance(TEXTS["ja"].get(head), dict) else head)
    missing = {u for u in used if u not in ja and u.rsplit(".", 1)[-1] not in ("get", "items", "format", "strip")}
    assert not missing, missing


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_every_flag_has_a_translation_and_every_translated_flag_exists(lang: str) -> None:
    """Pages look a flag up by its id: a new Flag member needs both translations, a removed one takes its own along."""
    assert set(TEXTS[lang]["flags"]) == {flag.value for flag in Flag}
    assert all(isinstance(name, str) and name.strip() for name in TEXTS[lang]["flags"].values())


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_in_chromium_every_page_shows_the_header_and_fits_a_390px_phone(
    site: Site, browser: Browser, lang: str
) -> None:
    for width, height in ((1280, 800), (390, 844)):
        context = browser.new_context(viewport={"width": width, "height": height}, locale=f"{lang}-JP")
        host = site.url.removeprefix("http://").split(":")[0]
        cookie = {"name": "nemawashi_review", "value": site.session_id, "domain": host, "path": "/"}
        context.add_cookies([cookie])
        page = context.new_page()
        try:
            for name, path in pages(site).items():
                page.goto(f"{site.url}{path}{'&' if '?' in path else '?'}lang={lang}")
                header = page.locator("#site-header")
                assert header.is_visible(), (name, width)
                assert header.locator("[data-nav]").count() == 6, (name, width)  # five pages and sign-out
                scroll = page.evaluate("document.documentElement.scrollWidth")
                assert scroll <= width, (name, width, scroll)
        finally:
            context.close()


def test_the_widget_launcher_comes_first_and_escape_closes_the_panel_from_anywhere(
    site: Site, browser: Browser
) -> None:
    def focused(page: Any) -> str:
        return str(
            page.evaluate(
                "() => { const h = document.getElementById('nemawashi-widget'); const a = h && h.shadowRoot"
                " && h.shadowRoot.activeElement; return a ? (a.id || a.className || a.tagName) : '' }"
            )
        )

    context = browser.new_context(locale="ja-JP")
    try:
        page = context.new_page()
        page.goto(f"{site.url}/demo")
        page.wait_for_function("() => document.getElementById('nemawashi-widget')")
        page.keyboard.press("Tab")
        assert "launcher" in focused(page)  # the first tab stop, not the last of the page
        page.keyboard.press("Enter")
        panel = page.locator("#nemawashi-widget [role=dialog]")
        assert panel.is_visible() and focused(page) == "nw-question"
        for _ in range(12):  # Tab never leaves the open panel: it cycles back to the question box
            page.keyboard.press("Tab")
            assert focused(page), "focus left the widget"
        page.evaluate("document.activeElement.blur(); document.body.focus()")
        page.keyboard.press("Escape")  # focus on the page, not in the widget
        panel.wait_for(state="hidden")
    finally:
        context.close()
