"""A citation in an answer opens its /kb page at the cited passage, marked, in view and focused: in Chromium, ja and
en, on a laptop and a phone. The real app on the fake embedder, no LLM (extractive answers cite the plan)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, expect

from service.config import Settings
from tests.conftest import make_settings
from tests.review.helpers import REVIEW_FLOW
from tests.servers import ServedApp, served_app
from tests.web.widget_helpers import answer_after, ask, open_panel

# Questions whose answer cites a later part of a long plan page (cost, below the KPI table), not its start.
QUESTIONS = {"ja": "費用と事業性について教えて", "en": "Tell me about the cost and business case of BRIDGE"}
LABELS = {"ja": "回答で引用された箇所", "en": "The passage the answer cites"}
VIEWPORTS = {"desktop": (1280, 800), "phone": (390, 844)}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    folder = tmp_path_factory.mktemp("kb-passage")
    settings: Settings = make_settings(folder, database_url=f"sqlite:///{folder / 'db.sqlite'}", **REVIEW_FLOW)
    with served_app(settings) as running:
        yield running


@pytest.mark.parametrize("viewport", VIEWPORTS)
@pytest.mark.parametrize("lang", ["ja", "en"])
def test_a_citation_opens_its_page_with_the_cited_passage_marked_in_view_and_focused(
    served: ServedApp, browser: Browser, lang: str, viewport: str
) -> None:
    width, height = VIEWPORTS[viewport]
    context = browser.new_context(viewport={"width": width, "height": height}, locale=f"{lang}-JP")
    try:
        page = context.new_page()
        page.goto(f"{served.url}/demo?lang={lang}")
        open_panel(page)
        ask(page, QUESTIONS[lang])
        source = answer_after(page).locator(".sources a").first
        href = source.get_attribute("href") or ""
        match = re.fullmatch(rf"{re.escape(served.url)}/kb/([\w-]+)\?passage=(\d+)#passage", href)
        assert match, href  # the widget links the citation's URL as the API gives it
        with context.expect_page() as opened:
            source.click()
        kb = opened.value
        kb.wait_for_load_state()

        passage = kb.locator("#passage")
        expect(passage).to_be_visible()
        expect(passage).to_be_in_viewport()
        expect(passage).to_be_focused()  # the fragment focuses it: a keyboard user goes on from the passage
        assert passage.evaluate("e => getComputedStyle(e).outlineStyle") != "none"  # and sees where the focus is
        assert passage.evaluate("e => getComputedStyle(e).backgroundColor") != "rgba(0, 0, 0, 0)"
        expect(passage.locator(".passage-label")).to_have_text(LABELS[lang])
        expect(kb.locator("html")).to_have_attribute("lang", lang)

        doc_id, n = match.groups()
        cited = served.app.state.knowledge.chunks[f"{doc_id}#{n}"].text
        heading = cited.splitlines()[0].lstrip("# ")
        assert heading and heading in passage.inner_text()  # the marked part is the cited passage...
        first_section = kb.locator("article h2").first
        assert first_section.evaluate("e => !e.closest('#passage')"), "cite a passage below the page's start"
        assert passage.evaluate("e => e.getBoundingClientRect().top") < height  # ...scrolled to, though further down
        assert kb.evaluate("window.scrollY") > 0
        assert kb.evaluate("document.documentElement.scrollWidth") <= width
        assert parse_qs(urlsplit(kb.url).query) == {"passage": [n]}
    finally:
        context.close()


def test_an_unknown_or_garbled_passage_shows_the_page_without_a_mark(served: ServedApp, browser: Browser) -> None:
    page = browser.new_page(locale="ja-JP")
    try:
        for passage in ("999", "abc", "-1", "１", "9" * 40, "%00", ""):
            response = page.goto(f"{served.url}/kb/plan-kpi-ja?passage={passage}#passage")
            assert response is not None and response.status == 200, passage
            expect(page.locator("h1")).to_be_visible()
            expect(page.locator("#passage")).to_have_count(0)
    finally:
        page.close()
