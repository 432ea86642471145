"""The pages on a 390×844 phone in Chromium read as they should: the review queue as cards with the question at full
width, times, names and numbers never broken mid-word, pivot tables and charts scrolling inside their box at a
readable size, and nothing wider than the screen. The desktop (1280×800) keeps the queue as a table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, ViewportSize

from service.auth import service as auth
from service.db import session_scope
from tests.review.helpers import add_item
from tests.web import test_pages_i18n
from tests.web.test_pages_i18n import Site

pytestmark = pytest.mark.timeout(900)

site = test_pages_i18n.site  # the seeded site of the page tests; module-scoped, so this module has its own
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
DEPARTMENTS = ["人事部", "経理部", "製造部", "品質保証部", "購買部", "総務部", "情報システム部", "海外営業部"]
LONG_QUESTION = "来年度の評価制度が変わると聞きましたが、ボーナスや昇給の決め方は具体的にどう変わるのか教えてください。"

# Rendered size of an element, the line height of its text and how far its box scrolls, all in CSS pixels.
BOX = """e => { const r = e.getBoundingClientRect(), s = getComputedStyle(e);
  const line = parseFloat(s.lineHeight) || 1.2 * parseFloat(s.fontSize);
  return {width: r.width, height: r.height, line, display: s.display}; }"""


@pytest.fixture(scope="module")
def phone_site(site: Site) -> Site:
    """The page tests' site with what a phone struggles with: a long question, questions from many departments (a
    wide pivot table) and audit-log entries by a second reviewer."""
    with session_scope(site.app.state.sessionmaker) as session:
        add_item(session, LONG_QUESTION, department="営業部")
        for department in DEPARTMENTS:
            add_item(session, f"{department}の業務はBRIDGEの導入後どう変わりますか？", department=department)
        token = auth.add_user(session, name="suzuki", role="reviewer")[1]
    headers = {"Authorization": f"Bearer {token}"}
    for assignee in ("suzuki", "田中"):
        version = site.client.get(f"/v1/review/items/{site.item}", headers=headers).json()["item"]["version"]
        decided = site.client.post(
            f"/v1/review/items/{site.item}/decisions",
            headers=headers,
            json={"action": "assign", "assignee": assignee, "version": version},
        )
        assert decided.status_code == 200, decided.text
    return site


def _page(browser: Browser, site: Site, viewport: ViewportSize) -> Iterator[Page]:
    context = browser.new_context(viewport=viewport, locale="ja-JP")
    host = site.url.removeprefix("http://").split(":")[0]
    context.add_cookies([{"name": "nemawashi_review", "value": site.session_id, "domain": host, "path": "/"}])
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def phone(browser: Browser, phone_site: Site) -> Iterator[Page]:
    yield from _page(browser, phone_site, PHONE)


@pytest.fixture
def desktop(browser: Browser, phone_site: Site) -> Iterator[Page]:
    yield from _page(browser, phone_site, DESKTOP)


def _open(page: Page, site: Site, path: str) -> None:
    page.goto(f"{site.url}{path}{'&' if '?' in path else '?'}lang=ja")
    width = page.viewport_size["width"] if page.viewport_size else 0
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, (path, scroll)  # the page itself never scrolls sideways


def _boxes(page: Page, selector: str) -> list[dict[str, Any]]:
    found = page.locator(selector)
    assert found.count() > 0, selector
    return [found.nth(i).evaluate(BOX) for i in range(found.count())]


def _one_line(page: Page, selector: str) -> None:
    for box in _boxes(page, selector):
        assert box["height"] < 2 * box["line"], (selector, box)


def test_on_a_phone_the_queue_shows_each_question_at_full_width(phone: Page, phone_site: Site) -> None:
    _open(phone, phone_site, "/review?status=&group=false")
    questions = _boxes(phone, "#queue td.rv-q")
    assert min(q["width"] for q in questions) >= 250, questions
    row = phone.locator("#queue tr.rv-row").first
    top = "e => e.getBoundingClientRect().top"
    assert row.locator("td.rv-q").evaluate(top) < row.locator("time").evaluate(top)  # details below the question
    _one_line(phone, "#queue td time")
    height = phone.evaluate("document.documentElement.scrollHeight")
    assert height < 400 * phone.locator("#queue tr.rv-row").count(), height


def test_on_a_phone_the_audit_log_never_breaks_a_time_a_name_or_a_version(phone: Page, phone_site: Site) -> None:
    _open(phone, phone_site, f"/review/items/{phone_site.item}")
    assert phone.locator("#audit tbody tr[data-actor]").count() >= 2
    for column in (1, 2, 5):  # when, who, version
        _one_line(phone, f"#audit tbody tr[data-actor] td:nth-child({column})")
    _one_line(phone, "#audit thead th")
    # No keyboard on a phone: the buttons carry no shortcut letter (「a · 承認」 reads as 「承認」).
    keys = phone.locator(".rv-key")
    assert keys.count() > 0 and not any(keys.nth(i).is_visible() for i in range(keys.count()))


@pytest.mark.parametrize("path", ["/dashboard", "/dashboard/plan-feedback"])
def test_on_a_phone_pivot_tables_and_charts_scroll_inside_their_box(phone: Page, phone_site: Site, path: str) -> None:
    _open(phone, phone_site, path)
    _one_line(phone, "table.pivot th")
    _one_line(phone, "table.pivot td")
    wide = phone.locator("table.pivot").last
    assert wide.evaluate("e => e.parentElement.scrollWidth > e.parentElement.clientWidth")  # it scrolls in its box
    charts = phone.locator("figure img")
    assert charts.count() > 0
    for i in range(charts.count()):
        scale = charts.nth(i).evaluate("e => e.getBoundingClientRect().width / e.naturalWidth")
        assert scale >= 0.84, (i, scale)  # the charts' smallest text, 8 pt (10.7 px), stays at 9 px or more


def test_on_a_phone_the_job_report_keeps_its_charts_and_pivot_readable(phone: Page, phone_site: Site) -> None:
    _open(phone, phone_site, f"/v1/jobs/{phone_site.job}/report")
    charts = phone.locator(".scroll > svg")
    assert charts.count() > 0
    for i in range(charts.count()):
        scale = charts.nth(i).evaluate("e => e.getBoundingClientRect().width / e.viewBox.baseVal.width")
        assert scale >= 9 / 11, (i, scale)  # the 11 px in-bar labels stay at 9 px or more
    _one_line(phone, "table.pivot td")
    names = _boxes(phone, "table.pivot th:not(:first-child)")
    assert min(n["width"] for n in names) >= 80, names  # root cause names wrap, but not one character a line


def test_on_a_desktop_the_queue_is_still_a_table(desktop: Page, phone_site: Site) -> None:
    _open(desktop, phone_site, "/review?status=&group=false")
    assert desktop.locator("#queue thead th").first.is_visible()
    assert {b["display"] for b in _boxes(desktop, "#queue tr.rv-row")} == {"table-row"}
    _one_line(desktop, "#queue thead th")
    _open(desktop, phone_site, f"/review/items/{phone_site.item}")
    assert desktop.locator("#prev-item .rv-key, #next-item .rv-key, .rv-primary .rv-key").first.is_visible()
