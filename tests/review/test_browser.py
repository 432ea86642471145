"""The reviewer UI in a real headless Chromium (Debian's, driven by Playwright) against the real service."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect

from service.auth import service as auth
from service.config import Settings
from service.db import session_scope
from service.main import create_app
from tests.conftest import free_port, make_settings
from tests.review.helpers import COST, REVIEW_FLOW, TRAINING, TRAINING_PARAPHRASE

pytestmark = pytest.mark.timeout(900)


@dataclass
class Served:
    url: str
    app: Any

    def token(self, name: str, role: str = "reviewer") -> str:
        with session_scope(self.app.state.sessionmaker) as session:
            return auth.add_user(session, name=name, role=role)[1]

    def ask(self, question: str) -> dict[str, Any]:
        response = httpx.post(f"{self.url}/v1/ask", json={"question": question}, timeout=120)
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]

    def api(self, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=120, **kwargs)


@pytest.fixture
def served(indexed_settings: Settings, database_url: str) -> Iterator[Served]:
    """The app under uvicorn on a free loopback port, in this process, on the test's own database."""
    collection = f"approved-browser-{time.monotonic_ns()}"
    settings = make_settings(
        indexed_settings.data_dir, database_url=database_url, approved_collection=collection, **REVIEW_FLOW
    )
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.config.port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    else:
        pytest.fail("the service did not become ready")
    try:
        yield Served(url, app)
    finally:
        app.state.knowledge.store.client.get_or_create_collection(collection, embedding_function=None)
        app.state.knowledge.store.client.delete_collection(collection)
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="ja-JP")
    yield context.new_page()
    context.close()


def ready(page: Page, heading: str | None = None) -> None:
    """Wait until the page (the one with `heading`, if given) has its shortcuts listening."""
    if heading:
        expect(page.locator("h1")).to_contain_text(heading)
    expect(page.locator("body")).to_have_attribute("data-ready", "1")


def sign_in(page: Page, served: Served, token: str) -> None:
    page.goto(f"{served.url}/review")
    page.fill("#token", token)
    page.click("#login button[type=submit]")
    expect(page.locator("#queue")).to_be_visible()
    ready(page)


def test_the_whole_approve_flow_in_headless_chromium(page: Page, served: Served, tmp_path: Path) -> None:
    served.ask(COST)
    asked = served.ask(TRAINING)
    sign_in(page, served, served.token("sato"))
    rows = page.locator("tr.rv-row")
    expect(rows).to_have_count(2)
    selected = re.compile(r"\brv-selected\b")
    expect(rows.nth(0)).to_have_class(selected)
    page.keyboard.press("j")
    expect(rows.nth(1)).to_have_class(selected)
    expect(rows.nth(0)).not_to_have_class(selected)
    page.keyboard.press("k")
    expect(rows.nth(0)).to_have_class(selected)
    if TRAINING not in rows.nth(0).inner_text():
        page.keyboard.press("j")
    page.keyboard.press("Enter")
    ready(page, TRAINING)
    expect(page.locator(".rv-passage").first).to_be_visible()  # the cited passages beside the draft
    page.screenshot(path=str(tmp_path / "item.png"), full_page=True)

    page.keyboard.press("e")
    editor = page.locator("#edit-answer")
    expect(editor).to_be_focused()
    editor.fill("リスキリング研修は2027年1月に始まり、60時間です。")
    editor.press("Control+Enter")
    expect(page.locator("#notice")).to_contain_text("承認して公開しました")
    expect(page.locator("#item-status")).to_have_text("承認済み")
    expect(page.locator('#audit tr[data-action="edit"]')).to_have_count(1)
    expect(page.locator("#published-text")).to_contain_text("2027年1月")

    reused = served.ask(TRAINING_PARAPHRASE)
    assert (reused["mode"], reused["answer"]) == ("approved", "リスキリング研修は2027年1月に始まり、60時間です。")
    page.click("#kb-link")
    expect(page.locator("article h1")).to_contain_text(TRAINING)
    assert asked["id"]


def test_shortcuts_approve_reject_relabel_and_move_and_a_change_by_someone_else_is_announced(
    page: Page, served: Served
) -> None:
    first, second = served.ask(COST), served.ask(TRAINING)
    token = served.token("sato")
    suzuki = served.token("suzuki")
    sign_in(page, served, token)
    if COST not in page.locator("tr.rv-row").nth(0).inner_text():
        page.keyboard.press("j")
    page.keyboard.press("Enter")
    ready(page, COST)
    item_url = page.url
    other = "j" if page.locator("#next-item").count() else "k"
    page.keyboard.press(other)
    ready(page, TRAINING)
    page.keyboard.press("k" if other == "j" else "j")
    ready(page, COST)

    page.keyboard.press("r")
    expect(page.locator("#reject-reason")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator("#reject-panel")).to_be_hidden()
    page.keyboard.press("l")
    expect(page.locator("#relabel-cause")).to_be_focused()
    page.select_option("#relabel-cause", "process")
    page.click("#relabel-panel button[type=submit]")
    expect(page.locator("#notice")).to_contain_text("原因を修正しました")
    ready(page)
    expect(page.locator("#classification")).to_contain_text("業務手順・引き継ぎ・役割分担")  # the label, not its id

    item_id = int(item_url.split("/items/")[1].split("?")[0])
    state = served.api("GET", f"/v1/review/items/{item_id}", suzuki).json()["item"]
    assigned = served.api(
        "POST", f"/v1/review/items/{item_id}/decisions", suzuki,
        json={"action": "assign", "version": state["version"], "assignee": "sato"},
    )  # fmt: skip
    assert assigned.status_code == 200
    notice = page.locator("#stale-notice")
    expect(notice).to_be_visible(timeout=15_000)
    expect(notice).to_contain_text("suzuki")
    # The time as every page writes it: the configured zone (Asia/Tokyo here), minutes, the zone's name.
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d JST", notice.inner_text()), notice.inner_text()
    page.keyboard.press("a")  # an excerpt draft: the first a asks for confirmation, the second confirms
    page.keyboard.press("a")  # decided on the old version: refused, and the page says who changed it
    expect(page.locator("#notice")).to_contain_text("suzuki")
    ready(page)
    page.keyboard.press("a")
    page.keyboard.press("a")  # the page now shows the current version
    expect(page.locator("#item-status")).to_have_text("承認済み")
    audit = served.api("GET", f"/v1/review/items/{item_id}/audit", suzuki).json()
    assert [(e["actor"], e["action"], e["outcome"]) for e in audit] == [
        ("sato", "relabel", "applied"),
        ("suzuki", "assign", "applied"),
        ("sato", "approve", "conflict"),
        ("sato", "approve", "applied"),
    ]
    assert first["id"] != second["id"]
